import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import type { Digest } from '../base/digest.js';
import { internal, unavailable } from '../base/errors.js';
import { TarWriter, type TarEntry } from '../image/tar.js';
import { native } from '../sys/native.js';
import {
  OPAQUE_MARKER,
  WHITEOUT_PREFIX,
  isOpaque,
  isWhiteout,
  lookupLower,
  readXattrs,
  splitDev,
} from './apply.js';

/**
 * What a container changed, read from its overlay upper directory: the `docker diff` list, and the same
 * changes as an OCI layer tar (`docker commit`). Plus a plain tree archiver for `export` and `cp`.
 */

/** One line of `docker diff`: Added, Changed or Deleted, with the path as the container sees it. */
export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
}

/**
 * Lists the changes an overlay upper directory holds over its lowers (top-most first), like `docker diff`:
 * a whiteout is D; a path no lower has is A, else C; a directory that is in the upper only because something
 * below it changed (same mode, owner and mtime as below, not opaque) is left out, except that the parent of
 * every A or D is reported as C. Sorted by path. Paths in `ignore` (e.g. "/etc/hosts", mount points the runtime
 * created) are left out, and so is a directory that differs from below only by the mtime they gave it.
 */
export async function listChanges(upper: string, lowers: string[], opts: { ignore?: ReadonlySet<string> } = {}): Promise<Change[]> {
  const ignore = opts.ignore ?? new Set<string>();
  const out: Change[] = [];
  const reported = new Set<string>();
  const report = (kind: Change['kind'], path: string) => {
    if (reported.has(path)) return;
    reported.add(path);
    out.push({ kind, path });
  };
  const parentChanged = (parts: string[]) => {
    if (parts.length > 0) report('C', '/' + parts.join('/'));
  };
  /** A directory in the upper only to hold ignored entries: same as below but for the mtime that creating them set. */
  const onlyIgnored = (abs: string, st: Stats, below: Stats, path: string): boolean => {
    if (ignore.size === 0 || st.mode !== below.mode || st.uid !== below.uid || st.gid !== below.gid) return false;
    const names = readdirSync(abs);
    return names.length > 0 && names.every((n) => ignore.has(`${path}/${n}`));
  };
  const visit = (dir: DirHandle, parts: string[]) => {
    for (const { name, path: abs, st } of dir.children()) {
      const rel = [...parts, name];
      const path = '/' + rel.join('/');
      if (ignore.has(path)) continue;
      if (isWhiteout(st)) {
        report('D', path);
        parentChanged(parts);
        continue;
      }
      const below = lookupLower(lowers, rel);
      if (!below) {
        report('A', path);
        parentChanged(parts);
      } else if (!(st.isDirectory() && below.stat.isDirectory() && !isOpaque(abs) && (sameDir(st, below.stat) || onlyIgnored(abs, st, below.stat, path)))) {
        report('C', path);
      }
      if (st.isDirectory()) DirHandle.with(abs, st, (sub) => visit(sub, rel));
    }
  };
  DirHandle.with(upper, lstatSync(upper), (root) => visit(root, []));
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

function sameDir(a: Stats, b: Stats): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtimeMs === b.mtimeMs;
}

export interface ArchiveOptions {
  /** Clamp every mtime to at most this many seconds since the epoch (reproducible builds). */
  sourceDateEpoch?: number;
  /** End the output stream when done (default true). */
  end?: boolean;
  /** writeLayerTar: paths ("/etc/hosts") to leave out, e.g. mount points the runtime created. */
  ignore?: ReadonlySet<string>;
}

export interface ArchiveResult {
  /** sha256 of the uncompressed tar (for a layer: its diff id). */
  digest: Digest;
  size: number;
}

/**
 * Writes the changes in an overlay upper directory as an OCI layer changeset: whiteouts (char 0/0) become empty
 * `.wh.NAME` files with mode 0, an opaque directory is followed by its `.wh..wh..opq` marker, files with several
 * links in the upper become hardlink entries. Entries come parents first, siblings in byte order of their names,
 * with relative names ("etc/", "etc/hosts"); uid, gid, mode, xattrs (user.*, security.capability) and whole-second
 * mtimes as on disk. The same upper always gives the same bytes.
 * Overlays mounted with redirect_dir=on are refused; metacopy-only files take their data from the lowers.
 */
export async function writeLayerTar(
  upper: string,
  lowers: string[],
  out: NodeJS.WritableStream | Writable,
  opts: ArchiveOptions = {},
): Promise<ArchiveResult> {
  const w = new TarWriter(out, { end: opts.end ?? true });
  const a = new Archiver(w, 'layer', lowers, opts.sourceDateEpoch, opts.ignore);
  await DirHandle.withAsync(upper, lstatSync(upper), (root) => a.walk(root, '', []));
  await w.finish();
  return { digest: w.digest(), size: w.size };
}

export interface TreeTarOptions extends ArchiveOptions {
  /** Put every entry under this relative path ("etc" gives "etc/", "etc/hosts"). */
  prefix?: string;
  /** Also archive the top directory itself (as `prefix/`, or "./" without a prefix). */
  includeRoot?: boolean;
}

/**
 * Archives a plain directory tree (or a single file) with the same ordering and determinism rules as
 * writeLayerTar, without any overlay interpretation: a char device 0/0 is just a device. Sockets are skipped.
 * A single file is archived under `prefix`, or its own base name.
 */
export async function writeTreeTar(
  dir: string,
  out: NodeJS.WritableStream | Writable,
  opts: TreeTarOptions = {},
): Promise<ArchiveResult> {
  const w = new TarWriter(out, { end: opts.end ?? true });
  const a = new Archiver(w, 'tree', [], opts.sourceDateEpoch);
  const st = lstatSync(dir);
  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (!st.isDirectory()) {
    await a.emit(dir, prefix || basename(dir), st, []);
  } else {
    if (opts.includeRoot) await a.emit(dir, prefix ? `${prefix}/` : './', st, []);
    await DirHandle.withAsync(dir, st, (root) => a.walk(root, prefix ? `${prefix}/` : '', []));
  }
  await w.finish();
  return { digest: w.digest(), size: w.size };
}

const READ_CHUNK = 1 << 20;

/** Walks a directory depth-first and feeds the tar writer. */
class Archiver {
  /** "dev:ino" of multiply-linked files already archived -> their archive name. */
  private readonly links = new Map<string, string>();

  constructor(
    private readonly w: TarWriter,
    private readonly mode: 'layer' | 'tree',
    private readonly lowers: readonly string[],
    private readonly epoch: number | undefined,
    private readonly ignore: ReadonlySet<string> = new Set(),
  ) {}

  /** Archives the children of `dir`; `prefix` is their archive name prefix ("" or "a/b/"). */
  async walk(dir: DirHandle, prefix: string, parts: string[]): Promise<void> {
    const children = dir.children().map((c) => {
      const tarBase = this.mode === 'layer' && isWhiteout(c.st) ? WHITEOUT_PREFIX + c.name : c.name;
      return { ...c, key: Buffer.from(tarBase) };
    });
    children.sort((a, b) => Buffer.compare(a.key, b.key));
    for (const c of children) {
      const rel = [...parts, c.name];
      if (this.ignore.has('/' + rel.join('/'))) continue;
      await this.emit(c.path, prefix + c.key.toString(), c.st, rel);
      if (c.st.isDirectory()) {
        await DirHandle.withAsync(c.path, c.st, (sub) => this.walk(sub, `${prefix}${c.name}/`, rel));
      }
    }
  }

  /** Archives one path as `name`; `rel` is its path below the upper, for finding data in the lowers. */
  async emit(abs: string, name: string, st: Stats, rel: string[]): Promise<void> {
    const mtime = this.mtime(st);
    const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime };
    if (this.mode === 'layer' && isWhiteout(st)) {
      await this.w.add({ ...base, name, type: 'file', mode: 0 });
      return;
    }
    if (st.isSocket()) return; // tar cannot hold sockets (Docker skips them too)
    const xattrs = readXattrs(abs, st);
    const entry: TarEntry = { ...base, name, type: 'file', ...(xattrs ? { xattrs } : {}) };

    if (st.isDirectory()) {
      entry.type = 'dir';
      if (!entry.name.endsWith('/')) entry.name += '/';
      if (this.mode === 'layer' && native().lgetxattr(abs, 'trusted.overlay.redirect') !== null) {
        throw unavailable(`cannot diff "/${rel.join('/')}": overlay redirect_dir is not supported (mount with redirect_dir=off)`);
      }
      await this.w.add(entry);
      if (this.mode === 'layer' && isOpaque(abs)) {
        await this.w.add({ ...base, name: entry.name + OPAQUE_MARKER, type: 'file', mode: 0 });
      }
      return;
    }

    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        await this.w.add({ ...base, name, type: 'hardlink', linkname: first });
        return;
      }
      this.links.set(key, name);
    }

    if (st.isSymbolicLink()) {
      await this.w.add({ ...entry, type: 'symlink', linkname: readlinkSync(abs) });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const { major, minor } = splitDev(st.rdev);
      await this.w.add({ ...entry, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major, devminor: minor });
    } else if (st.isFIFO()) {
      await this.w.add({ ...entry, type: 'fifo' });
    } else if (st.isFile()) {
      const source = this.dataSource(abs, rel);
      await this.w.add({ ...entry, size: st.size }, readChunks(source, st.size, name));
    }
  }

  private mtime(st: Stats): number {
    const t = Math.floor(st.mtimeMs / 1000);
    return this.epoch !== undefined && t > this.epoch ? this.epoch : t;
  }

  /** Where a file's bytes are: itself, or for an overlay metacopy (metadata-only copy-up) the lower it came from. */
  private dataSource(abs: string, rel: string[]): string {
    if (this.mode !== 'layer' || native().lgetxattr(abs, 'trusted.overlay.metacopy') === null) return abs;
    const redirect = native().lgetxattr(abs, 'trusted.overlay.redirect')?.toString();
    const from = redirect === undefined ? rel : redirect.startsWith('/') ? redirect.split('/').filter(Boolean) : [...rel.slice(0, -1), redirect];
    const found = lookupLower(this.lowers, from);
    if (!found?.stat.isFile()) throw internal(`cannot diff "/${rel.join('/')}": its data is not in the lower layers`);
    return found.path;
  }
}

/**
 * Reads exactly `size` bytes of a regular file. The file may be swapped meanwhile (by a running container): a
 * symlink is not followed, a fifo does not block, and anything but a regular file is refused.
 */
async function* readChunks(path: string, size: number, name: string): AsyncGenerator<Buffer> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw internal(`"${name}" changed while it was being archived`);
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, READ_CHUNK));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) throw internal(`"${name}" shrank while it was being archived`);
      left -= n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A directory held open while its children are read. Children are looked up through /proc/self/fd/N, i.e.
 * relative to the open directory, so a directory that a running container swaps for a symlink mid-walk is never
 * entered: walks stay inside the tree (the *at() system calls, which Node lacks, would do the same).
 */
class DirHandle {
  private constructor(
    private readonly fd: number,
    readonly path: string,
  ) {}

  /** Opens `path` (never through a symlink in its place) and checks it is still the directory `expect` describes. */
  static open(path: string, expect: Stats): DirHandle {
    const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (st.ino !== expect.ino || st.dev !== expect.dev) {
      closeSync(fd);
      throw internal('a directory changed while the tree was being read');
    }
    return new DirHandle(fd, `/proc/self/fd/${fd}`);
  }

  static with<T>(path: string, expect: Stats, fn: (d: DirHandle) => T): T {
    const d = DirHandle.open(path, expect);
    try {
      return fn(d);
    } finally {
      d.close();
    }
  }

  static async withAsync<T>(path: string, expect: Stats, fn: (d: DirHandle) => Promise<T>): Promise<T> {
    const d = DirHandle.open(path, expect);
    try {
      return await fn(d);
    } finally {
      d.close();
    }
  }

  /** Children in byte order of their names; `path` is good for l*() calls and O_NOFOLLOW opens. */
  children(): Array<{ name: string; path: string; st: Stats }> {
    return readdirSync(this.path)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map((name) => {
        const path = `${this.path}/${name}`;
        return { name, path, st: lstatSync(path) };
      });
  }

  close(): void {
    closeSync(this.fd);
  }
}
