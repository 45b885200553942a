import {
  chmodSync, closeSync, constants, copyFileSync, existsSync, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, writeSync, type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';
import { invalidArgument } from '../base/errors.js';
import { resolveInRoot } from '../storage/rootpath.js';

/**
 * What COPY and ADD place into a step's root, after the builder worked out every source and its destination: host
 * entries (files, directories, symlinks, copied as they are, links never followed) and literal data (heredocs,
 * downloads). Destinations are container paths, resolved inside the root (symlinks clamped to it).
 */
export type CopyItem =
  | {
    kind: 'entry'; src: string; stat: Stats; dest: string;
    /** The destination directory a directory source fills. */
    root?: boolean;
    /** A regular file's content digest (the build context's), when its placement is to be recorded (PlacedFiles). */
    digest?: string;
  }
  | { kind: 'data'; data: string | Buffer; dest: string; mode: number; mtime?: Date };

/**
 * Owner and mode of what is copied: `--chown` (when absent: root for the context, the source's owner for
 * `--from`) and `--chmod` (kept from the source when absent).
 */
export interface CopyOwnership {
  /** Undefined: keep the source's owner. */
  uid?: number;
  gid?: number;
  chmod?: number;
  /** --chown was given: new parent directories get the owner too (BuildKit). */
  chownParents: boolean;
}

/** Regular files a placement wrote, by path relative to the root (symlinks resolved) -> content digest. */
export type PlacedFiles = Record<string, string>;

/**
 * An earlier layer directory (immutable, as every unpacked layer) and the files a placement recorded in it: an
 * incremental COPY hard-links those whose content digest and metadata are what it would write, instead of creating
 * each file again (creating an inode is most of a COPY's cost; a link is about a tenth of it).
 */
export interface LinkSource {
  dir: string;
  placed: PlacedFiles;
}

/** A file to hard-link from a LinkSource into the step's upper dir, once the overlay is unmounted. */
export interface DeferredLink {
  /** Its path relative to the root, the same in the earlier layer and in the upper dir. */
  rel: string;
  item: CopyItem;
}

/** What placeItems did: the files it recorded, and those it left to link (see linkDeferred). */
export interface Placement {
  placed: PlacedFiles;
  links: DeferredLink[];
}

/** A COPY/ADD destination that is a directory by its spelling: a trailing slash, or "." (BuildKit's NormalizePath). */
export function destNamesDir(dest: string): boolean {
  return dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
}

/** Whether a container path is an existing directory in the root (following symlinks inside it). */
export function isDirIn(rootfs: string, ctrPath: string): boolean {
  try {
    return lstatSync(resolveInRoot(rootfs, ctrPath)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Places the items in order (parents before children). Files that are hard links of each other in the source stay
 * hard links of each other in the destination. With `reuse`, a regular file that the earlier layer holds as it
 * would be written here (same content digest, owner, mode, size and mtime; nothing at its path yet; its parent in
 * the upper dir) is not written but returned to link (linkDeferred), and files with a digest are recorded.
 */
export function placeItems(rootfs: string, items: readonly CopyItem[], o: CopyOwnership, reuse?: { from: LinkSource; upper: string }): Placement {
  const links = new Map<string, string>();
  const dirs: Dirs = { host: new Map(), made: new Set() };
  // Upper-dir paths (relative) known to be directories, for linking into.
  const upperDirs = new Set<string>();
  const out: Placement = { placed: {}, links: [] };
  const note = (host: string, digest?: string) => {
    const rel = host.slice(rootfs.length + 1);
    if (digest !== undefined) out.placed[rel] = digest;
    else delete out.placed[rel];
  };
  // A destination written twice ends as the last write: only files placed once are linked.
  const seen = new Set<string>();
  const repeated = new Set<string>();
  if (reuse) for (const it of items) (seen.has(it.dest) ? repeated : seen).add(it.dest);
  for (const it of items) {
    if (it.kind === 'data') {
      const host = prepareFile(rootfs, it.dest, o, dirs);
      writeFileSync(host, it.data);
      lchownSync(host, o.uid ?? 0, o.gid ?? 0);
      chmodSync(host, o.chmod ?? it.mode);
      if (it.mtime) utimesSync(host, it.mtime, it.mtime);
      note(host);
      continue;
    }
    const st = it.stat;
    if (st.isDirectory()) {
      const ctrDir = posix.normalize('/' + it.dest);
      const host = dirs.host.get(ctrDir) ?? resolveInRoot(rootfs, it.dest);
      if (!existsSync(host)) {
        ensureParents(rootfs, it.dest, o, dirs);
        mkdirSync(host);
        dirs.host.set(ctrDir, host);
        dirs.made.add(host);
        if (it.root) {
          // The directory a directory's contents go to is made like a missing parent (as buildah and Docker do).
          lchownSync(host, o.uid ?? 0, o.gid ?? 0);
          chmodSync(host, 0o755);
          continue;
        }
        lchownSync(host, o.uid ?? st.uid, o.gid ?? st.gid);
        chmodSync(host, o.chmod ?? st.mode & 0o7777);
        utimesSync(host, st.atime, st.mtime);
      } else if (!lstatSync(host).isDirectory()) {
        throw invalidArgument(`cannot copy a directory to ${it.dest}: a file is in the way`);
      } else dirs.host.set(ctrDir, host);
      continue;
    }
    if (st.isFile() && st.nlink === 1) {
      const uid = o.uid ?? st.uid;
      const gid = o.gid ?? st.gid;
      const mode = o.chmod ?? st.mode & 0o7777;
      const parent = ensureParents(rootfs, it.dest, o, dirs);
      const host = join(parent, posix.basename(it.dest));
      if (reuse && it.digest !== undefined && !repeated.has(it.dest)) {
        const rel = host.slice(rootfs.length + 1);
        const relParent = parent.slice(rootfs.length + 1);
        if (!upperDirs.has(relParent) && lstatSync(join(reuse.upper, relParent), { throwIfNoEntry: false })?.isDirectory()) upperDirs.add(relParent);
        // Nothing is at the path yet if this placement made its directory (and it is placed once).
        const free = () => dirs.made.has(parent) || lstatSync(host, { throwIfNoEntry: false }) === undefined;
        if (upperDirs.has(relParent) && linkable(reuse.from, rel, it.digest, st, uid, gid, mode) && free()) {
          out.links.push({ rel, item: it });
          out.placed[rel] = it.digest;
          continue;
        }
      }
      if (st.size <= SMALL_FILE) {
        if (!createSmallFile(it.src, host, uid, gid, mode, st) && !createSmallFile(it.src, prepareFile(rootfs, it.dest, o, dirs), uid, gid, mode, st)) {
          throw invalidArgument(`cannot copy to ${it.dest}: something appeared there meanwhile`);
        }
      } else {
        copyFileSync(it.src, prepareFile(rootfs, it.dest, o, dirs));
        lchownSync(host, uid, gid);
        chmodSync(host, mode);
        utimesSync(host, st.atime, st.mtime);
      }
      note(host, it.digest);
      continue;
    }
    const host = prepareFile(rootfs, it.dest, o, dirs);
    note(host);
    const inode = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 && !st.isDirectory() ? links.get(inode) : undefined;
    if (first !== undefined) {
      linkSync(first, host);
      continue;
    }
    if (st.nlink > 1) links.set(inode, host);
    if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(it.src), host);
      lchownSync(host, o.uid ?? st.uid, o.gid ?? st.gid);
      lutimesSync(host, st.atime, st.mtime);
    } else if (st.isFile()) {
      copyFileSync(it.src, host);
      lchownSync(host, o.uid ?? st.uid, o.gid ?? st.gid);
      chmodSync(host, o.chmod ?? st.mode & 0o7777);
      utimesSync(host, st.atime, st.mtime);
    }
    // Sockets, fifos and devices in a context are skipped, as BuildKit's context transfer does.
  }
  return out;
}

/**
 * Whether the earlier layer's file at `rel` is the file a copy would write: the digest recorded for it, and the
 * owner, mode, size and mtime (as set from the source, to the millisecond).
 */
function linkable(from: LinkSource, rel: string, digest: string, st: Stats, uid: number, gid: number, mode: number): boolean {
  if (from.placed[rel] !== digest) return false;
  const ref = lstatSync(join(from.dir, rel), { throwIfNoEntry: false });
  if (!ref?.isFile() || ref.size !== st.size || ref.uid !== uid || ref.gid !== gid || (ref.mode & 0o7777) !== mode) return false;
  return Math.abs(ref.mtimeMs - st.mtime.getTime()) < 0.5;
}

/**
 * Hard-links deferred files from the earlier layer into the step's upper dir. Only while the overlay is unmounted
 * (overlayfs does not allow changes to its layers under a mount). Returns the items that could not be linked
 * (the earlier layer was removed meanwhile), to place as usual.
 */
export function linkDeferred(from: LinkSource, upper: string, links: readonly DeferredLink[]): CopyItem[] {
  const failed: CopyItem[] = [];
  for (const l of links) {
    try {
      linkSync(join(from.dir, l.rel), join(upper, l.rel));
    } catch {
      failed.push(l.item);
    }
  }
  return failed;
}

/** Files up to this size are copied through user space with their metadata set on the open descriptor. */
const SMALL_FILE = 1 << 20;

/**
 * Creates `dst` (exclusively, never through a symlink) with the bytes of `src`, then owner, mode and times set on
 * the descriptor: one path walk through the overlay instead of one per call, and no lookup of a name that cannot
 * exist yet. Returns false, having touched nothing, if something is already at `dst` (prepareFile deals with it).
 */
function createSmallFile(src: string, dst: string, uid: number, gid: number, mode: number, st: Stats): boolean {
  let fd: number;
  try {
    fd = openSync(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    const data = st.size > 0 ? readFileSync(src) : undefined;
    for (let off = 0; data && off < data.length;) off += writeSync(fd, data, off, data.length - off);
    fchownSync(fd, uid, gid);
    // After the chown, which clears setuid and setgid bits.
    fchmodSync(fd, mode);
    futimesSync(fd, st.atime, st.mtime);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Every entry below a host directory, sorted, parents first, as [path relative to dir, stat]; links not followed. */
export function walkDir(dir: string): { rel: string; abs: string; stat: Stats }[] {
  const out: { rel: string; abs: string; stat: Stats }[] = [];
  const visit = (abs: string, rel: string) => {
    for (const name of readdirSync(abs).sort()) {
      const p = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      out.push({ rel: r, abs: p, stat: st });
      if (st.isDirectory()) visit(p, r);
    }
  };
  visit(dir, '');
  return out;
}

/**
 * Missing parents of a container path, created 0755 (owned by root, or by --chown's user); returns the parent's host
 * path. Each path component is resolved once per placement (`dirs`), not once per file.
 */
function ensureParents(rootfs: string, ctrPath: string, o: CopyOwnership, dirs: Dirs): string {
  const parent = posix.dirname(posix.normalize('/' + ctrPath));
  const known = dirs.host.get(parent);
  if (known !== undefined) return known;
  let cur = '/';
  let host = dirs.host.get('/') ?? resolveInRoot(rootfs, '/');
  dirs.host.set('/', host);
  for (const p of parent.split('/').filter(Boolean)) {
    cur = posix.join(cur, p);
    const seen = dirs.host.get(cur);
    if (seen !== undefined) {
      host = seen;
      continue;
    }
    host = resolveInRoot(rootfs, cur);
    if (existsSync(host)) {
      if (!lstatSync(host).isDirectory()) throw invalidArgument(`cannot copy to ${ctrPath}: ${cur} is not a directory`);
    } else {
      mkdirSync(host, { mode: 0o755 });
      chmodSync(host, 0o755);
      if (o.chownParents) lchownSync(host, o.uid ?? 0, o.gid ?? 0);
      dirs.made.add(host);
    }
    dirs.host.set(cur, host);
  }
  return host;
}

/**
 * Container directories resolved in one placement -> their host paths (created or checked here, so none can have
 * turned into a symlink meanwhile); `made` holds the host paths of those it created, where nothing but what it
 * placed can be.
 */
interface Dirs {
  host: Map<string, string>;
  made: Set<string>;
}

/** The host path for a file at a container path: parents made, whatever non-directory was there removed. */
function prepareFile(rootfs: string, ctrPath: string, o: CopyOwnership, dirs: Dirs): string {
  const parent = ensureParents(rootfs, ctrPath, o, dirs);
  const host = join(parent, posix.basename(ctrPath));
  let st: Stats | undefined;
  try {
    st = lstatSync(host);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) throw invalidArgument(`cannot copy a file to ${ctrPath}: a directory is in the way`);
  if (st) rmSync(host, { force: true });
  return host;
}
