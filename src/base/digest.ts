import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
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

/** The 64 hex characters of a digest. */
export function hex(d: Digest): string {
  return d.slice(7);
}

/** Docker's 12-character short id. */
export function shortId(idOrDigest: string): string {
  return idOrDigest.replace(/^sha256:/, '').slice(0, 12);
}
