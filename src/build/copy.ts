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
  | { kind: 'entry'; src: string; stat: Stats; dest: string; /** The destination directory a directory source fills. */ root?: boolean }
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
 * hard links of each other in the destination.
 */
export function placeItems(rootfs: string, items: readonly CopyItem[], o: CopyOwnership): void {
  const links = new Map<string, string>();
  const dirs = new Map<string, string>();
  for (const it of items) {
    if (it.kind === 'data') {
      const host = prepareFile(rootfs, it.dest, o, dirs);
      writeFileSync(host, it.data);
      lchownSync(host, o.uid ?? 0, o.gid ?? 0);
      chmodSync(host, o.chmod ?? it.mode);
      if (it.mtime) utimesSync(host, it.mtime, it.mtime);
      continue;
    }
    const st = it.stat;
    if (st.isDirectory()) {
      const ctrDir = posix.normalize('/' + it.dest);
      const host = dirs.get(ctrDir) ?? resolveInRoot(rootfs, it.dest);
      if (!existsSync(host)) {
        ensureParents(rootfs, it.dest, o, dirs);
        mkdirSync(host);
        dirs.set(ctrDir, host);
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
      } else dirs.set(ctrDir, host);
      continue;
    }
    if (st.isFile() && st.nlink === 1 && st.size <= SMALL_FILE) {
      const uid = o.uid ?? st.uid;
      const gid = o.gid ?? st.gid;
      const mode = o.chmod ?? st.mode & 0o7777;
      const host = join(ensureParents(rootfs, it.dest, o, dirs), posix.basename(it.dest));
      if (!createSmallFile(it.src, host, uid, gid, mode, st) && !createSmallFile(it.src, prepareFile(rootfs, it.dest, o, dirs), uid, gid, mode, st)) {
        throw invalidArgument(`cannot copy to ${it.dest}: something appeared there meanwhile`);
      }
      continue;
    }
    const host = prepareFile(rootfs, it.dest, o, dirs);
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
 * path. `dirs` caches container directories already resolved in this placement (created or checked here, so none
 * can have turned into a symlink meanwhile): each path component is resolved once per COPY, not once per file.
 */
function ensureParents(rootfs: string, ctrPath: string, o: CopyOwnership, dirs: Map<string, string>): string {
  const parts = posix.normalize('/' + ctrPath).split('/').filter(Boolean);
  parts.pop();
  let cur = '/';
  let host = dirs.get('/') ?? resolveInRoot(rootfs, '/');
  dirs.set('/', host);
  for (const p of parts) {
    cur = posix.join(cur, p);
    const known = dirs.get(cur);
    if (known !== undefined) {
      host = known;
      continue;
    }
    host = resolveInRoot(rootfs, cur);
    if (existsSync(host)) {
      if (!lstatSync(host).isDirectory()) throw invalidArgument(`cannot copy to ${ctrPath}: ${cur} is not a directory`);
    } else {
      mkdirSync(host, { mode: 0o755 });
      chmodSync(host, 0o755);
      if (o.chownParents) lchownSync(host, o.uid ?? 0, o.gid ?? 0);
    }
    dirs.set(cur, host);
  }
  return host;
}

/** The host path for a file at a container path: parents made, whatever non-directory was there removed. */
function prepareFile(rootfs: string, ctrPath: string, o: CopyOwnership, dirs: Map<string, string>): string {
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
