import { existsSync, mkdirSync, renameSync, rmSync, readdirSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../base/digest.js';
import { hex } from '../base/digest.js';
import { withLock, atomicWrite } from '../base/fsutil.js';
import { wrap, corrupt } from '../base/errors.js';
import type { Paths } from '../base/paths.js';
import type { Image } from '../image/types.js';
import { applyLayer } from './apply.js';

/**
 * Unpacked layers, shared by every image and container that uses them. A layer directory is
 * layers/<diff id hex>/diff and is complete once layers/<hex>/ exists: it is unpacked into a temp dir and renamed
 * into place, so a crash mid-unpack leaves only a temp dir that the next prune removes.
 */
export class LayerStore {
  constructor(private readonly paths: Paths, private readonly blobPath: (d: Digest) => string) {}

  diffDir(diffId: Digest): string {
    return join(this.paths.layer(hex(diffId)), 'diff');
  }

  has(diffId: Digest): boolean {
    return existsSync(this.paths.layer(hex(diffId)));
  }

  /** Ensures every layer of the image is unpacked; returns overlay lowerdirs, top layer first. */
  async ensure(image: Image): Promise<string[]> {
    const dirs: string[] = [];
    const diffIds = image.config.rootfs.diff_ids;
    for (let i = 0; i < diffIds.length; i++) {
      const diffId = diffIds[i]!;
      const blob = image.manifest.layers[i];
      if (!blob) throw wrap(new Error('manifest has fewer layers than rootfs.diff_ids'), `image ${image.id}`);
      // Each layer is unpacked on top of the ones below (for implicit dirs and hardlinks into lower layers).
      if (!this.has(diffId)) await this.unpack(diffId, blob.digest, [...dirs].reverse());
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
        renameSync(tmp, final);
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

  remove(diffHex: string): void {
    rmSync(this.paths.layer(diffHex), { recursive: true, force: true });
  }
}
