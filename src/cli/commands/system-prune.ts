import type { Command } from '../context.js';
import { flag } from '../context.js';
import { confirmUnlessForced, deletedImageItems, pruneReport } from '../prune-report.js';
import { filterFlagPairs } from '../filter-flag.js';
import { humanSize } from '../../base/units.js';
import { parsePruneFilter, type PruneFilter } from '../../engine/prune-filter.js';
import { pruneSystem } from '../../engine/prune.js';

/** Go's sortorder.NaturalLess as a comparator: runs of digits compare by value, digits sort before other text. */
export function naturalCompare(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i]!;
    const y = rb[i]!;
    const dx = /\d/.test(x[0]!);
    const dy = /\d/.test(y[0]!);
    if (dx !== dy) return dx ? -1 : 1;
    if (!dx) {
      if (x !== y) return x < y ? -1 : 1; // a run that is a prefix of the other is followed by digits or the end: less
      continue;
    }
    const nx = x.replace(/^0+/, '');
    const ny = y.replace(/^0+/, '');
    if (nx.length !== ny.length) return nx.length - ny.length;
    if (nx !== ny) return nx < ny ? -1 : 1;
    if (x.length !== y.length) return x.length - y.length; // fewer leading zeros first
  }
  return ra.length - rb.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** Docker 28's prompt for `system prune` (docker/cli system/prune.go), for these options. */
export function confirmationMessage(o: { all: boolean; volumes: boolean; filter: PruneFilter }): string {
  // Docker's second line, "all networks not used by at least one container", is left out: berth has no networks yet.
  const warnings = ['all stopped containers'];
  if (o.volumes) warnings.push('all anonymous volumes not used by at least one container');
  warnings.push(o.all ? 'all images without at least one container associated to them' : 'all dangling images');
  warnings.push(o.all ? 'all build cache' : 'unused build cache');
  const filters = [
    ...o.filter.labels.map((v) => `label=${v}`),
    ...o.filter.notLabels.map((v) => `label!=${v}`),
    ...(o.filter.until ? [`until=${o.filter.until.value}`] : []),
  ].sort(naturalCompare);
  const list = (items: string[]) => items.map((i) => `\n  - ${i}`).join('');
  const filtered = filters.length ? `\n  Items to be pruned will be filtered with:${list(filters)}\n` : '';
  return `WARNING! This will remove:${list(warnings)}\n${filtered}\nAre you sure you want to continue?`;
}

export const systemPrune: Command = {
  spec: {
    name: 'system prune', usage: 'berth system prune [OPTIONS]', description: 'Remove unused data', maxArgs: 0,
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused images not just dangling ones' },
      { name: 'filter', type: 'strings', valueName: 'filter', description: 'Provide filter values (e.g. "label=<key>=<value>")' },
      { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
      { name: 'volumes', type: 'bool', description: 'Prune anonymous volumes' },
    ],
  },
  async run(ctx, p) {
    const pairs = filterFlagPairs(p);
    const all = flag.bool(p, 'all');
    const volumes = flag.bool(p, 'volumes');
    if (volumes && pairs.some(([k]) => k === 'until')) {
      // Docker's CLI refuses this itself, before asking, with this line as is.
      ctx.stderr.write('ERROR: The "until" filter is not supported with "--volumes"\n');
      return 1;
    }
    // Read before asking, so a mistyped filter never waits for an answer; again after, as "until=1h" means an hour
    // before the prune runs.
    const filter = parsePruneFilter(pairs, new Date());
    if (!(await confirmUnlessForced(ctx, p, confirmationMessage({ all, volumes, filter })))) return 0;
    const r = await pruneSystem(ctx.engine(), { all, volumes, filter: parsePruneFilter(pairs, new Date()) });
    const total = r.containers.reclaimed + (r.volumes?.reclaimed ?? 0) + r.images.reclaimed + r.buildCache.reclaimed;
    ctx.stdout.write(pruneReport([
      ['Deleted Containers:', r.containers.deleted],
      ['Deleted Volumes:', r.volumes?.deleted ?? []],
      ['Deleted Images:', deletedImageItems(r.images)],
      ['Deleted build cache objects:', r.buildCache.deleted],
    ], humanSize(total, 4)));
    return 0;
  },
};
