import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Readable, Writable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Digest } from '../base/digest.js';
import { corrupt, internal, unavailable } from '../base/errors.js';

/**
 * Streaming tar: a reader for ustar, GNU and pax archives and a deterministic ustar+pax writer.
 * Pure byte handling, no file system access; the layer applier and the changeset writer sit on top.
 */

/** One archive member, with pax/GNU extensions already folded in. */
export interface TarEntry {
  /** Path inside the archive as stored (directories usually end with "/"). */
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  /** Permission bits including setuid/setgid/sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** Bytes of content; 0 for everything but regular files. */
  size: number;
  /** Seconds since the epoch; may be fractional (pax) or negative. */
  mtime: number;
  /** Symlink target, or the archive path a hardlink points to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer>;
}

const BLOCK = 512;
/** pax and GNU long-name bodies are held in memory: bound them so a hostile archive cannot exhaust it. */
const MAX_META_SIZE = 1 << 20;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

// ---------------------------------------------------------------------------------------------------------------
// Reading

const toBuffer = (b: Buffer | Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Pulls exact byte counts out of a chunked stream, tracking the absolute offset for error messages. */
class ByteSource {
  private chunks: Buffer[] = [];
  private head = 0; // read position in chunks[0]
  private avail = 0;
  private ended = false;
  offset = 0;

  constructor(private readonly it: AsyncIterator<Buffer | Uint8Array>) {}

  private async fill(n: number): Promise<void> {
    while (this.avail < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const b = toBuffer(r.value);
      if (b.length === 0) continue;
      this.chunks.push(b);
      this.avail += b.length;
    }
  }

  /** Up to `n` bytes from the first buffered chunk (at least one byte unless the input has ended). */
  async readSome(n: number): Promise<Buffer> {
    if (this.avail === 0) await this.fill(1);
    if (this.avail === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    const take = Math.min(n, first.length - this.head);
    const out = first.subarray(this.head, this.head + take);
    this.head += take;
    if (this.head === first.length) {
      this.chunks.shift();
      this.head = 0;
    }
    this.avail -= take;
    this.offset += take;
    return out;
  }

  /** Exactly `n` bytes, or fewer only when the input ends. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) return this.readSome(n);
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const b = await this.readSome(n - got);
      if (b.length === 0) break;
      parts.push(b);
      got += b.length;
    }
    return Buffer.concat(parts, got);
  }

  /** Skips `n` bytes; false when the input ended first. */
  async skip(n: number): Promise<boolean> {
    while (n > 0) {
      const b = await this.readSome(n);
      if (b.length === 0) return false;
      n -= b.length;
    }
    return true;
  }

  /** Reads and discards the rest of the input, so that whoever hashes the stream upstream sees all of it. */
  async drain(): Promise<void> {
    this.chunks = [];
    this.head = 0;
    this.avail = 0;
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
    }
  }

  async close(): Promise<void> {
    if (!this.ended) await this.it.return?.();
  }
}

function cstring(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len);
  const nul = field.indexOf(0);
  return (nul < 0 ? field : field.subarray(0, nul)).toString('utf8');
}

/** A numeric header field: octal text, or GNU base-256 when the high bit of the first byte is set. */
function parseNumber(buf: Buffer, start: number, len: number, what: string, at: number): number {
  const field = buf.subarray(start, start + len);
  if (field[0]! & 0x80) {
    const negative = field[0] === 0xff;
    let v = BigInt(field[0]! & 0x7f);
    if (negative) v = 0xffn;
    for (let i = 1; i < field.length; i++) v = (v << 8n) | BigInt(field[i]!);
    if (negative) v -= 1n << BigInt(8 * field.length);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw corrupt(`invalid tar header at offset ${at}: ${what} out of range`);
    }
    return Number(v);
  }
  let i = 0;
  while (i < field.length && (field[i] === 0x20 || field[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < field.length; i++) {
    const c = field[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw corrupt(`invalid tar header at offset ${at}: bad ${what} field`);
    v = v * 8 + (c - 0x30);
    digits++;
  }
  for (; i < field.length; i++) {
    if (field[i] !== 0x20 && field[i] !== 0) throw corrupt(`invalid tar header at offset ${at}: bad ${what} field`);
  }
  if (digits === 0) return 0;
  return v;
}

function verifyChecksum(h: Buffer, at: number): void {
  const stored = parseNumber(h, 148, 8, 'checksum', at);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  if (stored !== unsigned && stored !== signed) throw corrupt(`invalid tar header at offset ${at}: checksum mismatch`);
}

type PaxRecords = Map<string, Buffer>;

/** Parses "LEN key=value\n" records. Values stay bytes: xattr values are binary. */
function parsePax(data: Buffer, at: number): PaxRecords {
  const out: PaxRecords = new Map();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad with NULs
    const sp = data.indexOf(0x20, pos);
    const lenText = sp > pos ? data.subarray(pos, sp).toString('latin1') : '';
    const len = /^[0-9]{1,10}$/.test(lenText) ? Number(lenText) : NaN;
    if (!Number.isFinite(len) || len <= sp - pos + 1 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw corrupt(`invalid pax header at offset ${at}`);
    }
    const rec = data.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw corrupt(`invalid pax header at offset ${at}`);
    out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    pos += len;
  }
  return out;
}

function paxSize(recs: PaxRecords | undefined): number {
  let n = 0;
  for (const [k, v] of recs ?? []) n += k.length + v.length;
  return n;
}

function paxNumber(v: Buffer, key: string, at: number, fractional = false): number {
  const s = v.toString('latin1');
  const re = fractional ? /^-?[0-9]+(\.[0-9]*)?$/ : /^[0-9]+$/;
  const n = Number(s);
  if (!re.test(s) || !Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER) {
    throw corrupt(`invalid pax header at offset ${at}: bad ${key} "${s}"`);
  }
  return n;
}

const TYPES: Record<string, TarEntry['type']> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
  D: 'dir', // GNU dumpdir: a directory followed by a listing we do not need
};

/**
 * Reads a tar stream entry by entry. Each entry's body must be consumed (or abandoned) before asking for the next
 * entry; whatever is left of it is skipped then. Damaged input (bad checksum, truncation, malformed extension
 * headers) raises a BerthError of kind 'corrupt'. After the end-of-archive marker the rest of the input is read
 * and discarded so that an upstream digest covers the whole stream.
 */
export async function* readTar(
  input: AsyncIterable<Buffer | Uint8Array>,
): AsyncGenerator<{ entry: TarEntry; body: AsyncIterable<Buffer> }> {
  const src = new ByteSource(input[Symbol.asyncIterator]());
  const global: PaxRecords = new Map();
  let pax: PaxRecords | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let current: { remaining: number; padding: number; closed: boolean; name: string } | undefined;

  const readMeta = async (size: number, at: number): Promise<Buffer> => {
    if (size > MAX_META_SIZE) throw corrupt(`invalid tar header at offset ${at}: extension header too large`);
    const data = await src.read(size);
    if (data.length < size || !(await src.skip(pad(size)))) throw corrupt(`truncated tar archive at offset ${src.offset}`);
    return data;
  };

  try {
    for (;;) {
      if (current) {
        current.closed = true;
        if (!(await src.skip(current.remaining + current.padding))) {
          throw corrupt(`truncated tar archive: entry "${current.name}" ends early`);
        }
        current = undefined;
      }
      const at = src.offset;
      const h = await src.read(BLOCK);
      if (h.length === 0) {
        if (pax || longName !== undefined || longLink !== undefined) throw corrupt(`truncated tar archive at offset ${at}`);
        return; // no end-of-archive marker: accepted, like Go and GNU tar
      }
      if (h.length < BLOCK) throw corrupt(`truncated tar archive at offset ${at}`);
      if (h.equals(ZERO_BLOCK)) {
        const next = await src.read(BLOCK);
        if (next.length !== 0 && !next.equals(ZERO_BLOCK)) throw corrupt(`invalid tar header at offset ${at + BLOCK}`);
        await src.drain();
        return;
      }
      verifyChecksum(h, at);

      const flag = String.fromCharCode(h[156]!);
      let size = parseNumber(h, 124, 12, 'size', at);
      if (size < 0) throw corrupt(`invalid tar header at offset ${at}: negative size`);

      if (flag === 'x' || flag === 'g') {
        const recs = parsePax(await readMeta(size, at), at);
        if (flag === 'g') {
          for (const [k, v] of recs) {
            if (v.length === 0) global.delete(k);
            else global.set(k, v);
          }
        } else {
          pax = new Map([...(pax ?? []), ...recs]);
        }
        // several extension headers in a row must not add up to more than one may hold
        if (paxSize(global) + paxSize(pax) > MAX_META_SIZE) {
          throw corrupt(`invalid tar header at offset ${at}: extension headers too large`);
        }
        continue;
      }
      if (flag === 'L' || flag === 'K') {
        const data = await readMeta(size, at);
        const nul = data.indexOf(0);
        const text = (nul < 0 ? data : data.subarray(0, nul)).toString('utf8');
        if (flag === 'L') longName = text;
        else longLink = text;
        continue;
      }
      if (flag === 'V') {
        // GNU volume label: no file behind it
        if (!(await src.skip(size + pad(size)))) throw corrupt(`truncated tar archive at offset ${src.offset}`);
        continue;
      }
      let type = TYPES[flag];
      if (!type) throw corrupt(`unsupported tar entry type '${flag.replace(/[^ -~]/g, '?')}' at offset ${at}`);

      const magic = h.subarray(257, 263).toString('latin1');
      const ustar = magic === 'ustar\0';
      const gnu = magic === 'ustar ';
      let name = cstring(h, 0, 100);
      if (ustar) {
        const prefix = cstring(h, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      const entry: TarEntry = {
        name,
        type,
        mode: parseNumber(h, 100, 8, 'mode', at) & 0o7777,
        uid: parseNumber(h, 108, 8, 'uid', at),
        gid: parseNumber(h, 116, 8, 'gid', at),
        size: 0,
        mtime: parseNumber(h, 136, 12, 'mtime', at),
      };
      const linkname = cstring(h, 157, 100);
      if (linkname) entry.linkname = linkname;
      if (ustar || gnu) {
        const uname = cstring(h, 265, 32);
        const gname = cstring(h, 297, 32);
        if (uname) entry.uname = uname;
        if (gname) entry.gname = gname;
        if (type === 'char' || type === 'block') {
          entry.devmajor = parseNumber(h, 329, 8, 'devmajor', at);
          entry.devminor = parseNumber(h, 337, 8, 'devminor', at);
        }
      }
      if (longName !== undefined) entry.name = longName;
      if (longLink !== undefined) entry.linkname = longLink;

      const recs = pax ? new Map([...global, ...pax]) : global;
      for (const [k, v] of recs) {
        if (v.length === 0) continue; // an empty per-entry value cancels a global one
        switch (k) {
          case 'path':
            entry.name = v.toString('utf8');
            break;
          case 'linkpath':
            entry.linkname = v.toString('utf8');
            break;
          case 'size':
            size = paxNumber(v, k, at);
            break;
          case 'uid':
            entry.uid = paxNumber(v, k, at);
            break;
          case 'gid':
            entry.gid = paxNumber(v, k, at);
            break;
          case 'uname':
            entry.uname = v.toString('utf8');
            break;
          case 'gname':
            entry.gname = v.toString('utf8');
            break;
          case 'mtime':
            entry.mtime = paxNumber(v, k, at, true);
            break;
          default:
            if (k.startsWith('SCHILY.xattr.')) (entry.xattrs ??= {})[k.slice('SCHILY.xattr.'.length)] = Buffer.from(v);
            else if (k.startsWith('GNU.sparse.')) throw corrupt(`unsupported sparse tar entry "${entry.name}" at offset ${at}`);
        }
      }
      pax = undefined;
      longName = undefined;
      longLink = undefined;

      if (flag === '\0' && entry.name.endsWith('/')) type = entry.type = 'dir';
      // Go's rule (what Docker uses): link, device, directory and fifo headers carry no data whatever size says.
      const dataBytes = type === 'file' || flag === 'D' ? size : 0;
      if (type === 'file') entry.size = size;

      const state = { remaining: dataBytes, padding: pad(dataBytes), closed: false, name: entry.name };
      current = state;
      const body = (async function* (): AsyncGenerator<Buffer> {
        while (state.remaining > 0) {
          if (state.closed) throw internal(`tar entry "${state.name}": body read after moving to the next entry`);
          const b = await src.readSome(Math.min(state.remaining, 1 << 20));
          if (b.length === 0) throw corrupt(`truncated tar archive: entry "${state.name}" ends early`);
          state.remaining -= b.length;
          yield b;
        }
      })();
      // A directory dump is not file content: hand out an empty body and let the skip drop it.
      yield { entry, body: flag === 'D' ? emptyBody() : body };
    }
  } finally {
    await src.close();
  }
}

async function* emptyBody(): AsyncGenerator<Buffer> {}

const pad = (n: number): number => (BLOCK - (n % BLOCK)) % BLOCK;

const GZIP = Buffer.from([0x1f, 0x8b]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const XZ = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const BZIP2 = Buffer.from('BZh');

/**
 * Undoes a layer's compression, recognised by its magic bytes: gzip is inflated, uncompressed input passes
 * through. zstd, xz and bzip2 are recognised but not supported (BerthError 'unavailable'). Broken gzip data is
 * 'corrupt'.
 */
export async function* decompressed(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const headParts: Buffer[] = [];
  let n = 0;
  let done = false;
  while (n < 10) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = toBuffer(r.value);
    headParts.push(b);
    n += b.length;
  }
  const head = Buffer.concat(headParts);
  const rest = (async function* (): AsyncGenerator<Buffer> {
    try {
      if (head.length) yield head;
      while (!done) {
        const r = await it.next();
        if (r.done) break;
        yield toBuffer(r.value);
      }
    } finally {
      await it.return?.();
    }
  })();

  const starts = (magic: Buffer) => head.subarray(0, magic.length).equals(magic);
  let unsupported: string | undefined;
  if (starts(ZSTD)) unsupported = 'zstd';
  else if (starts(XZ)) unsupported = 'xz';
  else if (starts(BZIP2) && head.length >= 10 && head.subarray(4, 10).equals(Buffer.from('314159265359', 'hex'))) {
    unsupported = 'bzip2';
  }
  if (unsupported) {
    await rest.return(undefined);
    throw unavailable(`${unsupported}-compressed layers are not supported`);
  }
  if (!starts(GZIP)) {
    yield* rest;
    return;
  }
  const gunzip = createGunzip();
  const src = Readable.from(rest, { objectMode: false });
  pipeline(src, gunzip, () => {}); // errors surface through the gunzip iterator below
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw corrupt(`invalid gzip data: ${(e as Error).message}`, e);
    }
    throw e;
  } finally {
    src.destroy();
    gunzip.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

const MAX_OCTAL_7 = 0o7777777; // 8-byte fields: 7 digits + NUL
const MAX_OCTAL_11 = 0o77777777777; // 12-byte fields

const TYPEFLAG: Record<TarEntry['type'], string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

const isAscii = (b: Buffer): boolean => b.every((c) => c > 0 && c < 0x80);

function writeString(h: Buffer, s: Buffer, start: number, len: number): void {
  s.copy(h, start, 0, Math.min(len, s.length));
}

function writeOctal(h: Buffer, v: number, start: number, len: number): void {
  h.write(v.toString(8).padStart(len - 1, '0') + '\0', start, len, 'latin1');
}

/** GNU base-256, for device numbers beyond octal range (pax has no key for them). */
function writeBase256(h: Buffer, v: number, start: number, len: number): void {
  let x = BigInt(v);
  for (let i = start + len - 1; i > start; i--) {
    h[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  h[start] = 0x80;
}

/** Splits a long path into ustar prefix (<= 155 bytes) and name (<= 100 bytes) at a "/", if possible. */
function splitUstar(name: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  if (name.length <= 100) return { prefix: Buffer.alloc(0), name };
  for (let i = 0; i < name.length && i <= 155; i++) {
    if (name[i] !== 0x2f) continue;
    const rest = name.subarray(i + 1);
    if (rest.length === 0) return undefined;
    if (rest.length <= 100) return { prefix: name.subarray(0, i), name: rest };
  }
  return undefined;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function formatMtime(t: number): string {
  if (Number.isInteger(t)) return String(t);
  return t.toFixed(9).replace(/0+$/, '');
}

interface HeaderFields {
  name: Buffer;
  prefix: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flag: string;
  linkname: Buffer;
  uname: Buffer;
  gname: Buffer;
  devmajor: number;
  devminor: number;
}

function encodeHeader(f: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, f.name, 0, 100);
  writeOctal(h, f.mode, 100, 8);
  writeOctal(h, f.uid, 108, 8);
  writeOctal(h, f.gid, 116, 8);
  writeOctal(h, f.size, 124, 12);
  writeOctal(h, f.mtime, 136, 12);
  h.write(f.flag, 156, 1, 'latin1');
  writeString(h, f.linkname, 157, 100);
  h.write('ustar\x0000', 257, 8, 'latin1');
  writeString(h, f.uname, 265, 32);
  writeString(h, f.gname, 297, 32);
  if (f.devmajor > MAX_OCTAL_7) writeBase256(h, f.devmajor, 329, 8);
  else writeOctal(h, f.devmajor, 329, 8);
  if (f.devminor > MAX_OCTAL_7) writeBase256(h, f.devminor, 337, 8);
  else writeOctal(h, f.devminor, 337, 8);
  writeString(h, f.prefix, 345, 155);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** The header blocks (pax extension first when needed) for one entry. Pure: equal entries give equal bytes. */
export function encodeEntryHeader(entry: TarEntry): Buffer {
  const size = entry.type === 'file' ? entry.size : 0;
  let nameText = entry.name;
  if (entry.type === 'dir' && !nameText.endsWith('/')) nameText += '/';
  const nameBytes = Buffer.from(nameText, 'utf8');
  const linkBytes = Buffer.from(entry.linkname ?? '', 'utf8');
  const unameBytes = Buffer.from(entry.uname ?? '', 'utf8');
  const gnameBytes = Buffer.from(entry.gname ?? '', 'utf8');
  const records: Buffer[] = [];
  const ascii = (b: Buffer) => b.length === 0 || isAscii(b);
  const fits = (v: number, max: number) => Number.isInteger(v) && v >= 0 && v <= max;

  let split = ascii(nameBytes) ? splitUstar(nameBytes) : undefined;
  if (!split) {
    records.push(paxRecord('path', nameBytes));
    split = { prefix: Buffer.alloc(0), name: asciiFallback(nameBytes, 100) };
  }
  let linkField: Buffer = linkBytes;
  if (linkBytes.length > 100 || !ascii(linkBytes)) {
    records.push(paxRecord('linkpath', linkBytes));
    linkField = asciiFallback(linkBytes, 100);
  }
  const numeric = (key: string, v: number, max: number): number => {
    if (fits(v, max)) return v;
    if (key === 'mtime' ? !Number.isFinite(v) : !fits(v, Number.MAX_SAFE_INTEGER)) {
      throw internal(`tar entry "${entry.name}": invalid ${key} ${v}`);
    }
    records.push(paxRecord(key, Buffer.from(key === 'mtime' ? formatMtime(v) : String(v))));
    return key === 'mtime' ? Math.min(Math.max(Math.floor(v), 0), max) : 0;
  };
  const uid = numeric('uid', entry.uid, MAX_OCTAL_7);
  const gid = numeric('gid', entry.gid, MAX_OCTAL_7);
  const sizeField = numeric('size', size, MAX_OCTAL_11);
  const mtime = numeric('mtime', entry.mtime, MAX_OCTAL_11);
  let unameField: Buffer = unameBytes;
  if (unameBytes.length > 32 || !ascii(unameBytes)) {
    records.push(paxRecord('uname', unameBytes));
    unameField = Buffer.alloc(0);
  }
  let gnameField: Buffer = gnameBytes;
  if (gnameBytes.length > 32 || !ascii(gnameBytes)) {
    records.push(paxRecord('gname', gnameBytes));
    gnameField = Buffer.alloc(0);
  }
  for (const key of Object.keys(entry.xattrs ?? {}).sort()) {
    records.push(paxRecord(`SCHILY.xattr.${key}`, entry.xattrs![key]!));
  }

  const header = encodeHeader({
    name: split.name,
    prefix: split.prefix,
    mode: entry.mode & 0o7777,
    uid,
    gid,
    size: sizeField,
    mtime,
    flag: TYPEFLAG[entry.type],
    linkname: linkField,
    uname: unameField,
    gname: gnameField,
    devmajor: entry.devmajor ?? 0,
    devminor: entry.devminor ?? 0,
  });
  if (records.length === 0) return header;

  const paxData = Buffer.concat(records);
  const base = nameText.replace(/\/+$/, '').split('/').pop() ?? '';
  const paxHeader = encodeHeader({
    name: asciiFallback(Buffer.from(`PaxHeaders.0/${base}`, 'utf8'), 100),
    prefix: Buffer.alloc(0),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: paxData.length,
    mtime,
    flag: 'x',
    linkname: Buffer.alloc(0),
    uname: Buffer.alloc(0),
    gname: Buffer.alloc(0),
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, paxData, Buffer.alloc(pad(paxData.length)), header]);
}

/** A readable stand-in for a name that only pax can carry: non-ASCII bytes become "_", cut to `len`. */
function asciiFallback(b: Buffer, len: number): Buffer {
  const out = Buffer.from(b.subarray(0, len));
  for (let i = 0; i < out.length; i++) if (out[i]! >= 0x80 || out[i] === 0) out[i] = 0x5f;
  return out;
}

export interface TarWriterOptions {
  /** End the output stream in finish() (default true). */
  end?: boolean;
}

/**
 * Writes a tar stream: ustar headers, with a pax extension header only for what ustar cannot hold (long or
 * non-ASCII names, big numbers, fractional or negative mtimes, xattrs). Deterministic: the bytes depend on the
 * entries alone. Honours backpressure of the output. Without an output, the bytes are offered on `readable`,
 * which must be consumed while entries are added. Keeps a running sha256 and byte count of everything written.
 */
export class TarWriter {
  /** The tar bytes, when no output stream was given. */
  readonly readable: Readable | undefined;
  private readonly out: Writable;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private error: Error | undefined;
  private finished = false;
  private readonly endOutput: boolean;

  constructor(out?: Writable | NodeJS.WritableStream, opts: TarWriterOptions = {}) {
    if (out) {
      this.out = out as Writable;
    } else {
      const pt = new PassThrough();
      this.out = pt;
      this.readable = pt;
    }
    this.endOutput = opts.end ?? true;
    this.out.on('error', (e: Error) => {
      this.error ??= e;
    });
  }

  /** Bytes written so far (the archive size after finish()). */
  get size(): number {
    return this.bytes;
  }

  /** sha256 of the whole archive; only after finish(). */
  digest(): Digest {
    if (!this.finished) throw internal('TarWriter.digest() before finish()');
    return `sha256:${this.digestHex ??= this.hash.digest('hex')}`;
  }
  private digestHex: string | undefined;

  /**
   * Appends an entry. Regular files need a body of exactly entry.size bytes (a Buffer or chunks); other types
   * take no body.
   */
  async add(entry: TarEntry, body?: Buffer | AsyncIterable<Buffer>): Promise<void> {
    if (this.finished) throw internal('TarWriter.add() after finish()');
    await this.push(encodeEntryHeader(entry));
    if (entry.type !== 'file') {
      if (body && (!Buffer.isBuffer(body) || body.length > 0)) {
        throw internal(`tar entry "${entry.name}": a ${entry.type} has no content`);
      }
      return;
    }
    let written = 0;
    const check = (n: number) => {
      written += n;
      if (written > entry.size) throw internal(`tar entry "${entry.name}": content is longer than its size ${entry.size}`);
    };
    if (Buffer.isBuffer(body)) {
      check(body.length);
      if (body.length) await this.push(body);
    } else if (body) {
      for await (const chunk of body) {
        check(chunk.length);
        if (chunk.length) await this.push(chunk);
      }
    }
    if (written !== entry.size) {
      throw internal(`tar entry "${entry.name}": content has ${written} bytes, header says ${entry.size}`);
    }
    const p = pad(entry.size);
    if (p) await this.push(Buffer.alloc(p));
  }

  /** Writes the end-of-archive marker (two zero blocks) and, unless told otherwise, ends the output. */
  async finish(): Promise<void> {
    if (this.finished) return;
    await this.push(Buffer.alloc(2 * BLOCK));
    this.finished = true;
    if (!this.endOutput) return;
    await new Promise<void>((resolve, reject) => {
      const done = (e?: Error | null) => {
        this.out.off('finish', ok);
        this.out.off('error', fail);
        if (e) reject(e);
        else resolve();
      };
      const ok = () => done();
      const fail = (e: Error) => done(e);
      this.out.on('finish', ok);
      this.out.on('error', fail);
      this.out.end();
    });
    if (this.error) throw this.error;
  }

  private async push(buf: Buffer): Promise<void> {
    if (this.error) throw this.error;
    this.hash.update(buf);
    this.bytes += buf.length;
    if (this.out.write(buf)) return;
    await new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        this.out.off('drain', onDrain);
        this.out.off('error', onError);
        this.out.off('close', onClose);
      };
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onError = (e: Error) => {
        cleanup();
        reject(e);
      };
      const onClose = () => {
        cleanup();
        reject(this.error ?? new Error('tar output closed before the archive was complete'));
      };
      this.out.on('drain', onDrain);
      this.out.on('error', onError);
      this.out.on('close', onClose);
    });
  }
}
