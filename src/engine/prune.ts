import { join } from 'node:path';
import { invalidArgument, isBerthError } from '../base/errors.js';
import type { Engine } from './engine.js';
import { removeContainer, volumeUsers } from './lifecycle.js';
import { pruneImages } from './images.js';
import { pruneBuildCache, treeBytes } from './disk-usage.js';
import { NO_FILTER, pruneFilterMatches, type PruneFilter } from './prune-filter.js';
import { sweepStaleBuilds } from '../build/sweep.js';

/** The prune use cases: stopped containers, unused volumes, and `system prune`, which runs them all. */

/** What a prune removed (ids or names, in the order they went) and the bytes that freed. */
export interface PruneReport {
  deleted: string[];
  reclaimed: number;
}

/** An image prune also lists the names it removed. */
export interface ImagePruneReport extends PruneReport {
  untagged: string[];
}

/**
 * `container prune`: every container that is not running (a paused one is) and that the filter lets go. A
 * container's bytes are those of its writable layer, counted as `system df` counts them. One started or removed
 * by another process meanwhile is skipped.
 */
export async function pruneContainers(engine: Engine, filter: PruneFilter = NO_FILTER): Promise<PruneReport> {
  const report: PruneReport = { deleted: [], reclaimed: 0 };
  for (const c of engine.containers.list()) {
    if (c.State.Running || !pruneFilterMatches(filter, c.Created, c.Config.Labels)) continue;
    const bytes = treeBytes(c.GraphDriver?.Data?.UpperDir || join(engine.containers.dir(c.Id), 'upper'));
    try {
      await removeContainer(engine, c.Id);
    } catch (e) {
      if (isBerthError(e, 'not-found') || isBerthError(e, 'conflict')) continue;
      throw e;
    }
    report.deleted.push(c.Id);
    report.reclaimed += bytes;
  }
  return report;
}

/**
 * `volume prune`: volumes no container (running or not) mounts, only anonymous ones unless `all`, that the filter
 * lets go (labels only: like Docker, volumes have no `until`).
 */
export function pruneVolumes(engine: Engine, o: { all?: boolean; filter?: PruneFilter } = {}): PruneReport {
  const filter = o.filter ?? NO_FILTER;
  if (filter.until !== undefined) throw invalidArgument("invalid filter 'until'");
  const report: PruneReport = { deleted: [], reclaimed: 0 };
  for (const v of engine.volumes.list()) {
    if (!o.all && !v.Anonymous) continue;
    if (!pruneFilterMatches(filter, undefined, v.Labels) || volumeUsers(engine, v.Name).length > 0) continue;
    const bytes = treeBytes(v.Mountpoint);
    engine.volumes.remove(v.Name, [], true);
    report.deleted.push(v.Name);
    report.reclaimed += bytes;
  }
  return report;
}

export interface SystemPruneOptions {
  /** Every unused image and all build cache, not just dangling ones. */
  all: boolean;
  /** Also anonymous volumes no container uses. */
  volumes: boolean;
  filter: PruneFilter;
}

export interface SystemPruneReport {
  containers: PruneReport;
  /** Present when volumes were pruned. */
  volumes?: PruneReport;
  images: ImagePruneReport;
  buildCache: PruneReport;
}

/**
 * `system prune`, in Docker's order so that each step frees what the previous one released: stopped containers,
 * (anonymous volumes), images (dangling, or every unused one with `all`), build cache (what no image shares, or
 * all of it with `all`). The filter goes to each as Docker's daemon applies it: labels and `until` to containers
 * and images, labels to volumes (`until` is refused there), `until` (as last use) to the build cache, which
 * accepts label filters and ignores them. First, what killed builds left behind is swept, so their mounts no
 * longer hold layers the image prune could free.
 */
export async function pruneSystem(engine: Engine, o: SystemPruneOptions): Promise<SystemPruneReport> {
  if (o.volumes && o.filter.until !== undefined) throw invalidArgument("invalid filter 'until'");
  await sweepStaleBuilds(engine);
  const containers = await pruneContainers(engine, o.filter);
  const volumes = o.volumes ? pruneVolumes(engine, { filter: o.filter }) : undefined;
  const img = pruneImages(engine, o.all, o.filter);
  const usedUntil = o.filter.until === undefined ? {} : { usedUntil: Number(o.filter.until.ns / 1_000_000n) };
  const cache = pruneBuildCache(engine, { all: o.all, ...usedUntil });
  return {
    containers,
    ...(volumes ? { volumes } : {}),
    images: { deleted: img.deleted, untagged: img.untagged, reclaimed: img.freed },
    buildCache: { deleted: cache.deleted, reclaimed: cache.reclaimed },
  };
}
