import { conflict, isBerthError } from '../base/errors.js';
import { hex, type Digest } from '../base/digest.js';
import { familiarString, parseReference, isIdPrefix } from '../image/reference.js';
import type { Image } from '../image/types.js';
import { importRootfs, type ImportOptions } from '../image/importer.js';
import { loadArchive, type LoadResult } from '../image/archive.js';
import type { Engine } from './engine.js';
import { withLockSync } from '../base/fsutil.js';
import { NO_FILTER, pruneFilterMatches, type PruneFilter } from './prune-filter.js';

/** Image use cases over the store: Docker's rmi rules, prune, and the unpacked-layer GC that follows both. */

export interface RemoveResult {
  untagged: string[];
  deleted: string[];
}

function containersUsing(engine: Engine, img: Image): string[] {
  return engine.containers.list().filter((c) => c.Image === img.id).map((c) => c.Id);
}

/**
 * `rmi`: a name removes that name, and the image once it has none left; an id removes the image, which must have
 * at most one name unless forced. An image used by a container is a conflict unless forced; forced, only its
 * names go (like Docker, the image stays for the container).
 */
export function removeImage(engine: Engine, ref: string, force: boolean): RemoveResult {
  return withLockSync(engine.paths.lock('images'), () => removeImageLocked(engine, ref, force));
}

function removeImageLocked(engine: Engine, ref: string, force: boolean): RemoveResult {
  const img = engine.images.resolve(ref);
  const res: RemoveResult = { untagged: [], deleted: [] };
  const byName = !isIdPrefix(ref) || img.repoTags.some((t) => sameName(t, ref));
  const users = containersUsing(engine, img);
  if (byName && img.repoTags.length + img.repoDigests.length > 1) {
    const name = familiarString(parseReference(ref));
    engine.images.untag(name);
    res.untagged.push(name);
    return res;
  }
  if (users.length > 0) {
    if (!force) {
      const what = byName ? `remove repository reference "${ref}"` : `delete ${hex(img.id).slice(0, 12)}`;
      throw conflict(`conflict: unable to ${what} (must force) - container ${users[0]!.slice(0, 12)} is using its referenced image ${hex(img.id).slice(0, 12)}`);
    }
    for (const t of [...img.repoTags, ...img.repoDigests]) {
      engine.images.untag(t);
      res.untagged.push(t);
    }
    return res;
  }
  if (!byName && img.repoTags.length > 1 && !force) {
    throw conflict(`conflict: unable to delete ${hex(img.id).slice(0, 12)} (must be forced) - image is referenced in multiple repositories`);
  }
  res.untagged.push(...img.repoTags, ...img.repoDigests);
  engine.images.removeImage(img.id);
  const gc = gcLayers(engine);
  res.deleted.push(img.id, ...img.config.rootfs.diff_ids.filter((d) => gc.layers.includes(hex(d))));
  return res;
}

function sameName(tag: string, ref: string): boolean {
  try {
    return familiarString(parseReference(tag)) === familiarString(parseReference(ref));
  } catch {
    return false;
  }
}

/**
 * Deletes unreferenced blobs and the unpacked layers that no image in the store uses and no mounted overlay (a
 * running container) has as a lowerdir, plus what killed processes left in tmp/. Returns the blob bytes freed and
 * the removed layers (diff id hex).
 */
export function gcLayers(engine: Engine): { freed: number; layers: string[] } {
  const freed = engine.images.gcBlobs();
  const used = new Set<string>();
  for (const img of engine.images.list()) for (const d of img.config.rootfs.diff_ids) used.add(hex(d as Digest));
  const mounted = engine.layers.mounted();
  const removed: string[] = [];
  for (const l of engine.layers.list()) {
    if (used.has(l) || mounted.has(l)) continue;
    engine.layers.remove(l);
    removed.push(l);
  }
  engine.layers.cleanTemp();
  return { freed, layers: removed };
}

/**
 * The check import and load run on new layers before an image becomes visible: unpacking them, once. `undo`
 * removes again the layers it unpacked that no image uses, for a failed import or load.
 */
function layerUnpacker(engine: Engine) {
  const unpacked: string[] = [];
  return {
    unpack: async (l: { diffIds: Digest[]; blobs: Digest[] }): Promise<void> => {
      const fresh = l.diffIds.filter((d) => !engine.layers.has(d));
      await engine.layers.ensureChain(l.diffIds, l.blobs);
      unpacked.push(...fresh.map(hex));
    },
    undo: (): void => {
      if (!unpacked.length) return;
      const used = new Set(engine.images.list().flatMap((i) => i.config.rootfs.diff_ids.map((d) => hex(d as Digest))));
      for (const l of unpacked) if (!used.has(l)) engine.layers.remove(l);
    },
  };
}

/** `import`: a rootfs tar becomes an image whose layer is unpacked (and so validated) before it is named. */
export async function importImage(engine: Engine, input: AsyncIterable<Buffer>, opts: ImportOptions = {}): Promise<Image> {
  const layers = layerUnpacker(engine);
  try {
    return await importRootfs(engine.images, input, { ...opts, verifyLayer: (l) => layers.unpack({ diffIds: [l.diffId], blobs: [l.blob] }) });
  } catch (e) {
    layers.undo();
    throw e;
  }
}

/** `load`: every image of the archive, its layers unpacked (and so validated) before any of them is named. */
export async function loadImages(engine: Engine, input: AsyncIterable<Buffer>): Promise<LoadResult> {
  const layers = layerUnpacker(engine);
  try {
    return await loadArchive(engine.images, input, { verifyImage: layers.unpack });
  } catch (e) {
    layers.undo();
    throw e;
  }
}

/** `image prune`: dangling images (or with `all`, every image no container uses) that the filter lets go. */
export function pruneImages(engine: Engine, all: boolean, filter: PruneFilter = NO_FILTER): { deleted: string[]; untagged: string[]; freed: number } {
  return withLockSync(engine.paths.lock('images'), () => pruneImagesLocked(engine, all, filter));
}

function pruneImagesLocked(engine: Engine, all: boolean, filter: PruneFilter): { deleted: string[]; untagged: string[]; freed: number } {
  const inUse = new Set(engine.containers.list().map((c) => c.Image));
  const deleted: string[] = [];
  const untagged: string[] = [];
  for (const img of engine.images.list()) {
    if (inUse.has(img.id)) continue;
    if (!all && img.repoTags.length > 0) continue;
    if (!pruneFilterMatches(filter, img.config.created, img.config.config?.Labels)) continue;
    if (all) {
      try {
        engine.images.removeImage(img.id);
      } catch (e) {
        if (isBerthError(e, 'not-found')) continue; // removed by another berth process meanwhile
        throw e;
      }
      untagged.push(...img.repoTags, ...img.repoDigests);
    } else if (!engine.images.removeIfDangling(img.id)) {
      continue; // named by another berth process meanwhile
    }
    deleted.push(img.id);
  }
  const gc = gcLayers(engine);
  deleted.push(...gc.layers.map((l) => `sha256:${l}`));
  return { deleted, untagged, freed: gc.freed };
}
