import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createWriteStream, closeSync, fstatSync, fsyncSync, openSync, renameSync, statSync, writeSync, mkdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { native, LOCK_EX, LOCK_SH, LOCK_UN } from '../sys/native.js';
import { corrupt, errnoCode } from './errors.js';

/** A temp name next to `path`, so rename() stays on one filesystem. Temp names start with ".tmp-". */
export function tempPath(path: string): string {
  return join(dirname(path), `.tmp-${basename(path)}-${randomBytes(6).toString('hex')}`);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Crash-safe replace: write a temp file, fsync it, rename over the target, fsync the directory.
 * Readers see either the old or the new content, never a mix.
 */
export function atomicWrite(path: string, data: string | Uint8Array, opts: { mode?: number; durable?: boolean } = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPath(path);
  const fd = openSync(tmp, 'w', opts.mode ?? 0o644);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (opts.durable !== false) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  if (opts.durable !== false) fsyncDir(dirname(path));
}

export function atomicWriteJson(path: string, value: unknown, opts: { durable?: boolean } = {}): void {
  atomicWrite(path, JSON.stringify(value, null, 2) + '\n', opts);
}

/** Reads JSON, or returns undefined when the file does not exist. Unparseable JSON is a 'corrupt' error. */
export function readJsonIf<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw corrupt(`${path}: invalid JSON`, e);
  }
}

export function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}

/**
 * A cross-process lock on a lock file (flock). Held by the process, released on close or exit,
 * so a crashed holder never leaves it stuck.
 */
export class FileLock {
  private fd: number | undefined;
  constructor(readonly path: string) {}

  acquire(shared = false): this {
    mkdirSync(dirname(this.path), { recursive: true });
    for (;;) {
      const fd = openSync(this.path, 'a', 0o600);
      native().flock(fd, shared ? LOCK_SH : LOCK_EX);
      // A lock file may be removed by its holder (LayerStore.remove): a lock on a file that lost its name excludes
      // nobody, so take the one the name now stands for.
      const now = statSync(this.path, { throwIfNoEntry: false });
      const held = fstatSync(fd);
      if (now && now.ino === held.ino && now.dev === held.dev) {
        this.fd = fd;
        return this;
      }
      closeSync(fd);
    }
  }

  release(): void {
    if (this.fd === undefined) return;
    try {
      native().flock(this.fd, LOCK_UN);
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}

/** Runs fn under an exclusive lock on `path`. */
export async function withLock<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
  const lock = new FileLock(path).acquire();
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

export function withLockSync<T>(path: string, fn: () => T): T {
  const lock = new FileLock(path).acquire();
  try {
    return fn();
  } finally {
    lock.release();
  }
}

/**
 * Writes a file from a stream producer crash-safely: into a temp file next to it, renamed over `path` only once
 * `produce` finished; on failure the temp file is removed and `path` is untouched.
 */
export async function writeStreamAtomically(path: string, produce: (out: Writable) => Promise<void>): Promise<void> {
  const tmp = tempPath(path);
  const out = createWriteStream(tmp);
  try {
    await produce(out);
    out.end();
    await finished(out);
    renameSync(tmp, path);
  } catch (e) {
    out.destroy();
    rmSync(tmp, { force: true });
    throw e;
  }
}
