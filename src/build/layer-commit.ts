import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { hex, type Digest } from '../base/digest.js';
import { mountOverlay, unmount } from '../sys/mount.js';
import { writeLayerTar } from '../storage/changes.js';
import { MEDIA_OCI_LAYER, type Descriptor } from '../image/types.js';
import type { Engine } from '../engine/engine.js';
import type { Lease } from '../image/store.js';

/**
 * A build step's filesystem: the stage's layers (read-only lowerdirs) under a fresh upper dir, mounted for the step
 * and unmounted after it (also on failure). The upper dir, in overlay format, is the step's layer: committing it
 * writes its changeset tar into the store and moves the directory into the shared layer store as that layer's
 * unpacked form, so it is never unpacked again.
 */
export class StepFs {
  readonly dir: string;
  readonly upper: string;
  readonly work: string;
  readonly rootfs: string;
  private mounted = false;

  constructor(private readonly engine: Engine, readonly lowers: string[]) {
    this.dir = join(engine.paths.tmp, `build-${randomBytes(8).toString('hex')}`);
    this.upper = join(this.dir, 'diff');
    this.work = join(this.dir, 'work');
    this.rootfs = join(this.dir, 'rootfs');
    for (const d of [this.upper, this.work, this.rootfs]) mkdirSync(d, { recursive: true });
  }

  mount(): string {
    const lowers = this.lowers.length ? this.lowers : [this.engine.layers.emptyDir()];
    mountOverlay(lowers, this.upper, this.work, this.rootfs);
    this.mounted = true;
    return this.rootfs;
  }

  unmount(): void {
    if (this.mounted) unmount(this.rootfs);
    this.mounted = false;
  }

  /** Removes everything of the step that was not committed. Safe to call more than once. */
  dispose(): void {
    this.unmount();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Turns the upper dir into a layer: blob in the store (under `lease` until an image references it) and
   * layers/<diffid>/diff. Returns the descriptor and diff id.
   */
  async commit(lease: Lease, sourceDateEpoch?: number): Promise<{ layer: Descriptor; diffId: Digest; lowerDir: string }> {
    this.unmount();
    const tar = join(this.dir, 'layer.tar');
    const out = createWriteStream(tar);
    const r = await writeLayerTar(this.upper, this.lowers, out, sourceDateEpoch !== undefined ? { sourceDateEpoch } : {});
    await finished(out);
    const blob = await this.engine.images.ingestBlob(createReadStream(tar), { lease });
    rmSync(tar, { force: true });
    rmSync(this.work, { recursive: true, force: true });
    rmSync(this.rootfs, { recursive: true, force: true });
    // What is left is <dir>/diff: exactly the layer store's form. One rename publishes it complete.
    const final = this.engine.paths.layer(hex(r.digest));
    mkdirSync(this.engine.paths.layers, { recursive: true });
    if (!existsSync(final)) {
      try {
        renameSync(this.dir, final);
      } catch {
        // another build published the same layer meanwhile
      }
    }
    this.dispose();
    return {
      layer: { mediaType: MEDIA_OCI_LAYER, digest: blob.digest, size: blob.size },
      diffId: r.digest,
      lowerDir: join(final, 'diff'),
    };
  }
}
