import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, copyFileSync, createReadStream, existsSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteJson, readJsonIf } from '../base/fsutil.js';
import { errnoCode } from '../base/errors.js';
import { hex, type Digest } from '../base/digest.js';
import { native, LOCK_EX, LOCK_NB } from '../sys/native.js';
import type { Descriptor, ImageConfig } from '../image/types.js';
import type { ImageStore, Lease } from '../image/store.js';
import type { PlacedFiles } from './copy.js';
import { parseStageInputName } from './source-digest.js';

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
 *   mounts/<name>/       RUN --mount=type=cache directories, each with <name>.lock that a RUN using it holds
 *                        (cache-mounts.ts has the layout)
 *   uses/<name>          per entry key or mount name: one byte appended per use (an entry's reuses, every use
 *                        of a mount), its mtime the last use; a hit costs one small write, never an entry rewrite
 *
 * Entries and mounts are the cache's records (`system df -v`); they survive builds, tags and restarts until
 * `builder prune` selects them. Everything else (steps, the context digest memo) is bookkeeping.
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
  /** The stage settings the step depends on (FsWork.settings): which of them changed explains a miss. */
  settings?: Record<string, string>;
  /**
   * Per stage whose files are among the inputs, a digest of its layer chain and of what was read of it: the next
   * build at this position reuses the recorded digests when its own is the same (Builder.stageInputsOf).
   */
  sources?: Record<string, string>;
}

/** Record types, BuildKit's names: a step's result with its kept layer, or a cache mount directory. */
export type CacheRecordType = 'regular' | 'exec.cachemount';

/** One record of the build cache, as `system df -v` lists it and `builder prune` selects it. */
export interface CacheRecord {
  /** Docker's record id form, 25 hex digits: the start of the entry key or mount key (of a digest of other names). */
  id: string;
  /** The entry key or mount directory name the record is stored under. */
  name: string;
  type: CacheRecordType;
  /**
   * Bytes the record keeps: its layer blob (on one record only when several steps made the same layer) or the
   * files of its cache mount.
   */
  size: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
  lastUsedAt: number;
  /** Uses including the one that made it. */
  usageCount: number;
  /** Regular records: the layer digests of the state after the step (an image whose layers start so shares it). */
  chain?: Digest[];
  /** The step that made it (its history line), for regular records. */
  description: string;
  /** A running build holds it (a cache mount a RUN has mounted); never pruned. */
  inUse: boolean;
}

/** Characters of a key shown as a record id (BuildKit's ids are 25 characters long). */
const RECORD_ID_LENGTH = 25;

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

  /** What a COPY entry placed, apart from the entry (read on every hit) as it can be large: placed/<key>.json. */
  private placedPath(key: string): string {
    return join(this.dir, 'placed', `${key}.json`);
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

  /** The entry for a key; finding one counts as a use of it (for `builder prune --keep-storage`/`until`). */
  get(key: string): CacheEntry | undefined {
    const entry = readJsonIf<CacheEntry>(this.entryPath(key));
    if (entry) this.noteUse(key);
    return entry;
  }

  /** Notes a use of the cache mount directory `name` (under mountsDir), for `builder prune --keep-storage`/`until`. */
  noteMountUse(name: string): void {
    this.noteUse(name);
  }

  private usePath(name: string): string {
    return join(this.dir, 'uses', name);
  }

  /** Appends one byte to the record's use file: its size counts the reuses, its mtime is the last one. */
  private noteUse(name: string): void {
    try {
      appendFileSync(this.usePath(name), '+');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') return; // usage data only: a build never fails over it
      try {
        mkdirSync(join(this.dir, 'uses'), { recursive: true });
        appendFileSync(this.usePath(name), '+');
      } catch {
        // as above
      }
    }
  }

  /**
   * Last use and use count of a record, given when it was made (or last changed). The use file of an entry counts
   * its reuses (put() does not note one); that of a mount every use, the first included (noteMountUse()).
   */
  private useOf(name: string, madeAt: number, firstNoted = false): { lastUsedAt: number; usageCount: number } {
    try {
      const st = statSync(this.usePath(name));
      return { lastUsedAt: Math.max(madeAt, st.mtimeMs), usageCount: Math.max(1, st.size + (firstNoted ? 0 : 1)) };
    } catch {
      return { lastUsedAt: madeAt, usageCount: 1 };
    }
  }

  /**
   * Records a step: its entry, a link to its layer blob (`blobFile`, in the image store), what it read, and for a
   * COPY, the files it placed in its layer (see placedFiles()).
   */
  put(entry: CacheEntry, blobFile: string | undefined, about: string, record: StepRecord, placed?: PlacedFiles): void {
    if (entry.layer && blobFile) this.keepBlob(entry.layer.digest, blobFile);
    if (placed && entry.layer) atomicWriteJson(this.placedPath(entry.key), placed, { durable: false });
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

  /** The files the entry of `key` placed in its layer (a COPY from the context), if it recorded them. */
  placedFiles(key: string): PlacedFiles | undefined {
    try {
      return readJsonIf<PlacedFiles>(this.placedPath(key));
    } catch {
      return undefined; // a damaged record only costs the links it would have saved
    }
  }

  /** What the last build at a step position read, if any. */
  previous(about: string): StepRecord | undefined {
    return readJsonIf<StepRecord>(this.stepPath(about));
  }

  /** Why a step missed, given what the last build at its position read (previous()), in the build output's words. */
  explainMiss(prev: StepRecord | undefined, now: StepRecord & { inputs: Record<string, string> }): string {
    if (!prev) return 'no earlier build of this step';
    if (prev.parentKey !== now.parentKey) return 'parent step changed';
    if (prev.text !== now.text) return 'instruction changed';
    if (prev.settings && now.settings) {
      const names = Object.keys(now.settings).filter((k) => prev.settings![k] !== now.settings![k]);
      if (names.length) return `${names.map((n) => SETTING_NAMES[n] ?? n).join(', ')} changed`;
    }
    const changed: string[] = [];
    for (const [p, d] of Object.entries(now.inputs)) if (prev.inputs[p] !== d) changed.push(p);
    for (const p of Object.keys(prev.inputs)) if (!(p in now.inputs)) changed.push(p);
    if (changed.length === 0) return prev.key === now.key ? 'cached result was pruned' : 'build arguments or environment changed';
    // Files of other stages, by stage; then images; then context files; then heredocs and URLs.
    const parts: string[] = [];
    const byStage = new Map<string, string[]>();
    for (const c of changed) {
      const s = parseStageInputName(c);
      if (s) byStage.set(s.from, [...(byStage.get(s.from) ?? []), s.path]);
    }
    for (const [from, paths] of byStage) parts.push(filesChanged(paths, ` in stage ${from}`));
    const images = changed.filter((c) => c.startsWith('--from=') && !parseStageInputName(c));
    if (images.length) parts.push(`source ${images.map((c) => c.slice(7)).join(', ')} changed`);
    const isOther = (c: string) => c.startsWith('<<') || c.startsWith('url:') || c.startsWith('git:');
    const files = changed.filter((c) => !c.startsWith('--from=') && !isOther(c));
    if (files.length) parts.push(filesChanged(files, ''));
    const other = changed.filter(isOther);
    if (other.length) parts.push(`${other.map((c) => (c.startsWith('<<') ? `heredoc ${c.slice(2)}` : c.slice(4))).join(', ')} changed`);
    return parts.join('; ');
  }

  /**
   * Every record: step entries (oldest first; a layer blob several entries share is counted on the first) and
   * cache mounts. An entry that cannot be read is listed with no size and no chain, so a prune removes it.
   */
  records(): CacheRecord[] {
    const out: CacheRecord[] = [];
    const entries: { name: string; entry: CacheEntry | undefined; mtime: number; createdAt: number }[] = [];
    for (const file of listDir(join(this.dir, 'entries'))) {
      if (!file.endsWith('.json')) continue;
      const name = file.slice(0, -5);
      let st;
      try {
        st = statSync(this.entryPath(name));
      } catch {
        continue; // pruned meanwhile
      }
      let entry: CacheEntry | undefined;
      try {
        entry = this.getQuietly(name);
      } catch {
        entry = undefined;
      }
      const created = entry ? Date.parse(entry.created) : NaN;
      entries.push({ name, entry, mtime: st.mtimeMs, createdAt: Number.isFinite(created) ? created : st.mtimeMs });
    }
    entries.sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const counted = new Set<string>();
    for (const { name, entry, mtime, createdAt } of entries) {
      let size = 0;
      const layer = entry?.layer?.digest;
      if (layer && !counted.has(layer)) {
        counted.add(layer);
        try {
          size = statSync(this.blobPath(layer)).size;
        } catch {
          size = 0; // the image store still has it (restore() falls back there), or the step is gone for good
        }
      }
      out.push({
        id: name.slice(0, RECORD_ID_LENGTH), name, type: 'regular', size, createdAt, ...this.useOf(name, mtime),
        ...(entry ? { chain: entry.state.layers.map((l) => l.digest) } : {}),
        description: entry?.state.config.history?.at(-1)?.created_by ?? '',
        inUse: false,
      });
    }
    for (const name of listDir(this.mountsDir)) {
      if (name.startsWith('.')) continue; // an instance being made
      const dir = join(this.mountsDir, name);
      let st;
      try {
        st = lstatSync(dir);
      } catch {
        continue;
      }
      if (!st.isDirectory()) continue;
      const tree = treeStat(dir);
      const lock = lockMount(this.mountsDir, name, false);
      if (typeof lock === 'number') closeSync(lock);
      out.push({
        // "<key>.private-<n>" instances share the key's first digits: they get an id of their own.
        id: (/^[0-9a-f]{64}$/.test(name) ? name : cacheKey([name])).slice(0, RECORD_ID_LENGTH), name, type: 'exec.cachemount',
        size: tree.bytes, createdAt: st.birthtimeMs || st.ctimeMs,
        // A RUN that wrote to the mount changed some mtime in it, one that only read did not: the use file says.
        ...this.useOf(name, tree.newest, true),
        description: 'cache mount', inUse: lock === 'busy',
      });
    }
    return out;
  }

  /** The entry for a key without counting a use (listing, pruning, an incremental COPY's look at the last result). */
  getQuietly(key: string): CacheEntry | undefined {
    return readJsonIf<CacheEntry>(this.entryPath(key));
  }

  /**
   * Removes records: entries with their use files and the kept blobs no remaining entry needs, mounts with their
   * files (under their lock, so no RUN starts using one meanwhile; one a RUN holds stays). Returns what went, the
   * bytes that freed, and the blobs it unlinked that another link (the image store's copy) still holds: those free
   * their bytes only when that copy goes too.
   */
  remove(records: readonly CacheRecord[]): { removed: CacheRecord[]; freed: number; stillLinked: { digest: Digest; size: number }[] } {
    let freed = 0;
    const removed: CacheRecord[] = [];
    const stillLinked: { digest: Digest; size: number }[] = [];
    const blobs = new Set<Digest>();
    for (const r of records) {
      if (r.type === 'exec.cachemount') {
        const lock = lockMount(this.mountsDir, r.name, true);
        if (lock === 'busy') continue;
        try {
          const dir = join(this.mountsDir, r.name);
          freed += treeStat(dir).bytes;
          rmSync(dir, { recursive: true, force: true });
        } finally {
          if (typeof lock === 'number') closeSync(lock);
        }
      } else {
        let entry: CacheEntry | undefined;
        try {
          entry = this.getQuietly(r.name);
        } catch {
          entry = undefined;
        }
        if (entry?.layer) blobs.add(entry.layer.digest);
        rmSync(this.entryPath(r.name), { force: true });
        rmSync(this.placedPath(r.name), { force: true });
      }
      rmSync(this.usePath(r.name), { force: true });
      removed.push(r);
    }
    if (blobs.size === 0) return { removed, freed, stillLinked };
    // Read after the removals, so an entry a concurrent build just wrote keeps its blob.
    for (const file of listDir(join(this.dir, 'entries'))) {
      if (!file.endsWith('.json')) continue;
      try {
        const d = this.getQuietly(file.slice(0, -5))?.layer?.digest;
        if (d) blobs.delete(d);
      } catch {
        // unreadable: needs no blob
      }
    }
    for (const digest of blobs) {
      const p = this.blobPath(digest);
      try {
        const st = lstatSync(p);
        rmSync(p, { force: true });
        if (st.nlink === 1) freed += st.size;
        else stillLinked.push({ digest, size: st.size });
      } catch {
        // already gone
      }
    }
    return { removed, freed, stillLinked };
  }
}

/**
 * Takes the lock of cache mount instance `name` without waiting (exclusive: no RUN may hold it). The descriptor to
 * close, 'busy' when a RUN holds it, 'none' when it has no lock file and `create` is false (then no RUN holds it).
 * The lock files stay: a RUN waiting for one must find the same file.
 */
function lockMount(mountsDir: string, name: string, create: boolean): number | 'busy' | 'none' {
  let fd: number;
  try {
    fd = openSync(join(mountsDir, `${name}.lock`), create ? 'a' : 'r', 0o600);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 'none';
    throw e;
  }
  try {
    native().flock(fd, LOCK_EX | LOCK_NB);
    return fd;
  } catch (e) {
    closeSync(fd);
    if (errnoCode(e) === 'EAGAIN' || errnoCode(e) === 'EWOULDBLOCK') return 'busy';
    throw e;
  }
}

function listDir(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

/** Bytes in a tree (each inode counted once) and its newest mtime (ms). */
function treeStat(root: string): { bytes: number; newest: number } {
  const seen = new Set<number>();
  let bytes = 0;
  let newest = 0;
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) {
      for (const n of listDir(p)) walk(join(p, n));
      return;
    }
    if (seen.has(st.ino)) return;
    seen.add(st.ino);
    if (st.isFile()) bytes += st.size;
  };
  walk(root);
  return { bytes, newest };
}

/** How a miss names the settings of FsWork.settings. */
const SETTING_NAMES: Record<string, string> = {
  env: 'ENV', args: 'build arguments', user: 'USER', workdir: 'WORKDIR', shell: 'SHELL', network: 'network',
};

/** "2 files changed in stage build: a, b" (the first five, sorted); a folded tree ("dir/**") as "files under dir". */
function filesChanged(paths: string[], where: string): string {
  const trees = paths.filter((p) => p.endsWith('/**')).map((p) => p.slice(0, -3) || '/').sort();
  const sorted = paths.filter((p) => !p.endsWith('/**')).sort();
  const out: string[] = [];
  if (sorted.length) {
    const shown = sorted.slice(0, 5).join(', ') + (sorted.length > 5 ? `, and ${sorted.length - 5} more` : '');
    out.push(`${sorted.length} file${sorted.length === 1 ? '' : 's'} changed${where}: ${shown}`);
  }
  if (trees.length) out.push(`files under ${trees.join(', ')} changed${where}`);
  return out.join('; ');
}
