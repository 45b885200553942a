import { closeSync, createReadStream, mkdirSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { invalidArgument } from '../base/errors.js';
import { spawnProcess } from '../sys/exec.js';
import { applyLayer } from '../storage/apply.js';

/** ADD's local archives: which files are tar archives (plain or compressed), and unpacking one into a directory. */

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz';

/** Whether 512 bytes are a tar header: the ustar magic, or (old v7 tar) a valid header checksum. */
function isTarHeader(b: Buffer): boolean {
  if (b.length < 512) return false;
  if (b.subarray(257, 262).toString('latin1') === 'ustar') return true;
  const stored = parseInt(b.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
  if (Number.isNaN(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  return sum === stored;
}

/** Up to n bytes from the start of a stream; the stream is destroyed after. */
async function head(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const c of stream) {
      chunks.push(c as Buffer);
      got += (c as Buffer).length;
      if (got >= n) break;
    }
  } catch {
    // a corrupt or truncated stream: whatever came before counts
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

/**
 * Whether a file is an archive ADD unpacks, and its compression: a tar, plain or compressed with gzip, bzip2 or
 * xz. A compressed file that is not a tar inside is copied as it is, as Docker does.
 */
export async function archiveKind(file: string): Promise<ArchiveKind | undefined> {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(512);
  let n: number;
  try {
    n = readSync(fd, b, 0, 512, 0);
  } finally {
    closeSync(fd);
  }
  let kind: 'gzip' | 'bzip2' | 'xz' | undefined;
  if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) kind = 'gzip';
  else if (n >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') kind = 'bzip2';
  else if (n >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) kind = 'xz';
  else return isTarHeader(b.subarray(0, n)) ? 'tar' : undefined;
  let inner: Buffer;
  if (kind === 'gzip') {
    const src = createReadStream(file);
    inner = await head(src.pipe(createGunzip()), 512);
    src.destroy();
  } else {
    const child = spawnProcess(kind, ['-dc', file], ['ignore', 'pipe', 'ignore']);
    child.on('error', () => undefined);
    inner = await head(child.stdout as Readable, 512);
    child.kill();
  }
  return isTarHeader(inner) ? kind : undefined;
}

/**
 * Unpacks an archive ADD found into `dir` (created if missing): entries keep their owners and modes, `.wh.` names
 * are plain files, nothing escapes `dir`. bzip2 and xz go through the host's decompressors.
 */
export async function extractArchive(file: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const kind = await archiveKind(file);
  if (kind === 'bzip2' || kind === 'xz') {
    const child = spawnProcess(kind, ['-dc', file], ['ignore', 'pipe', 'pipe']);
    const done = new Promise<number>((res) => child.on('close', (code) => res(code ?? 1)));
    await applyLayer(child.stdout as Readable, dir, { plain: true });
    if ((await done) !== 0) throw invalidArgument(`cannot decompress ${basename(file)} (${kind})`);
    return;
  }
  await applyLayer(createReadStream(file), dir, { plain: true });
}
