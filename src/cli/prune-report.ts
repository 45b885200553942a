import type { Parsed } from './args.js';
import { flag, type CliContext } from './context.js';
import { confirm } from './prompt.js';

/** What every prune command shares: Docker's question unless `-f`, and Docker's report. */

/** Asks Docker's question unless `--force`; false when the user declined (the command then exits 0, as Docker's). */
export async function confirmUnlessForced(ctx: Pick<CliContext, 'stdin' | 'stdout'>, p: Parsed, message: string): Promise<boolean> {
  return flag.bool(p, 'force') || confirm(ctx.stdin, ctx.stdout, message);
}

/**
 * Docker's report of a prune: each non-empty section (its title, one line per item, a blank line), then
 * "Total reclaimed space: SIZE".
 */
export function pruneReport(sections: readonly (readonly [title: string, items: readonly string[]])[], reclaimed: string): string {
  const body = sections.filter(([, items]) => items.length > 0).map(([title, items]) => `${title}\n${items.map((i) => `${i}\n`).join('')}\n`);
  return `${body.join('')}Total reclaimed space: ${reclaimed}\n`;
}

/** The items of Docker's "Deleted Images:" section: the names an image prune removed, then the ids. */
export function deletedImageItems(r: { untagged: readonly string[]; deleted: readonly string[] }): string[] {
  return [...r.untagged.map((u) => `untagged: ${u}`), ...r.deleted.map((d) => `deleted: ${d}`)];
}
