import { PassThrough } from 'node:stream';
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hex, type Digest } from '../base/digest.js';
import { mountOverlay, unmount, unmountNow } from '../sys/mount.js';
import { writeLayerTar } from '../storage/changes.js';
import { isOpaque, lookupLower } from '../storage/apply.js';
import { MEDIA_OCI_LAYER, type Descriptor } from '../image/types.js';
import type { Engine } from '../engine/engine.js';
import type { Lease } from '../image/store.js';

/** Prefix of a step's scratch directory under <root>/tmp: `build-<pid>-<random>` (the sweep finds dead owners by pid). */
export const STEP_DIR_PREFIX = 'build-';

export interface CommitOptions {
  sourceDateEpoch?: number;
  /**
   * Paths in the upper dir (relative, e.g. "etc/hosts") to drop first when they are still empty (an empty file or
   * directory): mount points the runtime created.
   */
  remove?: readonly string[];
}

export interface Committed {
  layer: Descriptor;
  diffId: Digest;
  /** The blob in the image store (for the build cache to keep a link to). */
  blobFile: string;
}

/**
 * A build step's filesystem: the stage's layers (read-only lowerdirs) under a fresh upper dir, mounted for the step
 * and unmounted after it (also on failure). The upper dir, in overlay format, is the step's layer: seal() ends
 * the step's writes, archive() writes its changeset tar into the store (while later steps may use the upper dir as
 * a lower), and publish() moves the directory into the shared layer store as that layer's unpacked form, so it is
 * never unpacked again.
 */
export class StepFs {
  readonly dir: string;
  readonly upper: string;
  readonly work: string;
  readonly rootfs: string;
  private mounted = false;

  readonly lowers: string[];

  constructor(private readonly engine: Engine, lowers: string[]) {
    this.lowers = lowers;
    this.dir = join(engine.paths.tmp, `${STEP_DIR_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
    this.upper = join(this.dir, 'diff');
    this.work = join(this.dir, 'work');
    this.rootfs = join(this.dir, 'rootfs');
    for (const d of [this.upper, this.work, this.rootfs]) mkdirSync(d, { recursive: true });
  }

  mount(): string {
    const lowers = this.lowers.length ? this.lowers : [this.engine.layers.emptyDir()];
    mountOverlay(lowers, this.upper, this.work, this.rootfs, { volatile: true });
    this.mounted = true;
    return this.rootfs;
  }

  unmount(): void {
    if (this.mounted) unmount(this.rootfs);
    this.mounted = false;
  }

  /**
   * Unmounts so that the upper dir can be changed directly: at once, not lazily (false, still mounted, if something
   * uses the mount).
   */
  unmountForChange(): boolean {
    if (this.mounted && !unmountNow(this.rootfs)) return false;
    this.mounted = false;
    return true;
  }

  /**
   * Mounts again after unmountForChange() (nothing to do if it did not unmount). A volatile overlay marks its work dir so that it cannot be mounted again
   * (the kernel cannot tell whether the upper dir was synced); here nothing was lost, so the mark goes first.
   */
  remount(): string {
    if (this.mounted) return this.rootfs;
    rmSync(join(this.work, 'work'), { recursive: true, force: true });
    return this.mount();
  }

  /**
   * After a mount point is dropped, its parent directories may be in the upper only because the runtime created it
   * there (a copy-up with a new mtime): an empty one that matches the directory below is dropped too.
   */
  private dropCopiedUpParents(rel: string): void {
    const parts = rel.split('/').filter(Boolean);
    for (parts.pop(); parts.length > 0; parts.pop()) {
      const p = join(this.upper, ...parts);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      const below = lookupLower(this.lowers, parts);
      if (!st.isDirectory() || readdirSync(p).length > 0 || isOpaque(p) || !below?.stat.isDirectory()) return;
      if (st.mode !== below.stat.mode || st.uid !== below.stat.uid || st.gid !== below.stat.gid) return;
      rmdirSync(p);
    }
  }

  /** Removes everything of the step that was not committed. Safe to call more than once. */
  dispose(): void {
    this.unmount();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Ends the step's writes: unmounts, drops the mount points the runtime left (`remove`), and says whether anything
   * is left to commit. When nothing is, the step keeps nothing (its directory is removed).
   */
  seal(o: CommitOptions = {}): boolean {
    this.unmount();
    const deepestFirst = [...(o.remove ?? [])].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const r of deepestFirst) {
      const p = join(this.upper, r);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory() ? readdirSync(p).length > 0 : !(st.isFile() && st.size === 0)) continue;
      rmSync(p, { recursive: true, force: true });
      this.dropCopiedUpParents(r);
    }
    if (readdirSync(this.upper).length > 0) return true;
    this.dispose();
    return false;
  }

  /**
   * Writes the sealed upper dir's changeset tar into the store (under `lease` until an image references it). The
   * upper dir stays where it is, usable as a lower of later steps, until publish(). Undefined when the tar has no
   * entry (only what a layer cannot hold, such as sockets): then there is no layer.
   */
  async archive(lease: Lease, o: CommitOptions = {}, signal?: AbortSignal): Promise<Committed | undefined> {
    // The changeset tar streams straight into the store (hashed and fsynced there): written once, never re-read.
    const pipe = new PassThrough({ highWaterMark: 1 << 20 });
    const stop = () => pipe.destroy(new Error('canceled'));
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    const tar = writeLayerTar(this.upper, this.lowers, pipe, o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {});
    // A failing tar must end the ingest too (which then drops its temp file), or the ingest waits forever.
    tar.catch((e: unknown) => pipe.destroy(e instanceof Error ? e : new Error(String(e))));
    const ingest = this.engine.images.ingestBlob(pipe, { lease });
    const [t, i] = await Promise.allSettled([tar, ingest]);
    signal?.removeEventListener('abort', stop);
    // The store's error (a full disk) is the cause; the tar then only sees its output destroyed.
    if (i.status === 'rejected') throw i.reason;
    if (t.status === 'rejected') throw t.reason;
    const r = t.value;
    const blob = i.value;
    // (The few bytes of an empty tar's blob are garbage for the next gcBlobs.)
    if (r.size <= 1024) return undefined;
    return {
      layer: { mediaType: MEDIA_OCI_LAYER, digest: blob.digest, size: blob.size },
      diffId: r.digest,
      blobFile: this.engine.images.blobPath(blob.digest),
    };
  }

  /**
   * Moves the archived upper dir into the layer store as layers/<diffid>/diff, the layer's unpacked form, so it is
   * never unpacked again; the rest of the step's directory goes. Only once no mount uses the upper dir as a lower.
   */
  publish(diffId: Digest): void {
    this.unmount();
    rmSync(this.work, { recursive: true, force: true });
    rmSync(this.rootfs, { recursive: true, force: true });
    // What is left is <dir>/diff: exactly the layer store's form. One rename publishes it complete.
    const final = this.engine.paths.layer(hex(diffId));
    mkdirSync(this.engine.paths.layers, { recursive: true });
    if (!existsSync(final)) {
      try {
        renameSync(this.dir, final);
      } catch {
        // another build published the same layer meanwhile
      }
    }
    this.dispose();
  }
}
