import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from './engine.js';
import { gcLayers } from './images.js';
import type { ContainerRecord } from './container.js';
import type { Image } from '../image/types.js';
import type { Volume } from '../storage/volumes.js';
import { BuildCache, type CacheRecord } from '../build/cache.js';
import { ownBytes, selectForPrune, sharedChains, type CachePruneOptions } from '../build/cache-prune.js';

/** One row of `system df`: how many, how many in use, bytes on disk, and bytes a prune could free. */
export interface UsageRow {
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

/** A build cache record with whether an image shares it (see cache-prune.ts). */
export interface CacheRecordUsage extends CacheRecord {
  shared: boolean;
}

/** What `system df -v` lists, item by item. */
export interface UsageItems {
  /** Each image with the bytes of its layers other images also have, and how many containers use it. */
  images: { image: Image; sharedSize: number; containers: number }[];
  /** Each container with the bytes of its writable layer. */
  containers: { container: ContainerRecord; size: number }[];
  /** Each volume with how many containers mount it and its bytes. */
  volumes: { volume: Volume; links: number; size: number }[];
  buildCache: CacheRecordUsage[];
}

export interface DiskUsage {
  images: UsageRow;
  containers: UsageRow;
  volumes: UsageRow;
  buildCache: UsageRow;
  items: UsageItems;
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

function buildCacheOf(engine: Engine): BuildCache {
  return new BuildCache(join(engine.paths.root, 'build-cache'));
}

/** The build cache's records, each marked shared when a stored image holds its layers. */
export function buildCacheRecords(engine: Engine, images: readonly Image[] = engine.images.list()): CacheRecordUsage[] {
  const shared = sharedChains(images.map((i) => i.manifest.layers.map((l) => l.digest)));
  return buildCacheOf(engine).records().map((r) => ({ ...r, shared: shared(r.chain) }));
}

/**
 * Removes the build cache records the options select (cache-prune.ts has the rules). Returns the ids removed, in
 * the order they went (least recently used first), and the bytes that freed on disk.
 *
 * A step's layer blob is linked from the cache and, until the image store's gc, from the image store, where no
 * image needs it once the record is not shared (an earlier stage's layer, an image since removed); its unpacked
 * layer stays too. So a prune that removed steps ends with the image gc (leases and mounts keep what running builds
 * use), as Docker's releases the layers only the build cache held. Reclaimed space counts blobs, like the sizes
 * `system df` shows.
 */
export function pruneBuildCache(engine: Engine, o: CachePruneOptions): { deleted: string[]; reclaimed: number } {
  const { removed, freed, stillLinked } = buildCacheOf(engine).remove(selectForPrune(buildCacheRecords(engine), o));
  let reclaimed = freed;
  if (removed.some((r) => r.type === 'regular')) {
    gcLayers(engine);
    for (const b of stillLinked) if (!engine.images.hasBlob(b.digest)) reclaimed += b.size;
  }
  return { deleted: removed.map((r) => r.id), reclaimed };
}

/**
 * What `system df` reports (Docker's rules): images by their unique layer blobs (a layer shared by several images
 * counts once; reclaimable = what only unused images hold), containers by their writable layer (reclaimable when
 * not running), volumes by their data (reclaimable when no container uses them), and the build cache by the
 * records no image shares (reclaimable unless a running build holds them).
 */
export function diskUsage(engine: Engine): DiskUsage {
  const containers = engine.containers.list();
  const images = engine.images.list();
  const usedImages = new Set(containers.map((c) => c.Image));
  const blobSize = new Map<string, number>();
  const usedBlobs = new Set<string>();
  const layerImages = new Map<string, number>();
  for (const img of images) {
    const blobs = [...img.manifest.layers.map((l) => [l.digest, l.size] as const), [img.manifest.config.digest, img.manifest.config.size] as const];
    for (const [d, s] of blobs) {
      blobSize.set(d, s);
      if (usedImages.has(img.id)) usedBlobs.add(d);
    }
    for (const d of new Set(img.manifest.layers.map((l) => l.digest))) layerImages.set(d, (layerImages.get(d) ?? 0) + 1);
  }
  const imageBytes = [...blobSize.values()].reduce((a, b) => a + b, 0);
  const usedImageBytes = [...usedBlobs].reduce((a, d) => a + (blobSize.get(d) ?? 0), 0);
  const imageItems = images.map((image) => ({
    image,
    sharedSize: image.manifest.layers.reduce((n, l) => n + ((layerImages.get(l.digest) ?? 0) > 1 ? l.size : 0), 0),
    containers: containers.filter((c) => c.Image === image.id).length,
  }));

  let ctrBytes = 0;
  let ctrReclaim = 0;
  const containerItems = containers.map((c) => {
    const n = treeBytes(c.GraphDriver?.Data?.UpperDir || join(engine.containers.dir(c.Id), 'upper'));
    ctrBytes += n;
    if (!c.State.Running) ctrReclaim += n;
    return { container: c, size: n };
  });

  const volumes = engine.volumes.list();
  let volBytes = 0;
  let volReclaim = 0;
  let volActive = 0;
  const volumeItems = volumes.map((v) => {
    const n = treeBytes(v.Mountpoint);
    volBytes += n;
    const links = containers.filter((c) => c.Mounts.some((m) => m.Type === 'volume' && m.Name === v.Name)).length;
    if (links > 0) volActive++;
    else volReclaim += n;
    return { volume: v, links, size: n };
  });

  const cache = buildCacheRecords(engine, images);
  const cacheBytes = ownBytes(cache);
  const inUse = cache.filter((r) => r.inUse);
  return {
    images: { total: images.length, active: images.filter((i) => usedImages.has(i.id)).length, size: imageBytes, reclaimable: imageBytes - usedImageBytes },
    containers: { total: containers.length, active: containers.filter((c) => c.State.Running).length, size: ctrBytes, reclaimable: ctrReclaim },
    volumes: { total: volumes.length, active: volActive, size: volBytes, reclaimable: volReclaim },
    buildCache: { total: cache.length, active: inUse.length, size: cacheBytes, reclaimable: cacheBytes - ownBytes(inUse) },
    items: { images: imageItems, containers: containerItems, volumes: volumeItems, buildCache: cache },
  };
}
