import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from './engine.js';
import { BuildCache } from '../build/cache.js';

/** One row of `system df`: how many, how many in use, bytes on disk, and bytes a prune could free. */
export interface UsageRow {
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

export interface DiskUsage {
  images: UsageRow;
  containers: UsageRow;
  volumes: UsageRow;
  buildCache: UsageRow;
}

/** Bytes of regular files in a tree (each inode once); links and missing paths count 0. */
export function treeBytes(root: string, seen = new Set<number>()): number {
  let st;
  try {
    st = lstatSync(root);
  } catch {
    return 0;
  }
  if (st.isDirectory()) {
    let n = 0;
    for (const name of readdirSync(root)) n += treeBytes(join(root, name), seen);
    return n;
  }
  if (!st.isFile() || seen.has(st.ino)) return 0;
  seen.add(st.ino);
  return st.size;
}

/**
 * What `system df` reports (Docker's rules): images by their unique layer blobs (a layer shared by several images
 * counts once; reclaimable = what only unused images hold), containers by their writable layer (reclaimable when
 * not running), volumes by their data (reclaimable when no container uses them), and the build cache.
 */
export function diskUsage(engine: Engine): DiskUsage {
  const containers = engine.containers.list();
  const images = engine.images.list();
  const usedImages = new Set(containers.map((c) => c.Image));
  const blobSize = new Map<string, number>();
  const usedBlobs = new Set<string>();
  for (const img of images) {
    const blobs = [...img.manifest.layers.map((l) => [l.digest, l.size] as const), [img.manifest.config.digest, img.manifest.config.size] as const];
    for (const [d, s] of blobs) {
      blobSize.set(d, s);
      if (usedImages.has(img.id)) usedBlobs.add(d);
    }
  }
  const imageBytes = [...blobSize.values()].reduce((a, b) => a + b, 0);
  const usedImageBytes = [...usedBlobs].reduce((a, d) => a + (blobSize.get(d) ?? 0), 0);

  let ctrBytes = 0;
  let ctrReclaim = 0;
  for (const c of containers) {
    const n = treeBytes(c.GraphDriver?.Data?.UpperDir || join(engine.containers.dir(c.Id), 'upper'));
    ctrBytes += n;
    if (!c.State.Running) ctrReclaim += n;
  }

  const volumes = engine.volumes.list();
  let volBytes = 0;
  let volReclaim = 0;
  let volActive = 0;
  for (const v of volumes) {
    const n = treeBytes(v.Mountpoint);
    volBytes += n;
    const used = containers.some((c) => c.Mounts.some((m) => m.Type === 'volume' && m.Name === v.Name));
    if (used) volActive++;
    else volReclaim += n;
  }

  const cache = new BuildCache(join(engine.paths.root, 'build-cache')).usage();
  return {
    images: { total: images.length, active: images.filter((i) => usedImages.has(i.id)).length, size: imageBytes, reclaimable: imageBytes - usedImageBytes },
    containers: { total: containers.length, active: containers.filter((c) => c.State.Running).length, size: ctrBytes, reclaimable: ctrReclaim },
    volumes: { total: volumes.length, active: volActive, size: volBytes, reclaimable: volReclaim },
    buildCache: { total: cache.entries, active: 0, size: cache.bytes, reclaimable: cache.bytes },
  };
}
