import { existsSync, readFileSync, statSync, openSync, readSync, closeSync } from 'node:fs';
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
  /** Unix seconds (fractional). */
  since?: number;
  until?: number;
  timestamps?: boolean;
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

/** Seconds since the epoch of an RFC3339Nano time, keeping the sub-millisecond part. */
export function timeSeconds(t: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return Date.parse(t) / 1000;
  return Date.parse(m[1]! + m[3]!) / 1000 + Number(m[2] ?? 0);
}

/** Reads a container's logs (rotated files oldest first) and writes them to out/err; follows while it runs. */
export async function streamLogs(engine: Engine, ref: string, o: LogOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<void> {
  const rec = engine.containers.resolve(ref);
  const path = rec.LogPath;
  const maxFiles = Number(rec.HostConfig.LogConfig.Config['max-file'] ?? 1);
  const files: string[] = [];
  for (let i = maxFiles - 1; i >= 1; i--) if (existsSync(`${path}.${i}`)) files.push(`${path}.${i}`);
  files.push(path);
  let entries = files.flatMap((f) => (existsSync(f) ? parseLines(readFileSync(f, 'utf8')) : []));
  const keep = (e: LogEntry) => {
    const t = timeSeconds(e.time);
    return (o.since === undefined || t >= o.since) && (o.until === undefined || t <= o.until);
  };
  entries = entries.filter(keep);
  if (o.tail !== undefined && o.tail >= 0) entries = o.tail === 0 ? [] : entries.slice(-o.tail);
  const emit = (e: LogEntry) => (e.stream === 'stderr' ? err : out).write(o.timestamps ? `${e.time} ${e.log}` : e.log);
  for (const e of entries) emit(e);
  if (!o.follow) return;

  let offset = existsSync(path) ? statSync(path).size : 0;
  let ino = existsSync(path) ? statSync(path).ino : 0;
  let partial = '';
  for (;;) {
    const running = engine.containers.read(rec.Id)?.State.Running ?? false;
    if (existsSync(path)) {
      const st = statSync(path);
      if (st.ino !== ino || st.size < offset) {
        offset = 0; // rotated: read the new file from the start
        ino = st.ino;
      }
      if (st.size > offset) {
        const fd = openSync(path, 'r');
        const buf = Buffer.alloc(st.size - offset);
        readSync(fd, buf, 0, buf.length, offset);
        closeSync(fd);
        offset = st.size;
        const text = partial + buf.toString('utf8');
        const cut = text.lastIndexOf('\n');
        partial = text.slice(cut + 1);
        for (const e of parseLines(text.slice(0, cut + 1))) if (keep(e)) emit(e);
      }
    }
    if (!running) return;
    await sleep(100);
  }
}
