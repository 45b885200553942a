import { existsSync, readFileSync, statSync, fstatSync, openSync, readSync, closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Engine } from './engine.js';

/** One json-file log entry, as the monitor writes it (Docker's format). */
export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

export interface LogOptions {
  follow?: boolean;
  tail?: number;
  /** Unix time in nanoseconds: entries at or after it (Docker's --since). */
  since?: bigint;
  /** Unix time in nanoseconds: entries at or before it (Docker's --until). */
  until?: bigint;
  timestamps?: boolean;
  /** Stops following (the reader went away). */
  signal?: AbortSignal;
}

function parseLines(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as LogEntry);
    } catch {
      // a torn last line (crash mid-write) is skipped
    }
  }
  return out;
}

/** Nanoseconds since the epoch of an RFC3339Nano time, exactly (a float would lose the last digits). */
export function timeNanos(t: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return BigInt(Date.parse(t) || 0) * 1_000_000n;
  const secs = BigInt(Date.parse(m[1]! + m[3]!) || 0) / 1000n;
  return secs * 1_000_000_000n + BigInt((m[2] ?? '').slice(0, 9).padEnd(9, '0'));
}

function openIf(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch {
    return undefined;
  }
}

function inoIf(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** Everything from `offset` to the end of the file. */
function readFrom(fd: number, offset: number): Buffer {
  const chunks: Buffer[] = [];
  for (;;) {
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, offset);
    if (n <= 0) break;
    chunks.push(buf.subarray(0, n));
    offset += n;
  }
  return Buffer.concat(chunks);
}

/**
 * Reads a container's logs (rotated files oldest first) and writes them to out/err; with `follow`, goes on while
 * the container runs. The current file is read through one open descriptor, so a rotation (the monitor renames
 * FILE to FILE.1 and opens a new FILE) loses and repeats nothing: the old file is read to its end, then the new one.
 */
export async function streamLogs(engine: Engine, ref: string, o: LogOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<void> {
  const rec = engine.containers.resolve(ref);
  const path = rec.LogPath;
  const maxFiles = Number(rec.HostConfig.LogConfig.Config['max-file'] ?? 1);
  const keep = (e: LogEntry) => {
    const t = timeNanos(e.time);
    return (o.since === undefined || t >= o.since) && (o.until === undefined || t <= o.until);
  };
  const emit = (e: LogEntry) => (e.stream === 'stderr' ? err : out).write(o.timestamps ? `${e.time} ${e.log}` : e.log);

  // Open the current file first; a rotated file that is this very file (rotated meanwhile) is not read twice.
  let fd = openIf(path);
  let ino = fd === undefined ? undefined : fstatSync(fd).ino;
  let text = '';
  for (let i = maxFiles - 1; i >= 1; i--) {
    const f = `${path}.${i}`;
    if (existsSync(f) && inoIf(f) !== ino) text += readFileSync(f, 'utf8');
  }
  let offset = 0;
  if (fd !== undefined) {
    const b = readFrom(fd, 0);
    offset = b.length;
    text += b.toString('utf8');
  }
  const cut = text.lastIndexOf('\n');
  let partial = text.slice(cut + 1); // a line still being written: completed while following
  let entries = parseLines(text.slice(0, cut + 1)).filter(keep);
  if (o.tail !== undefined && o.tail >= 0) entries = o.tail === 0 ? [] : entries.slice(-o.tail);
  for (const e of entries) emit(e);
  if (!o.follow) {
    if (fd !== undefined) closeSync(fd);
    return;
  }

  const take = (b: Buffer) => {
    if (!b.length) return;
    const t = partial + b.toString('utf8');
    const c = t.lastIndexOf('\n');
    partial = t.slice(c + 1);
    for (const e of parseLines(t.slice(0, c + 1))) if (keep(e)) emit(e);
  };
  const drain = () => {
    for (;;) {
      if (fd === undefined) {
        fd = openIf(path);
        offset = 0;
        if (fd === undefined) return;
        ino = fstatSync(fd).ino;
      }
      if (fstatSync(fd).size < offset) offset = 0; // truncated in place (max-file 1)
      const b = readFrom(fd, offset);
      offset += b.length;
      take(b);
      if (inoIf(path) === ino) return;
      // Rotated: the monitor wrote its last bytes to our file before renaming it; read them, then the files
      // rotated after ours (there may be several since the last look), then the new current file.
      take(readFrom(fd, offset));
      closeSync(fd);
      fd = undefined;
      let ours = maxFiles;
      for (let k = 1; k < maxFiles; k++) if (inoIf(`${path}.${k}`) === ino) ours = k;
      for (let k = ours - 1; k >= 1; k--) {
        try {
          take(readFileSync(`${path}.${k}`));
        } catch {
          // rotated away meanwhile
        }
      }
    }
  };
  try {
    for (;;) {
      const running = engine.containers.read(rec.Id)?.State.Running ?? false;
      drain();
      if (!running || o.signal?.aborted) return;
      await sleep(100);
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
