import {
  chmodSync, closeSync, constants, copyFileSync, existsSync, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, writeSync, type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';
import { invalidArgument } from '../base/errors.js';
import type { ModeChange } from './file-mode.js';
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
  /** --chmod: the mode of each file and directory copied, from the source's (see parseModeChange). */
  chmod?: ModeChange;
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
  const p = new Placer(rootfs, o, reuse);
  for (const it of items) p.place(it);
  return { placed: p.placed, links: [...p.pending.values()] };
}

/** Files up to this size are copied through user space with their metadata set on the open descriptor. */
const SMALL_FILE = 1 << 20;

/** One placement's state: what it resolved, made and wrote, and what it left to link. */
class Placer {
  /** "dev:ino" of a multiply-linked source -> where its first copy went. */
  private readonly inodes = new Map<string, string>();
  /**
   * Container directories resolved here -> their host paths (created or checked here, so none can have turned into
   * a symlink meanwhile): each path component is resolved once per placement, not once per file.
   */
  private readonly dirs = new Map<string, string>();
  /** Host paths of the directories this placement created: nothing but what it placed is in them. */
  private readonly made = new Set<string>();
  /** Paths (relative to the root, symlinks resolved) this placement put something at. */
  private readonly written = new Set<string>();
  /** Upper-dir paths (relative) known to be directories, to link into. */
  private readonly upperDirs = new Set<string>();
  readonly placed: PlacedFiles = {};
  /** Files left to link, by path: a later item that reaches the same path writes the file first (order kept). */
  readonly pending = new Map<string, DeferredLink>();

  constructor(
    private readonly rootfs: string,
    private readonly o: CopyOwnership,
    private readonly reuse?: { from: LinkSource; upper: string },
  ) {}

  private rel(host: string): string {
    return host.slice(this.rootfs.length + 1);
  }

  place(it: CopyItem): void {
    const o = this.o;
    if (it.kind === 'data') {
      const host = this.prepareFile(it.dest);
      writeFileSync(host, it.data);
      lchownSync(host, o.uid ?? 0, o.gid ?? 0);
      chmodSync(host, o.chmod ? o.chmod(it.mode, false) : it.mode);
      if (it.mtime) utimesSync(host, it.mtime, it.mtime);
      this.note(host);
      return;
    }
    const st = it.stat;
    if (st.isDirectory()) {
      const ctrDir = posix.normalize('/' + it.dest);
      const host = this.dirs.get(ctrDir) ?? resolveInRoot(this.rootfs, it.dest);
      this.claim(host);
      if (!existsSync(host)) {
        this.ensureParents(it.dest);
        mkdirSync(host);
        this.dirs.set(ctrDir, host);
        this.made.add(host);
        this.written.add(this.rel(host));
        if (it.root) {
          // The directory a directory's contents go to is made like a missing parent (as buildah and Docker do).
          lchownSync(host, o.uid ?? 0, o.gid ?? 0);
          chmodSync(host, 0o755);
          return;
        }
        lchownSync(host, o.uid ?? st.uid, o.gid ?? st.gid);
        chmodSync(host, this.ownership(st).mode);
        utimesSync(host, st.atime, st.mtime);
      } else if (!lstatSync(host).isDirectory()) {
        throw invalidArgument(`cannot copy a directory to ${it.dest}: a file is in the way`);
      } else this.dirs.set(ctrDir, host);
      return;
    }
    if (st.isFile() && st.nlink === 1) {
      const parent = this.ensureParents(it.dest);
      const host = join(parent, posix.basename(it.dest));
      this.claim(host);
      if (!this.defer(it, parent, host)) this.writeFile(it, host);
      return;
    }
    const host = this.prepareFile(it.dest);
    this.note(host);
    const inode = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? this.inodes.get(inode) : undefined;
    if (first !== undefined) {
      linkSync(first, host);
      return;
    }
    if (st.nlink > 1) this.inodes.set(inode, host);
    if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(it.src), host);
      lchownSync(host, o.uid ?? st.uid, o.gid ?? st.gid);
      lutimesSync(host, st.atime, st.mtime);
    } else if (st.isFile()) {
      copyFileSync(it.src, host);
      lchownSync(host, o.uid ?? st.uid, o.gid ?? st.gid);
      chmodSync(host, this.ownership(st).mode);
      utimesSync(host, st.atime, st.mtime);
    }
    // Sockets, fifos and devices in a context are skipped, as BuildKit's context transfer does.
  }

  /** Records what is now at `host`: a file of this content digest, or (no digest) something not to link later. */
  private note(host: string, digest?: string): void {
    const rel = this.rel(host);
    this.written.add(rel);
    if (digest !== undefined) this.placed[rel] = digest;
    else delete this.placed[rel];
  }

  /** Before anything is put at `host`: a file still waiting to be linked there is written first, as it came first. */
  private claim(host: string): void {
    const rel = this.rel(host);
    const waiting = this.pending.get(rel);
    if (!waiting) return;
    this.pending.delete(rel);
    delete this.placed[rel];
    this.writeFile(waiting.item as CopyItem & { kind: 'entry' }, host);
  }

  /**
   * Leaves a file to link when the earlier layer holds it alike, nothing is at its path, and the upper dir holds its
   * parent (this step made it, or copied it up). Returns whether it did.
   */
  private defer(it: CopyItem & { kind: 'entry' }, parent: string, host: string): boolean {
    const r = this.reuse;
    if (!r || it.digest === undefined) return false;
    const rel = this.rel(host);
    const relParent = this.rel(parent);
    if (!this.upperDirs.has(relParent)) {
      if (!lstatSync(join(r.upper, relParent), { throwIfNoEntry: false })?.isDirectory()) return false;
      this.upperDirs.add(relParent);
    }
    const { uid, gid, mode } = this.ownership(it.stat);
    if (!linkable(r.from, rel, it.digest, it.stat, uid, gid, mode)) return false;
    // In a directory this placement made, only what it put there can be.
    const free = this.made.has(parent) ? !this.written.has(rel) : lstatSync(host, { throwIfNoEntry: false }) === undefined;
    if (!free) return false;
    this.pending.set(rel, { rel, item: it });
    this.placed[rel] = it.digest;
    this.written.add(rel);
    return true;
  }

  private ownership(st: Stats): { uid: number; gid: number; mode: number } {
    const mode = st.mode & 0o7777;
    return { uid: this.o.uid ?? st.uid, gid: this.o.gid ?? st.gid, mode: this.o.chmod ? this.o.chmod(mode, st.isDirectory()) : mode };
  }

  /**
   * Writes a regular file at `host` (whatever non-directory is there replaced). Its digest is recorded only when the
   * source is still the file that was hashed (same inode, size, mtime and ctime), so a file edited during the build
   * is never recorded under its old content's digest.
   */
  private writeFile(it: CopyItem & { kind: 'entry' }, host: string): void {
    const st = it.stat;
    const { uid, gid, mode } = this.ownership(st);
    let now: Stats | undefined;
    if (st.size <= SMALL_FILE) {
      now = createSmallFile(it.src, host, uid, gid, mode, st) ?? createSmallFile(it.src, this.prepareFile(it.dest), uid, gid, mode, st);
      if (now === undefined) throw invalidArgument(`cannot copy to ${it.dest}: something appeared there meanwhile`);
    } else {
      copyFileSync(it.src, this.prepareFile(it.dest));
      lchownSync(host, uid, gid);
      chmodSync(host, mode);
      utimesSync(host, st.atime, st.mtime);
      now = lstatSync(it.src, { throwIfNoEntry: false });
    }
    this.note(host, now && sameFile(now, st) ? it.digest : undefined);
  }

  /**
   * Missing parents of a container path, created 0755 (owned by root, or by --chown's user); returns the parent's
   * host path.
   */
  private ensureParents(ctrPath: string): string {
    const parent = posix.dirname(posix.normalize('/' + ctrPath));
    const known = this.dirs.get(parent);
    if (known !== undefined) return known;
    let cur = '/';
    let host = this.dirs.get('/') ?? resolveInRoot(this.rootfs, '/');
    this.dirs.set('/', host);
    for (const p of parent.split('/').filter(Boolean)) {
      cur = posix.join(cur, p);
      const seen = this.dirs.get(cur);
      if (seen !== undefined) {
        host = seen;
        continue;
      }
      host = resolveInRoot(this.rootfs, cur);
      this.claim(host);
      if (existsSync(host)) {
        if (!lstatSync(host).isDirectory()) throw invalidArgument(`cannot copy to ${ctrPath}: ${cur} is not a directory`);
      } else {
        mkdirSync(host, { mode: 0o755 });
        chmodSync(host, 0o755);
        if (this.o.chownParents) lchownSync(host, this.o.uid ?? 0, this.o.gid ?? 0);
        this.made.add(host);
        this.written.add(this.rel(host));
      }
      this.dirs.set(cur, host);
    }
    return host;
  }

  /** The host path for a file at a container path: parents made, whatever non-directory was there removed. */
  private prepareFile(ctrPath: string): string {
    const host = join(this.ensureParents(ctrPath), posix.basename(ctrPath));
    this.claim(host);
    const st = lstatSync(host, { throwIfNoEntry: false });
    if (st?.isDirectory()) throw invalidArgument(`cannot copy a file to ${ctrPath}: a directory is in the way`);
    if (st) rmSync(host, { force: true });
    return host;
  }
}

/** Whether two stats are of the same unchanged file (inode, size, mtime, ctime). */
function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
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
 * (the earlier layer was removed meanwhile, or is on another filesystem), to place as usual.
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

/**
 * Creates `dst` (exclusively, never through a symlink) with the bytes of `src`, then owner, mode and times set on
 * the descriptor: one path walk through the overlay instead of one per call, and no lookup of a name that cannot
 * exist yet. Returns the source's stat as read (to tell whether it changed since it was hashed), or undefined,
 * having touched nothing, if something is already at `dst` (the caller clears the way and tries again).
 */
function createSmallFile(src: string, dst: string, uid: number, gid: number, mode: number, st: Stats): Stats | undefined {
  let fd: number;
  try {
    fd = openSync(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  }
  try {
    const sfd = openSync(src, constants.O_RDONLY | constants.O_NOFOLLOW);
    let now: Stats;
    let data: Buffer;
    try {
      now = fstatSync(sfd);
      data = now.size > 0 ? readFileSync(sfd) : Buffer.alloc(0);
    } finally {
      closeSync(sfd);
    }
    for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
    fchownSync(fd, uid, gid);
    // After the chown, which clears setuid and setgid bits.
    fchmodSync(fd, mode);
    futimesSync(fd, st.atime, st.mtime);
    return now;
  } finally {
    closeSync(fd);
  }
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
