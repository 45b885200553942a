import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { invalidArgument } from './errors.js';

/** An OCI content digest, always "sha256:<64 hex>". */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) throw invalidArgument(`invalid digest "${s}": expected sha256:<64 hex digits>`);
  return s;
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export async function sha256File(path: string): Promise<Digest> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

// Made on first use, never at module load: a module-level buffer would be saved in the startup snapshot (1 MB that
// every command would load).
let readBuf: Buffer | undefined;

/** Feeds a file's bytes to a hash, synchronously, through one reused 1 MB buffer (the build's many small files). */
export function hashFileSync(h: Hash, path: string): void {
  const buf = (readBuf ??= Buffer.allocUnsafe(1 << 20));
  const fd = openSync(path, 'r');
  try {
    let n: number;
    while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/** The 64 hex characters of a digest. */
export function hex(d: Digest): string {
  return d.slice(7);
}

/** Docker's 12-character short id. */
export function shortId(idOrDigest: string): string {
  return idOrDigest.replace(/^sha256:/, '').slice(0, 12);
}
