import { createReadStream, createWriteStream, mkdirSync, rmSync, rmdirSync, existsSync, statSync, lstatSync } from 'node:fs';
import { join, posix, basename } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { conflict, invalidArgument, notFound } from '../base/errors.js';
import { isMountPoint, mountOverlay, unmount } from '../sys/mount.js';
import { listChanges, writeLayerTar, writeTreeTar, type Change } from '../storage/changes.js';
import { applyLayer, lookupLower } from '../storage/apply.js';
import { resolveInRoot } from '../storage/rootpath.js';
import { applyChanges } from '../image/changes.js';
import { parseReference } from '../image/reference.js';
import { MEDIA_OCI_LAYER, type Image, type ImageConfig } from '../image/types.js';
import type { Engine } from './engine.js';
import type { ContainerRecord } from './container.js';

/** diff, commit, export and cp: what a container's filesystem holds, read from its overlay layers. */

async function lowersOf(engine: Engine, rec: ContainerRecord): Promise<string[]> {
  const lowers = await engine.layers.ensure(engine.images.resolve(rec.Image));
  return lowers.length ? lowers : [engine.layers.emptyDir()];
}

/**
 * Runs fn with the container's merged root available: the live mount of a running container, or a temporary
 * overlay mount (removed afterwards, also on failure) for a stopped one. With `freeze`, a running container is
 * paused meanwhile (as Docker does for cp): its processes cannot swap a path for a symlink between berth resolving
 * it inside the root and using it.
 */
export async function withRootfs<T>(engine: Engine, rec: ContainerRecord, fn: (rootfs: string) => Promise<T>, freeze = false): Promise<T> {
  const live = rec.GraphDriver.Data.MergedDir;
  if (rec.State.Running && isMountPoint(live)) {
    const pause = freeze && !rec.State.Paused;
    if (pause) await engine.runtimeFor(rec).pause(rec.Id);
    try {
      return await fn(live);
    } finally {
      if (pause) await engine.runtimeFor(rec).resume(rec.Id);
    }
  }
  const dir = join(engine.containers.dir(rec.Id), `tmpmnt-${randomBytes(4).toString('hex')}`);
  const work = join(engine.containers.dir(rec.Id), 'work');
  mkdirSync(dir, { recursive: true });
  mkdirSync(work, { recursive: true });
  try {
    mountOverlay(await lowersOf(engine, rec), rec.GraphDriver.Data.UpperDir, work, dir);
    try {
      return await fn(dir);
    } finally {
      unmount(dir);
    }
  } finally {
    // not recursive: should the unmount have failed, this must not delete the container's files through it
    rmdirSync(dir);
  }
}

/**
 * Mount points the runtime creates in a container's writable layer when the image lacks them (Docker keeps them in
 * a separate init layer): they are not the container's changes, for diff and commit.
 */
const RUNTIME_MOUNT_POINTS = ['/etc/resolv.conf', '/etc/hostname', '/etc/hosts', '/proc', '/sys', '/dev'];

function runtimeMountPoints(lowers: string[]): Set<string> {
  return new Set(RUNTIME_MOUNT_POINTS.filter((p) => !lookupLower(lowers, p.split('/').filter(Boolean))));
}

export async function containerChanges(engine: Engine, ref: string): Promise<Change[]> {
  const rec = engine.containers.resolve(ref);
  const lowers = await lowersOf(engine, rec);
  return listChanges(rec.GraphDriver.Data.UpperDir, lowers, { ignore: runtimeMountPoints(lowers) });
}

export async function exportContainer(engine: Engine, ref: string, out: Writable | NodeJS.WritableStream): Promise<void> {
  const rec = engine.containers.resolve(ref);
  await withRootfs(engine, rec, async (root) => {
    await writeTreeTar(root, out, { end: false });
  });
}

export interface CommitOptions {
  name?: string;
  changes?: string[];
  message?: string;
  author?: string;
  pause?: boolean;
}

/** Turns the container's writable layer into a new image on top of its image. */
export async function commitContainer(engine: Engine, ref: string, o: CommitOptions = {}): Promise<Image> {
  const rec = engine.containers.resolve(ref);
  applyChanges({}, o.changes ?? []); // a bad --change fails before anything is written
  if (o.name !== undefined) parseReference(o.name);
  const base = engine.images.resolve(rec.Image);
  const lowers = await lowersOf(engine, rec);
  const paused = o.pause !== false && rec.State.Running && !rec.State.Paused;
  if (paused) await engine.runtimeFor(rec).pause(rec.Id);
  const lease = engine.images.lease();
  try {
    const tmp = join(engine.paths.tmp, `commit-${rec.Id.slice(0, 12)}-${randomBytes(4).toString('hex')}.tar`);
    mkdirSync(engine.paths.tmp, { recursive: true });
    let layer;
    try {
      const out = createWriteStream(tmp);
      const r = await writeLayerTar(rec.GraphDriver.Data.UpperDir, lowers, out, { ignore: runtimeMountPoints(lowers) });
      await finished(out);
      const blob = await engine.images.ingestBlob(createReadStream(tmp), { lease });
      layer = { mediaType: MEDIA_OCI_LAYER, digest: blob.digest, size: blob.size, diffId: r.digest };
    } finally {
      rmSync(tmp, { force: true });
    }
    const now = new Date().toISOString();
    const cfg: ImageConfig = structuredClone(base.config);
    cfg.created = now;
    if (o.author) cfg.author = o.author;
    const c = { ...(cfg.config ?? {}) };
    c.Env = rec.Config.Env;
    c.Cmd = rec.Config.Cmd;
    c.Entrypoint = rec.Config.Entrypoint;
    if (rec.Config.WorkingDir) c.WorkingDir = rec.Config.WorkingDir;
    if (rec.Config.User) c.User = rec.Config.User;
    if (Object.keys(rec.Config.Labels).length) c.Labels = rec.Config.Labels;
    cfg.config = applyChanges(c, o.changes ?? []);
    cfg.rootfs = { type: 'layers', diff_ids: [...cfg.rootfs.diff_ids, layer.diffId] };
    cfg.history = [...(cfg.history ?? []), { created: now, created_by: [rec.Path, ...rec.Args].join(' '), ...(o.message ? { comment: o.message } : {}) }];
    return engine.images.addImage({
      config: cfg,
      layers: [...base.manifest.layers, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      ...(o.name ? { names: [o.name] } : {}),
    });
  } catch (e) {
    engine.images.discard(lease);
    throw e;
  } finally {
    lease.release();
    if (paused) await engine.runtimeFor(rec).resume(rec.Id).catch(() => undefined);
  }
}

/** Parses `CONTAINER:PATH`; a plain path (or "-") is on the host. */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.') || arg === '-') return { path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

/**
 * `cp CONTAINER:SRC DEST`: copies out of the container's root (paths resolved inside it, symlinks clamped to it).
 * Docker's rules: a SRC directory ending in "/." copies its contents; an existing DEST directory receives SRC by
 * its base name. DEST "-" writes a tar to `out`.
 */
export async function copyFromContainer(
  engine: Engine, ref: string, src: string, dest: string, out: NodeJS.WritableStream, o: { followLink?: boolean } = {},
): Promise<void> {
  const rec = engine.containers.resolve(ref);
  await withRootfs(engine, rec, async (root) => {
    const contentsOnly = src.endsWith('/.');
    const hostSrc = resolveInRoot(root, src, !!o.followLink);
    if (!existsSync(hostSrc) && !isSymlink(hostSrc)) throw notFound(`Could not find the file ${src} in container ${ref}`);
    const name = basename(posix.normalize(src)) || '/';
    if (dest === '-') {
      await writeTreeTar(hostSrc, out, { end: false, ...(contentsOnly ? {} : { prefix: name, includeRoot: true }) });
      return;
    }
    const srcIsDir = lstatSync(hostSrc).isDirectory();
    let target = dest;
    if (existsSync(dest) && statSync(dest).isDirectory() && !contentsOnly) target = join(dest, name === '/' ? '' : name);
    else if (!existsSync(dest) && dest.endsWith('/') && !srcIsDir) throw notFound(`destination directory ${dest} does not exist`);
    mkdirSync(srcIsDir ? target : join(target, '..'), { recursive: true });
    const pipe = new PassThrough();
    const writing = srcIsDir ? writeTreeTar(hostSrc, pipe) : writeTreeTar(hostSrc, pipe, { prefix: basename(target) });
    await Promise.all([writing, applyLayer(pipe, srcIsDir ? target : join(target, '..'), { plain: true })]);
  }, true);
}

/** `cp SRC CONTAINER:DEST`: copies a host file or directory into the container, never writing outside its root. */
export async function copyToContainer(engine: Engine, ref: string, src: string, dest: string): Promise<void> {
  const rec = engine.containers.resolve(ref);
  if (rec.HostConfig.ReadonlyRootfs && rec.State.Running) throw conflict('container rootfs is marked read-only');
  if (!existsSync(src)) throw notFound(`lstat ${src}: no such file or directory`);
  await withRootfs(engine, rec, async (root) => {
    const contentsOnly = src.endsWith('/.');
    const srcIsDir = statSync(src).isDirectory();
    const hostDest = resolveInRoot(root, dest);
    const destIsDir = existsSync(hostDest) && statSync(hostDest).isDirectory();
    if (!destIsDir && dest.endsWith('/') && !existsSync(hostDest)) throw notFound(`Could not find the file ${dest} in container ${ref}`);
    if (!srcIsDir && !destIsDir && dest.endsWith('/')) throw invalidArgument(`destination "${dest}" must be a directory`);
    if (srcIsDir && !destIsDir && existsSync(hostDest)) throw invalidArgument('cannot copy a directory to a file');
    let extractDir: string;
    let opts: { prefix?: string; includeRoot?: boolean };
    if (srcIsDir) {
      if (destIsDir && !contentsOnly) {
        extractDir = hostDest;
        opts = { prefix: basename(src), includeRoot: true };
      } else {
        extractDir = hostDest;
        opts = {};
      }
    } else {
      // A DEST that is a symlink is followed (inside the root), as docker cp does.
      extractDir = destIsDir ? hostDest : posix.dirname(hostDest);
      opts = { prefix: destIsDir ? basename(src) : posix.basename(hostDest) };
      if (!existsSync(extractDir)) throw notFound(`Could not find the file ${posix.dirname(dest)} in container ${ref}`);
    }
    const pipe = new PassThrough();
    await Promise.all([writeTreeTar(src, pipe, opts), applyLayer(pipe, extractDir, { plain: true })]);
  }, true);
}

/** `cp - CONTAINER:DEST`: extracts a tar read from `input` into the directory DEST, never writing outside the root. */
export async function copyTarToContainer(engine: Engine, ref: string, dest: string, input: AsyncIterable<Buffer>): Promise<void> {
  const rec = engine.containers.resolve(ref);
  if (rec.HostConfig.ReadonlyRootfs && rec.State.Running) throw conflict('container rootfs is marked read-only');
  await withRootfs(engine, rec, async (root) => {
    const hostDest = resolveInRoot(root, dest);
    if (!existsSync(hostDest)) throw notFound(`Could not find the file ${dest} in container ${ref}`);
    if (!statSync(hostDest).isDirectory()) throw invalidArgument(`destination "${ref}:${dest}" must be a directory`);
    await applyLayer(input, hostDest, { plain: true });
  }, true);
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
