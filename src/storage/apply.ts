import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../base/digest.js';
import { BerthError, corrupt, errnoCode } from '../base/errors.js';
import { decompressed, readTar, type TarEntry } from '../image/tar.js';
import { native } from '../sys/native.js';

/**
 * Applies an OCI layer changeset to a directory in overlayfs format, so the directory can serve as an overlay
 * lowerdir (or upperdir): a whiteout `.wh.NAME` becomes a character device 0/0 named NAME, an opaque marker
 * `.wh..wh..opq` becomes the xattr trusted.overlay.opaque=y on its directory.
 *
 * Layers come from untrusted archives. Nothing is ever created outside `dest`: entry names are normalised
 * lexically (an entry whose `..` climbs above the root is rejected), and parent directories are looked up one
 * component at a time with lstat, following symlinks as if `dest` were the root (`..` and absolute targets are
 * clamped at `dest`). The last component of a path is never followed. A rejected layer leaves partial output in
 * `dest`; the caller removes it.
 */

// ---------------------------------------------------------------------------------------------------------------
// overlayfs on-disk format, shared with changes.ts

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** A whiteout in overlay format: a character device with device number 0/0. */
export function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

export function isOpaque(path: string): boolean {
  const v = native().lgetxattr(path, OPAQUE_XATTR);
  return v !== null && v.length === 1 && v[0] === 0x79; // "y"
}

export function lstatIf(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** The Linux major/minor split of a dev_t. */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

/**
 * Which extended attributes travel in layers: user.* on files and directories, and file capabilities on regular
 * files. Everything else (trusted.*, other security.* such as SELinux labels, ACLs) is host policy.
 */
export function keepXattr(name: string, st: Stats): boolean {
  if (name.startsWith('user.')) return st.isFile() || st.isDirectory();
  if (name === 'security.capability') return st.isFile();
  return false;
}

/** The extended attributes of `path` that keepXattr() lets through, sorted by name. */
export function readXattrs(path: string, st: Stats): Record<string, Buffer> | undefined {
  if (!st.isFile() && !st.isDirectory()) return undefined;
  const names = native().llistxattr(path).filter((n) => keepXattr(n, st)).sort();
  let out: Record<string, Buffer> | undefined;
  for (const n of names) {
    const v = native().lgetxattr(path, n);
    if (v !== null) (out ??= {})[n] = v;
  }
  return out;
}

/**
 * Looks a path up through overlay lower directories (top-most first, as in overlayfs' lowerdir= option): the first
 * lower that has it wins; a whiteout, a non-directory or an opaque directory on the way hides the lowers below.
 * Never follows symlinks, so a lower cannot point the lookup outside itself.
 */
export function lookupLower(lowers: readonly string[], parts: readonly string[]): { path: string; stat: Stats } | undefined {
  for (const lower of lowers) {
    let path = lower;
    let hidden = false;
    if (parts.length === 0) {
      const st = lstatIf(lower);
      if (st) return { path, stat: st };
      continue;
    }
    for (let i = 0; i < parts.length; i++) {
      path = join(path, parts[i]!);
      const st = lstatIf(path);
      if (!st) break;
      if (isWhiteout(st)) return undefined;
      if (i === parts.length - 1) return { path, stat: st };
      if (!st.isDirectory()) return undefined;
      if (isOpaque(path)) hidden = true;
    }
    if (hidden) return undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Applying

export interface ApplyOptions {
  /**
   * The layers below this one, top-most first. Used to give directories the layer creates implicitly (for an
   * entry whose parent has no entry of its own) the owner, mode and mtime they have below, and to copy up a file
   * that a hardlink in this layer points to when it lives in a lower layer.
   */
  lowerDirs?: string[];
  /**
   * Extract a plain archive (for `cp` into a container): `.wh.` names are ordinary files, not whiteouts, and an
   * existing directory at the root keeps its metadata.
   */
  plain?: boolean;
}

export interface ApplyResult {
  /** Bytes of regular-file content unpacked. */
  size: number;
  /** Tar entries processed (whiteouts included). */
  entries: number;
  /** sha256 of the uncompressed tar stream: the layer's diff id. */
  diffId: Digest;
}

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/** Unpacks a (possibly gzip-compressed) layer tar into `dest`, which is created if missing. */
export async function applyLayer(input: AsyncIterable<Buffer>, dest: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  mkdirSync(dest, { recursive: true });
  const applier = new LayerApplier(realpathSync(dest), opts.lowerDirs ?? [], !!opts.plain);
  const hash = createHash('sha256');
  const tapped = (async function* () {
    for await (const chunk of decompressed(input)) {
      hash.update(chunk);
      yield chunk;
    }
  })();
  let entries = 0;
  for await (const { entry, body } of readTar(tapped)) {
    entries++;
    try {
      await applier.apply(entry, body);
    } catch (e) {
      throw entryError(e, entry.name);
    }
  }
  applier.finish();
  return { size: applier.size, entries, diffId: `sha256:${hash.digest('hex')}` };
}

/** errno codes that only the archive's content can cause (a name too long, a bad xattr name, ...). */
const CONTENT_ERRORS = new Set(['ENAMETOOLONG', 'ELOOP', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'EINVAL', 'E2BIG', 'ERANGE']);

/** Names the entry in a system error; errors the archive caused are 'corrupt', others (ENOSPC, EROFS) 'internal'. */
function entryError(e: unknown, name: string): BerthError {
  if (e instanceof BerthError) return e;
  const code = errnoCode(e) ?? '';
  const msg = e instanceof Error ? e.message : String(e);
  return new BerthError(CONTENT_ERRORS.has(code) ? 'corrupt' : 'internal', `layer entry "${name}": ${msg}`, { cause: e });
}

/** Lexical normalisation of an archive path; undefined when `..` climbs above the root. */
export function splitEntryName(name: string): string[] | undefined {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else {
      parts.push(p);
    }
  }
  return parts;
}

class LayerApplier {
  size = 0;
  /** Directories whose mtime is set last, once nothing more is written into them. */
  private readonly dirTimes: Array<[string, number]> = [];

  constructor(
    private readonly root: string,
    private readonly lowers: readonly string[],
    private readonly plain = false,
  ) {}

  async apply(entry: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const name = entry.name;
    if (name.includes('\0')) throw corrupt(`layer entry "${name.replace(/\0/g, '\\0')}" has a NUL in its name`);
    const parts = splitEntryName(name);
    if (!parts) throw corrupt(`layer entry "${name}" escapes the root`);
    // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs, ...) carries no content
    if (!this.plain && parts.some((p, i) => p.startsWith('.wh..wh.') && !(p === OPAQUE_MARKER && i === parts.length - 1))) return;

    if (parts.length === 0) {
      if (this.plain) return;
      if (entry.type !== 'dir') throw corrupt(`layer entry "${name}" replaces the root with a ${entry.type}`);
      this.setMetadata(this.root, entry);
      this.dirTimes.push([this.root, entry.mtime]);
      return;
    }
    const base = parts[parts.length - 1]!;
    const parentParts = parts.slice(0, -1);

    if (!this.plain && base === OPAQUE_MARKER) {
      native().lsetxattr(this.resolveDir(parentParts, name), OPAQUE_XATTR, Buffer.from('y'));
      return;
    }
    if (!this.plain && base.startsWith(WHITEOUT_PREFIX)) {
      const target = base.slice(WHITEOUT_PREFIX.length);
      if (target === '' || target === '.' || target === '..') throw corrupt(`layer entry "${name}" is an invalid whiteout`);
      const path = join(this.resolveDir(parentParts, name), target);
      removeIfExists(path);
      native().mknod(path, S_IFCHR, 0, 0);
      // The entry's time, not the unpacking's: the same layer always unpacks to the same tree.
      utimesSync(path, entry.mtime, entry.mtime);
      return;
    }

    if (entry.type === 'hardlink') return this.link(entry, this.resolveDir(parentParts, name), base);

    const path = join(this.resolveDir(parentParts, name), base);
    const existing = lstatIf(path);
    if (entry.type === 'dir') {
      if (!existing?.isDirectory()) {
        if (existing) removeIfExists(path);
        mkdirSync(path, 0o700);
        // replacing a whiteout means "deleted, then recreated": nothing below may show through
        if (existing && isWhiteout(existing)) native().lsetxattr(path, OPAQUE_XATTR, Buffer.from('y'));
      }
      this.setMetadata(path, entry);
      this.dirTimes.push([path, entry.mtime]);
      return;
    }
    if (existing) removeIfExists(path);

    switch (entry.type) {
      case 'file':
        await this.writeFile(path, entry, body);
        return;
      case 'symlink':
        if (!entry.linkname) throw corrupt(`layer entry "${name}" is a symlink without a target`);
        symlinkSync(entry.linkname, path);
        lchownSync(path, entry.uid, entry.gid);
        lutimesSync(path, entry.mtime, entry.mtime);
        return;
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = entry.type === 'char' ? S_IFCHR : entry.type === 'block' ? S_IFBLK : S_IFIFO;
        native().mknod(path, kind | (entry.mode & 0o7777), entry.devmajor ?? 0, entry.devminor ?? 0);
        this.setMetadata(path, entry);
        utimesSync(path, entry.mtime, entry.mtime);
        return;
      }
    }
  }

  /** Sets every directory's mtime, after all of its contents are in place (a later entry for a dir wins). */
  finish(): void {
    for (const [path, mtime] of this.dirTimes) utimesSync(path, mtime, mtime);
  }

  private async writeFile(path: string, entry: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    // O_EXCL|O_NOFOLLOW: the name was just cleared, so this can only create a new file right here
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        this.size += chunk.length;
      }
      fchownSync(fd, entry.uid, entry.gid);
      fchmodSync(fd, entry.mode & 0o7777); // after chown, which clears setuid/setgid
      this.setXattrs(path, entry, lstatSync(path));
      futimesSync(fd, entry.mtime, entry.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Owner, mode and xattrs of a directory, device or fifo (never a symlink: the path is checked first). */
  private setMetadata(path: string, entry: TarEntry): void {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) throw corrupt(`layer entry "${entry.name}": refusing to follow a symlink`);
    lchownSync(path, entry.uid, entry.gid);
    chmodSync(path, entry.mode & 0o7777);
    this.setXattrs(path, entry, st);
  }

  private setXattrs(path: string, entry: TarEntry, st: Stats): void {
    for (const key of Object.keys(entry.xattrs ?? {}).sort()) {
      if (!keepXattr(key, st)) continue;
      try {
        native().lsetxattr(path, key, entry.xattrs![key]!);
      } catch (e) {
        if (errnoCode(e) !== 'ENOTSUP') throw e; // the file system cannot hold it: like tar, go on without
      }
    }
  }

  /** A hardlink to an earlier entry of this layer (or, with lowerDirs, to a file copied up from a lower layer). */
  private link(entry: TarEntry, dir: string, base: string): void {
    const name = entry.name;
    const targetParts = splitEntryName(entry.linkname ?? '');
    if (!targetParts) throw corrupt(`layer entry "${name}": hardlink target "${entry.linkname}" escapes the root`);
    if (targetParts.length === 0) throw corrupt(`layer entry "${name}": invalid hardlink target "${entry.linkname ?? ''}"`);
    const targetDir = this.resolveDir(targetParts.slice(0, -1), name);
    const target = join(targetDir, targetParts[targetParts.length - 1]!);
    let st = lstatIf(target);
    if (!st) st = this.copyUp(target, entry);
    if (st.isDirectory()) throw corrupt(`layer entry "${name}": hardlink target "${entry.linkname}" is a directory`);
    if (isWhiteout(st)) {
      throw corrupt(`layer entry "${name}": hardlink target "${entry.linkname}" does not exist in the layer`);
    }
    const path = join(dir, base);
    if (path === target) return;
    if (lstatIf(path)) removeIfExists(path);
    linkSync(target, path); // link(2) does not follow a symlink target
  }

  /** Brings a lower layer's regular file into this layer so a hardlink can point at it. */
  private copyUp(target: string, entry: TarEntry): Stats {
    const rel = target.slice(this.root.length + 1).split('/');
    const found = this.lowers.length ? lookupLower(this.lowers, rel) : undefined;
    if (!found || !found.stat.isFile()) {
      throw corrupt(`layer entry "${entry.name}": hardlink target "${entry.linkname}" does not exist in the layer`);
    }
    // lookupLower checked every component with lstat, so copyFile opens exactly this regular file
    copyFileSync(found.path, target, constants.COPYFILE_EXCL);
    const st = found.stat;
    lchownSync(target, st.uid, st.gid);
    chmodSync(target, st.mode & 0o7777);
    const xattrs = readXattrs(found.path, st);
    for (const [k, v] of Object.entries(xattrs ?? {})) native().lsetxattr(target, k, v);
    utimesSync(target, st.atime, st.mtime);
    return lstatSync(target);
  }

  /**
   * Resolves directory components below the root like a chroot lookup: symlinks are followed with the root as
   * "/", `..` stops at the root, and missing directories are created. Returns a real path inside the root.
   */
  private resolveDir(parts: readonly string[], name: string): string {
    const stack: string[] = [];
    const pending = [...parts];
    let hops = 0;
    let steps = 0;
    while (pending.length) {
      // symlinks can expand a path: bound the work one entry may cause
      if (++steps > 4096) throw corrupt(`layer entry "${name}": path too long`);
      const c = pending.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        stack.pop();
        continue;
      }
      const path = join(this.root, ...stack, c);
      const st = lstatIf(path);
      if (!st || isWhiteout(st)) {
        this.makeImplicitDir(path, [...stack, c], st !== undefined);
        stack.push(c);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (++hops > 40) throw corrupt(`layer entry "${name}": too many levels of symbolic links`);
        const target = readlinkSync(path);
        if (target.startsWith('/')) stack.length = 0;
        pending.unshift(...target.split('/'));
        continue;
      }
      if (!st.isDirectory()) throw corrupt(`layer entry "${name}": "${[...stack, c].join('/')}" is not a directory`);
      stack.push(c);
    }
    return join(this.root, ...stack);
  }

  /** A directory the archive implies but has no entry for: it takes its metadata from the lowers, if they have it. */
  private makeImplicitDir(path: string, rel: string[], replacesWhiteout: boolean): void {
    if (replacesWhiteout) unlinkSync(path);
    mkdirSync(path, 0o755);
    // a directory recreated where a whiteout deleted one: nothing below may show through
    if (replacesWhiteout) native().lsetxattr(path, OPAQUE_XATTR, Buffer.from('y'));
    const below = !replacesWhiteout && this.lowers.length ? lookupLower(this.lowers, rel) : undefined;
    if (below?.stat.isDirectory()) {
      lchownSync(path, below.stat.uid, below.stat.gid);
      chmodSync(path, below.stat.mode & 0o7777);
      this.dirTimes.push([path, below.stat.mtimeMs / 1000]);
    } else {
      chmodSync(path, 0o755);
    }
  }
}

function removeIfExists(path: string): void {
  const st = lstatIf(path);
  if (!st) return;
  if (st.isDirectory()) rmSync(path, { recursive: true, force: true });
  else unlinkSync(path);
}
