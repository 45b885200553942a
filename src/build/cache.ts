import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteJson, readJsonIf } from '../base/fsutil.js';
import { hex, type Digest } from '../base/digest.js';
import type { Descriptor, ImageConfig } from '../image/types.js';
import type { ImageStore, Lease } from '../image/store.js';

/**
 * The build cache, under <root>/build-cache:
 *
 *   entries/<key>.json   one per step: the state after it (image config and layer list); the key is a digest of the
 *                        parent step's key, the instruction after variable expansion, and the content digests of the
 *                        files the step reads (never mtimes, inodes or host paths)
 *   blobs/<hex>          hard links to the layer blobs steps made, so a cached step outlives the images that used
 *                        it (rmi, image prune): a hit puts a missing blob back into the image store
 *   steps/<about>.json   per step position (context, Dockerfile, stage, index): what the last build there read, so
 *                        a miss can say why (which files changed, parent changed, instruction changed)
 *   mounts/<id>/         RUN --mount=type=cache directories
 *
 * Entries survive builds, tags and restarts; `builder prune` drops them all.
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

/** What one build of a step position read; the next build there explains its miss against it. */
export interface StepRecord {
  key: string;
  parentKey: string;
  text: string;
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

  private blobPath(d: Digest): string {
    return join(this.dir, 'blobs', hex(d));
  }

  get mountsDir(): string {
    return join(this.dir, 'mounts');
  }

  get(key: string): CacheEntry | undefined {
    return readJsonIf<CacheEntry>(this.entryPath(key));
  }

  /** Records a step: its entry, a link to its layer blob (`blobFile`, in the image store), and what it read. */
  put(entry: CacheEntry, blobFile: string | undefined, about: string, record: StepRecord): void {
    if (entry.layer && blobFile) this.keepBlob(entry.layer.digest, blobFile);
    atomicWriteJson(this.entryPath(entry.key), entry, { durable: false });
    this.record(about, record);
  }

  /** Remembers what a build of a step position read (also for cache hits, so the next miss compares with it). */
  record(about: string, record: StepRecord): void {
    atomicWriteJson(this.stepPath(about), record, { durable: false });
  }

  private keepBlob(d: Digest, file: string): void {
    const dst = this.blobPath(d);
    if (existsSync(dst)) return;
    mkdirSync(join(this.dir, 'blobs'), { recursive: true });
    const tmp = `${dst}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    try {
      linkSync(file, tmp);
    } catch {
      copyFileSync(file, tmp);
    }
    renameSync(tmp, dst);
  }

  /**
   * Makes sure every layer blob of a cached state is in the image store, putting back those the cache kept.
   * False when one is gone from both (then the step runs again).
   */
  async restore(state: BuildState, store: ImageStore, lease: Lease): Promise<boolean> {
    for (const l of state.layers) {
      // Recorded either way: the lease keeps the blob from a concurrent gc until the image is written.
      lease.record(l.digest);
      if (store.hasBlob(l.digest)) continue;
      const kept = this.blobPath(l.digest);
      if (!existsSync(kept)) return false;
      await store.ingestBlob(createReadStream(kept), { lease, expected: { digest: l.digest } });
    }
    return true;
  }

  /** Why the step at `about` missed, in the words the build output uses. */
  explainMiss(about: string, now: StepRecord & { inputs: Record<string, string> }): string {
    const prev = readJsonIf<StepRecord>(this.stepPath(about));
    if (!prev) return 'no earlier build of this step';
    if (prev.parentKey !== now.parentKey) return 'parent step changed';
    if (prev.text !== now.text) return 'instruction changed';
    const changed: string[] = [];
    for (const [p, d] of Object.entries(now.inputs)) if (prev.inputs[p] !== d) changed.push(p);
    for (const p of Object.keys(prev.inputs)) if (!(p in now.inputs)) changed.push(p);
    if (changed.length === 0) return prev.key === now.key ? 'cached result was pruned' : 'build arguments or environment changed';
    const stages = changed.filter((c) => c.startsWith('--from='));
    if (stages.length) return `source ${stages.map((c) => `stage ${c.slice(7)}`).join(', ')} changed`;
    const files = changed.filter((c) => !c.startsWith('<<') && !c.startsWith('url:'));
    const other = changed.filter((c) => c.startsWith('<<') || c.startsWith('url:'));
    if (files.length === 0) return `${other.map((c) => (c.startsWith('url:') ? c.slice(4) : `heredoc ${c.slice(2)}`)).join(', ')} changed`;
    files.sort();
    const shown = files.slice(0, 5).join(', ') + (files.length > 5 ? `, and ${files.length - 5} more` : '');
    return `${files.length} file${files.length === 1 ? '' : 's'} changed: ${shown}`;
  }

  /** What the cache holds (for `system df`): entries, and bytes of kept layer blobs and cache mounts. */
  usage(): { entries: number; bytes: number } {
    const entries = countDir(join(this.dir, 'entries'));
    return { entries, bytes: treeSize(join(this.dir, 'blobs')) + treeSize(this.mountsDir) };
  }

  /**
   * Drops every entry, kept blob and cache mount; returns which entries and how many bytes went. The step records
   * stay (they are small), so the next build can say its miss comes from the prune.
   */
  prune(): { entries: string[]; bytes: number } {
    const dir = join(this.dir, 'entries');
    const entries = existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)) : [];
    const bytes = this.usage().bytes;
    for (const d of ['entries', 'blobs', 'mounts']) rmSync(join(this.dir, d), { recursive: true, force: true });
    return { entries, bytes };
  }
}

function countDir(d: string): number {
  try {
    return readdirSync(d).length;
  } catch {
    return 0;
  }
}

/** Bytes in a tree, each inode counted once. */
function treeSize(root: string): number {
  const seen = new Set<number>();
  let total = 0;
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const n of readdirSync(p)) walk(join(p, n));
      return;
    }
    if (seen.has(st.ino)) return;
    seen.add(st.ino);
    total += st.isFile() ? statSync(p).size : 0;
  };
  walk(root);
  return total;
}
