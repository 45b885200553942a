/**
 * Docker's prune filters for containers, images and volumes (the daemon's rules, moby daemon/prune.go):
 *
 * - `until=T` (a Go duration before now, or a timestamp: see parseSince): items created after T stay; an image
 *   without a creation time stays too. Only one value; volumes do not support it.
 * - `label=K` / `label=K=V`: an item goes only when it has every one of these labels (K with any value, or K=V).
 * - `label!=K` / `label!=K=V`: an item that has every one of these stays.
 *
 * Pure functions; the pairs come from splitFilterFlags (cli/filter-flag.ts).
 */
import { invalidArgument } from '../base/errors.js';
import { parseRfc3339, parseSince } from '../base/units.js';

export interface PruneFilter {
  /** `until`: the value as given and the time it denotes (nanoseconds since the epoch); items created later stay. */
  until?: { value: string; ns: bigint };
  /** `label` values: "K" or "K=V"; an item must match all of them to go. */
  labels: string[];
  /** `label!` values: an item matching all of them stays. */
  notLabels: string[];
  /** `all` (volume prune only): named volumes go too. */
  all?: boolean;
  /** `dangling` (image prune only): false for every unused image, not just dangling ones. */
  dangling?: boolean;
}

/** No filter: everything the prune selects goes. */
export const NO_FILTER: PruneFilter = { labels: [], notLabels: [] };

/** The keys container and image prune accept (and so `system prune`, which passes them on). */
export const PRUNE_FILTER_KEYS: readonly string[] = ['label', 'label!', 'until'];

/**
 * Reads `--filter` pairs (duplicates collapse, as in Docker's filter sets). Errors use the daemon's wording:
 * `invalid filter 'x'`, `more than one until filter specified`, and parseSince's for a bad time.
 */
export function parsePruneFilter(pairs: readonly (readonly [string, string])[], now: Date, accepted: readonly string[] = PRUNE_FILTER_KEYS): PruneFilter {
  const values = new Map<string, Set<string>>();
  for (const [k, v] of pairs) {
    if (!accepted.includes(k)) throw invalidArgument(`invalid filter '${k}'`);
    values.set(k, (values.get(k) ?? new Set()).add(v));
  }
  const f: PruneFilter = { labels: [...(values.get('label') ?? [])], notLabels: [...(values.get('label!') ?? [])] };
  for (const key of ['all', 'dangling'] as const) {
    const given = [...(values.get(key) ?? [])];
    if (given.length === 0) continue;
    // moby's GetBoolOrDefault: "1"/"true" and "0"/"false", any case; one value only.
    const b = /^(1|true)$/i.test(given[0]!) ? true : /^(0|false)$/i.test(given[0]!) ? false : undefined;
    if (given.length > 1 || b === undefined) throw invalidArgument(`invalid filter '${key}=${given.join(',')}'`);
    f[key] = b;
  }
  const until = [...(values.get('until') ?? [])];
  if (until.length > 1) throw invalidArgument('more than one until filter specified');
  if (until.length === 1) f.until = { value: until[0]!, ns: parseSince(until[0]!, now) };
  return f;
}

/** Docker's MatchKVList: every "K" or "K=V" term is among the labels (true when there are no terms). */
function hasAll(terms: readonly string[], labels: Readonly<Record<string, string>>): boolean {
  return terms.every((t) => {
    const i = t.indexOf('=');
    const k = i < 0 ? t : t.slice(0, i);
    return Object.hasOwn(labels, k) && (i < 0 || labels[k] === t.slice(i + 1));
  });
}

/** A creation time in nanoseconds; undefined when missing or unreadable (the item then stays). */
function createdNs(created: string | undefined): bigint | undefined {
  if (created === undefined) return undefined;
  try {
    return parseRfc3339(created);
  } catch {
    return undefined;
  }
}

/**
 * Whether the filter lets an item go: `created` is its creation time (RFC 3339; undefined when unknown) and
 * `labels` its labels.
 */
export function pruneFilterMatches(f: PruneFilter, created: string | undefined, labels: Readonly<Record<string, string>> | null | undefined): boolean {
  if (f.until !== undefined) {
    const ns = createdNs(created);
    if (ns === undefined || ns > f.until.ns) return false;
  }
  const l = labels ?? {};
  if (!hasAll(f.labels, l)) return false;
  if (f.notLabels.length > 0 && hasAll(f.notLabels, l)) return false;
  return true;
}
