import { existsSync, mkdirSync, renameSync, rmSync, readdirSync, readFileSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../base/digest.js';
import { hex } from '../base/digest.js';
import { withLock, atomicWrite, FileLock } from '../base/fsutil.js';
import { wrap, corrupt, errnoCode } from '../base/errors.js';
import type { Paths } from '../base/paths.js';
import type { Image } from '../image/types.js';
import { applyLayer } from './apply.js';

/**
 * Unpacked layers, shared by every image and container that uses them. A layer directory is
 * layers/<diff id hex>/diff and is complete once layers/<hex>/ exists: it is unpacked into a temp dir and renamed
 * into place, so a crash mid-unpack leaves only a temp dir that the next prune removes.
 */
export class LayerStore {
  /**
   * Unpacks under way in this process, by diff id: a second caller (another build stage) waits for the first. The
   * layer's flock cannot do that within one process: a second flock would block the thread the first one needs.
   */
  private readonly unpacking = new Map<Digest, Promise<void>>();

  constructor(private readonly paths: Paths, private readonly blobPath: (d: Digest) => string) {}

  diffDir(diffId: Digest): string {
    return join(this.paths.layer(hex(diffId)), 'diff');
  }

  has(diffId: Digest): boolean {
    return existsSync(this.paths.layer(hex(diffId)));
  }

  /** Ensures every layer of the image is unpacked; returns overlay lowerdirs, top layer first. */
  async ensure(image: Image): Promise<string[]> {
    if (image.manifest.layers.length < image.config.rootfs.diff_ids.length) {
      throw wrap(new Error('manifest has fewer layers than rootfs.diff_ids'), `image ${image.id}`);
    }
    return this.ensureChain(image.config.rootfs.diff_ids, image.manifest.layers.map((l) => l.digest));
  }

  /**
   * Ensures a chain of layers (bottom first: diff ids and the blobs holding them) is unpacked; returns overlay
   * lowerdirs, top layer first. A layer the applier refuses (an entry escaping the root, a hardlink to nothing)
   * or whose content does not match its diff id is an error and leaves nothing behind.
   */
  async ensureChain(diffIds: readonly Digest[], blobs: readonly Digest[]): Promise<string[]> {
    const dirs: string[] = [];
    for (let i = 0; i < diffIds.length; i++) {
      const diffId = diffIds[i]!;
      // Each layer is unpacked on top of the ones below (for implicit dirs and hardlinks into lower layers).
      if (!this.has(diffId)) {
        let pending = this.unpacking.get(diffId);
        if (!pending) {
          pending = this.unpack(diffId, blobs[i]!, [...dirs].reverse()).finally(() => this.unpacking.delete(diffId));
          this.unpacking.set(diffId, pending);
        }
        await pending;
      }
      dirs.push(this.diffDir(diffId));
    }
    return dirs.reverse();
  }

  private async unpack(diffId: Digest, blob: Digest, lowerDirs: string[]): Promise<void> {
    const final = this.paths.layer(hex(diffId));
    await withLock(this.paths.lock(`layer-${hex(diffId)}`), async () => {
      if (existsSync(final)) return; // another process unpacked it meanwhile
      mkdirSync(this.paths.tmp, { recursive: true });
      const tmp = join(this.paths.tmp, `layer-${hex(diffId)}-${process.pid}`);
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(join(tmp, 'diff'), { recursive: true });
      try {
        const r = await applyLayer(createReadStream(this.blobPath(blob)), join(tmp, 'diff'), { lowerDirs });
        if (r.diffId !== diffId) throw corrupt(`layer ${blob} does not match its diff id: expected ${diffId}, got ${r.diffId}`);
        atomicWrite(join(tmp, 'blob'), blob, { durable: false });
        mkdirSync(this.paths.layers, { recursive: true });
        try {
          renameSync(tmp, final);
        } catch (e) {
          // A build published the same layer meanwhile (it does so without this lock: the rename decides).
          if (errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
          rmSync(tmp, { recursive: true, force: true });
        }
      } catch (e) {
        rmSync(tmp, { recursive: true, force: true });
        throw wrap(e, `unpacking layer ${diffId}`);
      }
    });
  }

  /** An empty directory, the lowerdir of images without layers (overlay needs at least one). */
  emptyDir(): string {
    const d = join(this.paths.layers, 'empty');
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** All unpacked layers' diff ids (hex). */
  list(): string[] {
    if (!existsSync(this.paths.layers)) return [];
    return readdirSync(this.paths.layers).filter((n) => /^[a-f0-9]{64}$/.test(n));
  }

  /**
   * Removes an unpacked layer. It is first renamed away under its lock, so that no other process ever sees a
   * half-deleted layer directory (has() is true only for complete ones). The lock file goes too (one per layer
   * would pile up); FileLock takes care that a process that waited for it locks the file its name stands for next.
   */
  remove(diffHex: string): void {
    const gone = join(this.paths.tmp, `deleting-${diffHex}-${process.pid}-${Date.now()}`);
    const lockPath = this.paths.lock(`layer-${diffHex}`);
    const lock = new FileLock(lockPath).acquire();
    try {
      rmSync(lockPath, { force: true });
      if (!existsSync(this.paths.layer(diffHex))) return;
      mkdirSync(this.paths.tmp, { recursive: true });
      try {
        renameSync(this.paths.layer(diffHex), gone);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') return; // removed meanwhile
        throw e;
      }
    } finally {
      lock.release();
    }
    rmSync(gone, { recursive: true, force: true });
  }

  /** Unpacked layers that a mounted overlay (a running container, a cp or export) uses right now. */
  mounted(): Set<string> {
    const out = new Set<string>();
    const prefix = `${this.paths.layers}/`.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`); // as /proc/mounts escapes
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      for (let i = line.indexOf(prefix); i >= 0; i = line.indexOf(prefix, i + 1)) {
        const hexId = line.slice(i + prefix.length, i + prefix.length + 64);
        if (/^[a-f0-9]{64}$/.test(hexId)) out.add(hexId);
      }
    }
    return out;
  }

  /** Leftovers of processes killed while unpacking or deleting a layer. */
  cleanTemp(): void {
    if (!existsSync(this.paths.tmp)) return;
    for (const name of readdirSync(this.paths.tmp)) {
      const m = /^(?:layer-[a-f0-9]{64}|deleting-[a-f0-9]{64})-(\d+)(?:-\d+)?$/.exec(name);
      if (!m || processAlive(Number(m[1]))) continue;
      rmSync(join(this.paths.tmp, name), { recursive: true, force: true });
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}
