import type { Parsed } from './args.js';
import { flag } from './context.js';
import { UsageError } from './exit.js';
import { parsePruneFilter, type PruneFilter } from '../engine/prune-filter.js';

/** The `--filter name=value` flags of a prune command as pairs; a value without `=` is Docker's flag error (125). */
export function filterFlagPairs(p: Parsed): [string, string][] {
  const { pairs, bad } = splitFilterFlags(flag.strs(p, 'filter'));
  if (bad !== undefined) throw new UsageError(`invalid argument "${bad}" for "--filter" flag: bad format of filter (expected name=value)`);
  return pairs;
}

/** Splits `--filter` values into pairs like Docker's FilterOpt (empty values ignored); `bad` is the first without "=". */
export function splitFilterFlags(values: readonly string[]): { pairs: [string, string][]; bad?: string } {
  const pairs: [string, string][] = [];
  for (const v of values) {
    if (v === '') continue;
    const i = v.indexOf('=');
    if (i < 0) return { pairs, bad: v };
    pairs.push([v.slice(0, i).trim().toLowerCase(), v.slice(i + 1).trim()]);
  }
  return { pairs };
}

/**
 * A prune command's `--filter` flags read as a prune filter of the given keys. Called before the prompt (a bad
 * filter fails at once) and again after it: `until=1h` means an hour before the prune runs.
 */
export function pruneFilterOf(p: Parsed, accepted: readonly string[]): PruneFilter {
  return parsePruneFilter(filterFlagPairs(p), new Date(), accepted);
}
