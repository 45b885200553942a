import type { Parsed } from './args.js';
import { flag } from './context.js';
import { UsageError } from './exit.js';
import { splitFilterFlags } from '../build/cache-prune.js';

/** The `--filter name=value` flags of a prune command as pairs; a value without `=` is Docker's flag error (125). */
export function filterFlagPairs(p: Parsed): [string, string][] {
  const { pairs, bad } = splitFilterFlags(flag.strs(p, 'filter'));
  if (bad !== undefined) throw new UsageError(`invalid argument "${bad}" for "--filter" flag: bad format of filter (expected name=value)`);
  return pairs;
}
