import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteJson, readJsonIf } from '../base/fsutil.js';
import type { Digest } from '../base/digest.js';
import type { Descriptor, ImageConfig } from '../image/types.js';

/**
 * The build cache: one entry per step, keyed by a digest of the parent step's key, the instruction after variable
 * expansion, and the content digests of the files the step reads. Entries survive builds, tags and restarts
 * (under <root>/build-cache). A second index, keyed by what a step is "about" (parent key + instruction without
 * file contents), remembers the inputs of the last build of that step, so a miss can say which files changed.
 */
export interface BuildState {
  config: ImageConfig;
  layers: Descriptor[];
}

export interface CacheEntry {
  key: string;
  state: BuildState;
  /** The layer this step added, if any (its blob and diff id are also the last of state). */
  layer?: { digest: Digest; diffId: Digest };
  created: string;
}

interface StepRecord {
  key: string;
  parentKey?: string;
  inputs: Record<string, string>;
}

export function cacheKey(parts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:${p}\n`);
  return h.digest('hex');
}

export class BuildCache {
  constructor(readonly dir: string) {}

  private entryPath(key: string): string {
    return join(this.dir, 'entries', `${key}.json`);
  }

  private stepPath(about: string): string {
    return join(this.dir, 'steps', `${about}.json`);
  }

  get(key: string): CacheEntry | undefined {
    return readJsonIf<CacheEntry>(this.entryPath(key));
  }

  put(entry: CacheEntry, about: string, inputs: Map<string, string>, parentKey: string): void {
    atomicWriteJson(this.entryPath(entry.key), entry, { durable: false });
    atomicWriteJson(this.stepPath(about), { key: entry.key, parentKey, inputs: Object.fromEntries(inputs) } satisfies StepRecord, { durable: false });
  }

  /** The parent key the last build of this step had. */
  parentOf(about: string): string | undefined {
    return readJsonIf<StepRecord>(this.stepPath(about))?.parentKey;
  }

  /**
   * Why `key` is not in the cache, in the words the build output uses: which files changed since the last build
   * of the same step, or that the parent step changed.
   */
  explainMiss(about: string, inputs: Map<string, string>, parentChanged: boolean): string {
    if (parentChanged) return 'parent step changed';
    const prev = readJsonIf<StepRecord>(this.stepPath(about));
    if (!prev) return 'no earlier build of this step';
    const changed: string[] = [];
    const before = new Map(Object.entries(prev.inputs));
    for (const [p, d] of inputs) if (before.get(p) !== d) changed.push(p);
    for (const p of before.keys()) if (!inputs.has(p)) changed.push(p);
    if (changed.length === 0) return 'cached result was pruned';
    const stages = changed.filter((c) => c.startsWith('--from='));
    if (stages.length) return `source ${stages.map((c) => `stage ${c.slice(7)}`).join(', ')} changed`;
    changed.sort();
    const shown = changed.slice(0, 5).join(', ') + (changed.length > 5 ? `, and ${changed.length - 5} more` : '');
    return `${changed.length} file${changed.length === 1 ? '' : 's'} changed: ${shown}`;
  }

  /** Entries and their total size on disk (for `system df`). */
  usage(): { entries: number; bytes: number } {
    const d = join(this.dir, 'entries');
    if (!existsSync(d)) return { entries: 0, bytes: 0 };
    const names = readdirSync(d);
    return { entries: names.length, bytes: names.reduce((n, f) => n + statSync(join(d, f)).size, 0) };
  }

  /** Drops every entry (and the step index); returns how many entries there were. */
  prune(): number {
    const n = this.usage().entries;
    rmSync(join(this.dir, 'entries'), { recursive: true, force: true });
    rmSync(join(this.dir, 'steps'), { recursive: true, force: true });
    return n;
  }
}
