/**
 * Which build cache records `builder prune` removes, with BuildKit's rules mapped onto berth's records:
 *
 * - a record a running build holds (a cache mount a RUN has mounted) is in use and never removed;
 * - a record is *shared* when an image in the store holds its result: the record's layer chain is a prefix of the
 *   image's layers (the step's layer and everything under it). Its bytes are the image's too, so `system df` does
 *   not count them as cache, and a prune without --all keeps it (BuildKit: dangling = not shared);
 * - `--all` also removes shared records (the images keep their layers; the next build of those steps misses);
 * - `--filter until=D` keeps records used after the time D denotes (a Go duration before now, or a timestamp);
 *   `id=RE` and `type=T` narrow the selection to ids the regular expression matches (Docker passes `id~=RE`)
 *   and to one record type;
 * - `--keep-storage N` removes the least recently used of the selected records, one at a time, until the cache's
 *   own bytes (those of records that are not shared) are below N; shared records free nothing and are never
 *   removed for it.
 *
 * Pure functions; the records come from BuildCache.records() and the image store.
 */
import { invalidArgument } from '../base/errors.js';
import { parseSince } from '../base/units.js';
import type { CacheRecordType } from './cache.js';

/** What the selection needs to know about a record. */
export interface PruneCandidate {
  id: string;
  type: CacheRecordType;
  size: number;
  createdAt: number;
  lastUsedAt: number;
  shared: boolean;
  inUse: boolean;
}

export interface CachePruneOptions {
  all: boolean;
  /** Records last used at or before this time (ms since the epoch) go; later ones stay ("until" filter). */
  usedUntil?: number;
  /** "id" filter: a record goes only when this matches its id. */
  id?: RegExp;
  /** "type" filter: a record goes only when it has this type. */
  type?: string;
  /** --keep-storage in bytes; 0 or absent means no limit. */
  keepBytes?: number;
}

/** Docker's filter keys for build cache pruning that mean something for berth's records. */
const KEYS = new Set(['until', 'unused-for', 'id', 'type']);

/**
 * Reads `--filter` pairs (name lowercased, name and value trimmed, as Docker's CLI does) into options. Errors use
 * the daemon's wording: `invalid filter 'x'`, `filters expect only one value`,
 * `"until" filter expects a duration (e.g., '24h') or a timestamp: ...`.
 */
export function parseCachePruneFilters(pairs: readonly (readonly [string, string])[], now: Date): Pick<CachePruneOptions, 'usedUntil' | 'id' | 'type'> {
  const values = new Map<string, Set<string>>();
  for (const [k, v] of pairs) {
    if (!KEYS.has(k)) throw invalidArgument(`invalid filter '${k}'`);
    values.set(k, (values.get(k) ?? new Set()).add(v));
  }
  if (values.has('until') && values.has('unused-for')) throw invalidArgument('conflicting filters: "until" and "unused-for"');
  const one = (k: string): string | undefined => {
    const vs = values.get(k);
    if (!vs) return undefined;
    if (vs.size > 1) throw invalidArgument('filters expect only one value');
    return [...vs][0]!;
  };
  const out: Pick<CachePruneOptions, 'usedUntil' | 'id' | 'type'> = {};
  for (const key of ['until', 'unused-for']) {
    const v = one(key);
    if (v === undefined) continue;
    let ns: bigint;
    try {
      ns = parseSince(v, now);
    } catch (e) {
      throw invalidArgument(`"${key}" filter expects a duration (e.g., '24h') or a timestamp: ${e instanceof Error ? e.message : String(e)}`);
    }
    out.usedUntil = Number(ns / 1_000_000n);
  }
  const id = one('id');
  if (id !== undefined) {
    try {
      out.id = new RegExp(id);
    } catch {
      throw invalidArgument(`invalid filter 'id=${id}': not a regular expression`);
    }
  }
  const type = one('type');
  if (type !== undefined) out.type = type;
  return out;
}

/** Oldest use first; then oldest made; then by id, so the order is stable. */
export function leastRecentlyUsedFirst(a: PruneCandidate, b: PruneCandidate): number {
  return a.lastUsedAt - b.lastUsedAt || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The cache's own bytes: records no image shares (what `system df` shows as the build cache's size). */
export function ownBytes(records: readonly PruneCandidate[]): number {
  return records.reduce((n, r) => n + (r.shared ? 0 : r.size), 0);
}

/** The records a prune removes, least recently used first. */
export function selectForPrune<T extends PruneCandidate>(records: readonly T[], o: CachePruneOptions): T[] {
  const candidates = records
    .filter((r) => !r.inUse && (o.all || !r.shared)
      && (o.usedUntil === undefined || r.lastUsedAt <= o.usedUntil)
      && (o.id === undefined || o.id.test(r.id))
      && (o.type === undefined || r.type === o.type))
    .sort(leastRecentlyUsedFirst);
  if (!o.keepBytes) return candidates;
  let total = ownBytes(records);
  const out: T[] = [];
  for (const r of candidates) {
    if (total < o.keepBytes) break;
    if (r.shared) continue;
    out.push(r);
    total -= r.size;
  }
  return out;
}

/**
 * Marks which records images share. `images` are the layer digest lists of the stored images; a record is shared
 * when its chain is a prefix of one of them. Records without a chain (mounts, unreadable entries) are not.
 */
export function sharedChains(images: readonly (readonly string[])[]): (chain: readonly string[] | undefined) => boolean {
  const prefixes = new Set<string>();
  for (const layers of images) {
    let p = '';
    prefixes.add(p);
    for (const d of layers) {
      p += `${d}\n`;
      prefixes.add(p);
    }
  }
  return (chain) => chain !== undefined && prefixes.has(chain.map((d) => `${d}\n`).join(''));
}
