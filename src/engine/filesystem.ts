import { createReadStream, createWriteStream, mkdirSync, rmSync, rmdirSync, existsSync, statSync, lstatSync } from 'node:fs';
import { join, posix, basename } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { invalidArgument, notFound } from '../base/errors.js';
import { isMountPoint, mountOverlay, unmount } from '../sys/mount.js';
import { listChanges, writeLayerTar, writeTreeTar, type Change, type TreeTarOptions } from '../storage/changes.js';
import { applyLayer, lookupLower, splitEntryName } from '../storage/apply.js';
import { walkPath } from '../storage/rootpath.js';
import { readTar, TarWriter, type TarEntry } from '../image/tar.js';
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
 * `cp CONTAINER:SRC DEST`: copies out of the container as its processes see it: paths are resolved through its
 * volume and bind mounts (symlinks followed inside the container, never out of it), and a directory with mounts
 * below it is archived with the mounts' content. Docker's rules: a SRC directory ending in "/." copies its contents;
 * an existing DEST directory receives SRC by its base name. DEST "-" writes a tar to `out`.
 */
export async function copyFromContainer(
  engine: Engine, ref: string, src: string, dest: string, out: NodeJS.WritableStream, o: { followLink?: boolean } = {},
): Promise<void> {
  const rec = engine.containers.resolve(ref);
  await withRootfs(engine, rec, async (root) => {
    const mounts = cpMounts(rec, root);
    const contentsOnly = src.endsWith('/.');
    const from = resolveContainerPath(root, mounts, src, !!o.followLink);
    const hostSrc = from.host;
    if (!existsSync(hostSrc) && !isSymlink(hostSrc)) throw notFound(`Could not find the file ${src} in container ${ref}`);
    const name = basename(posix.normalize(src)) || '/';
    if (dest === '-') {
      await writeTreeWithMounts(hostSrc, from.path, mounts, out, { end: false, ...(contentsOnly ? {} : { prefix: name, includeRoot: true }) });
      return;
    }
    const srcIsDir = lstatSync(hostSrc).isDirectory();
    let target = dest;
    if (existsSync(dest) && statSync(dest).isDirectory() && !contentsOnly) target = join(dest, name === '/' ? '' : name);
    else if (!existsSync(dest) && dest.endsWith('/') && !srcIsDir) throw notFound(`destination directory ${dest} does not exist`);
    mkdirSync(srcIsDir ? target : join(target, '..'), { recursive: true });
    const pipe = new PassThrough();
    const writing = srcIsDir ? writeTreeWithMounts(hostSrc, from.path, mounts, pipe, {}) : writeTreeTar(hostSrc, pipe, { prefix: basename(target) });
    await Promise.all([writing, applyLayer(pipe, srcIsDir ? target : join(target, '..'), { plain: true })]);
  }, true);
}

/**
 * `cp SRC CONTAINER:DEST`: copies a host file or directory into the container, as its processes see it: into a
 * volume or bind mount where one is mounted (entries below a mount go into it), never writing outside the root
 * or the mounts' sources. Refused like Docker: into a read-only mount, or a read-only root outside the mounts.
 */
export async function copyToContainer(engine: Engine, ref: string, src: string, dest: string): Promise<void> {
  const rec = engine.containers.resolve(ref);
  if (!existsSync(src)) throw notFound(`lstat ${src}: no such file or directory`);
  await withRootfs(engine, rec, async (root) => {
    const mounts = cpMounts(rec, root);
    const contentsOnly = src.endsWith('/.');
    const srcIsDir = statSync(src).isDirectory();
    // A DEST that is a symlink is followed (inside the container), as docker cp does.
    const to = resolveContainerPath(root, mounts, dest);
    const hostDest = to.host;
    const destIsDir = existsSync(hostDest) && statSync(hostDest).isDirectory();
    if (!destIsDir && dest.endsWith('/') && !existsSync(hostDest)) throw notFound(`Could not find the file ${dest} in container ${ref}`);
    if (!srcIsDir && !destIsDir && dest.endsWith('/')) throw invalidArgument(`destination "${dest}" must be a directory`);
    if (srcIsDir && !destIsDir && existsSync(hostDest)) throw invalidArgument('cannot copy a directory to a file');
    let extractDir: string; // in the container
    let opts: { prefix?: string; includeRoot?: boolean };
    if (srcIsDir) {
      extractDir = to.path;
      opts = destIsDir && !contentsOnly ? { prefix: basename(src), includeRoot: true } : {};
    } else {
      extractDir = destIsDir ? to.path : posix.dirname(to.path);
      opts = { prefix: destIsDir ? basename(src) : posix.basename(to.path) };
      if (!existsSync(backing(root, mounts, extractDir).host)) throw notFound(`Could not find the file ${posix.dirname(dest)} in container ${ref}`);
      if (!destIsDir && to.mount?.destination === to.path) throw invalidArgument(`unlinkat ${to.path}: device or resource busy`); // a mounted file
    }
    checkWritable(rec, mounts, extractDir);
    const pipe = new PassThrough();
    await Promise.all([writeTreeTar(src, pipe, opts), extractWithMounts(pipe, root, mounts, extractDir)]);
  }, true);
}

/** `cp - CONTAINER:DEST`: extracts a tar read from `input` into the directory DEST, as copyToContainer places files. */
export async function copyTarToContainer(engine: Engine, ref: string, dest: string, input: AsyncIterable<Buffer>): Promise<void> {
  const rec = engine.containers.resolve(ref);
  await withRootfs(engine, rec, async (root) => {
    const mounts = cpMounts(rec, root);
    const to = resolveContainerPath(root, mounts, dest);
    if (!existsSync(to.host)) throw notFound(`Could not find the file ${dest} in container ${ref}`);
    if (!statSync(to.host).isDirectory()) throw invalidArgument(`destination "${ref}:${dest}" must be a directory`);
    checkWritable(rec, mounts, to.path);
    await extractWithMounts(input, root, mounts, to.path);
  }, true);
}

// ---------------------------------------------------------------------------------------------------------------
// The container's filesystem as its processes see it: the root with the volume and bind mounts over it

/** A volume or bind mount of a container: where the container sees it, and the host path behind it. */
export interface CpMount {
  /** Absolute, normalized, with the root's symlinks resolved as the runtime resolved them when mounting. */
  destination: string;
  source: string;
  rw: boolean;
}

/**
 * A container's volume and bind mounts, longest destination first (the first that prefixes a path is the one
 * that holds it). Destinations are resolved in mount order (shallowest first, as the runtime mounts them) through
 * the symlinks of the root and of the mounts before them: a mount at /var/run over a /var/run -> /run link is at /run.
 * tmpfs mounts are not among them: they exist only inside a running container, and docker cp, too, sees the
 * layer beneath them.
 */
export function cpMounts(rec: ContainerRecord, root: string): CpMount[] {
  const depth = (p: string) => posix.normalize(p).split('/').filter(Boolean).length;
  const ordered = rec.Mounts.filter((m) => m.Type === 'bind' || m.Type === 'volume').sort((a, b) => depth(a.Destination) - depth(b.Destination));
  const mounts: CpMount[] = [];
  for (const m of ordered) {
    const destination = resolveContainerPath(root, mounts, m.Destination).path;
    if (destination === '/') continue; // cannot be created; never over the root
    mounts.push({ destination, source: m.Source, rw: m.RW });
    mounts.sort((a, b) => b.destination.length - a.destination.length);
  }
  return mounts;
}

/** A container path resolved to what backs it on the host. */
export interface ResolvedPath {
  /** The container path with every symlink followed ("/data/x"). */
  path: string;
  /** The host path behind it: in the mount that holds it, else in the root. */
  host: string;
  mount: CpMount | undefined;
}

/**
 * Resolves `path` as the container's processes would, with `root` as "/" and the mounts over it: each component is
 * looked up in the mount with the longest destination that prefixes it (else in the root), symlinks are followed
 * (absolute ones from the container's "/", so also out of a mount into the root or another mount), ".." never climbs
 * above "/". The result is always inside `root` or a mount's source. The final component's symlink is followed
 * unless `followFinal` is false. Missing components are kept as they are. Errors are walkPath's (ELOOP); with no mounts
 * this is resolveInRoot.
 */
export function resolveContainerPath(root: string, mounts: readonly CpMount[], path: string, followFinal = true): ResolvedPath {
  const lookup = (cpath: string) => {
    const { host, mount } = backing(root, mounts, cpath);
    // A mount's own root is not a symlink of the container (the kernel resolved its source when mounting).
    return mount?.destination === cpath ? undefined : host;
  };
  const p = walkPath(path, lookup, followFinal);
  return { path: p, ...backing(root, mounts, p) };
}

/** The mount that holds an already resolved container path: the one with the longest destination prefixing it. */
function holder(mounts: readonly CpMount[], cpath: string): CpMount | undefined {
  return mounts.find((m) => cpath === m.destination || isBelow(cpath, m.destination));
}

/** The host path behind an already resolved container path. */
function backing(root: string, mounts: readonly CpMount[], cpath: string): { host: string; mount: CpMount | undefined } {
  const mount = holder(mounts, cpath);
  if (mount) return { host: mount.source + cpath.slice(mount.destination.length), mount };
  return { host: cpath === '/' ? root : root + cpath, mount };
}

/** Whether container path `p` lies strictly below directory `dir`. */
function isBelow(p: string, dir: string): boolean {
  return p !== dir && p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** Docker's check of where cp extracts: a read-only mount there, else a read-only root, refuses. */
function checkWritable(rec: ContainerRecord, mounts: readonly CpMount[], cdir: string): void {
  const mount = holder(mounts, cdir);
  if (mount ? !mount.rw : rec.HostConfig.ReadonlyRootfs) {
    throw invalidArgument(mount ? 'mounted volume is marked read-only' : 'container rootfs is marked read-only');
  }
}

/**
 * Archives the container directory `cpath` (backed by `host`) like writeTreeTar, but with the content of the
 * mounts below it in place of what the layer holds at their mount points.
 */
async function writeTreeWithMounts(
  host: string, cpath: string, mounts: readonly CpMount[], out: NodeJS.WritableStream | Writable, opts: TreeTarOptions,
): Promise<void> {
  const below = lstatSync(host).isDirectory() ? mounts.filter((m) => isBelow(m.destination, cpath)) : [];
  if (below.length === 0) {
    await writeTreeTar(host, out, opts);
    return;
  }
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const under = (dir: string, p: string) => (dir === '/' ? p.slice(1) : p.slice(dir.length + 1));
  const sources = [ // parents first: the root, then the mounts shallowest first
    { host, cpath, prefix, includeRoot: !!opts.includeRoot },
    ...[...below].reverse().map((m) => ({ host: m.source, cpath: m.destination, prefix: posix.join(prefix, under(cpath, m.destination)), includeRoot: true })),
  ];
  const w = new TarWriter(out, { end: opts.end ?? true });
  for (const s of sources) {
    const hidden = below.filter((m) => isBelow(m.destination, s.cpath));
    const pipe = new PassThrough();
    const copying = (async () => {
      for await (const { entry, body } of readTar(pipe)) {
        const rel = splitEntryName(entry.name.startsWith(s.prefix) ? entry.name.slice(s.prefix.length) : entry.name) ?? [];
        const c = posix.join(s.cpath, ...rel);
        if (hidden.some((m) => c === m.destination || isBelow(c, m.destination))) continue;
        await w.add(entry, entry.type === 'file' ? body : undefined);
      }
    })();
    await Promise.all([writeTreeTar(s.host, pipe, { prefix: s.prefix, includeRoot: s.includeRoot }), copying]);
  }
  await w.finish();
}

/**
 * Extracts a plain tar into the container directory `cdir`, as the container would see the files land: entries
 * below a mount go into that mount's source (a read-only one refuses), the rest into the host directory behind
 * `cdir`. Each part is extracted by applyLayer, which keeps every entry inside its own directory.
 */
async function extractWithMounts(input: AsyncIterable<Buffer>, root: string, mounts: readonly CpMount[], cdir: string): Promise<void> {
  const base = backing(root, mounts, cdir).host;
  const below = mounts.filter((m) => isBelow(m.destination, cdir));
  if (below.length === 0) {
    await applyLayer(input, base, { plain: true });
    return;
  }
  let fail: (e: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => undefined); // raced below; a failure nobody raced is awaited through its sink
  const sinks = new Map<CpMount | undefined, { w: TarWriter; done: Promise<unknown> }>();
  const sink = (m: CpMount | undefined) => {
    let s = sinks.get(m);
    if (!s) {
      if (m && !m.rw) throw invalidArgument('mounted volume is marked read-only');
      if (m && !statSync(m.source).isDirectory()) throw invalidArgument(`unlinkat ${m.destination}: device or resource busy`);
      const w = new TarWriter();
      const done = applyLayer(w.readable!, m ? m.source : base, { plain: true });
      done.catch(fail);
      s = { w, done };
      sinks.set(m, s);
    }
    return s;
  };
  /** Which mount an archive name lands in, and its name there. */
  const place = (name: string): { m: CpMount | undefined; name: string } => {
    const parts = splitEntryName(name);
    if (!parts) return { m: undefined, name }; // applyLayer refuses it
    const c = posix.join(cdir, ...parts);
    const m = holder(below, c);
    return m ? { m, name: c === m.destination ? '.' : c.slice(m.destination.length + 1) } : { m, name };
  };
  for await (const { entry, body } of readTar(input)) {
    const at = place(entry.name);
    if (at.m && at.name === '.' && entry.type !== 'dir') {
      throw invalidArgument(`cannot overwrite directory "${at.m.destination}" with non-directory "${entry.name}"`);
    }
    const e: TarEntry = at.m ? { ...entry, name: entry.type === 'dir' ? `${at.name}/` : at.name } : entry;
    if (entry.type === 'hardlink' && entry.linkname !== undefined) {
      const to = place(entry.linkname);
      if (to.m !== at.m) throw invalidArgument(`link ${entry.linkname} ${entry.name}: invalid cross-device link`);
      e.linkname = to.name;
    }
    await Promise.race([sink(at.m).w.add(e, entry.type === 'file' ? body : undefined), failed]);
  }
  for (const s of sinks.values()) await Promise.race([s.w.finish(), failed]);
  await Promise.all([...sinks.values()].map((s) => s.done));
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
