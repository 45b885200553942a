import { trace } from '../base/trace.js';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnDaemon } from '../sys/exec.js';
import { internal, unavailable } from '../base/errors.js';
import { classifyStartError } from './runc.js';

/**
 * Starting a container's monitor (monitor/berth-monitor.c), the small C process that outlives berth, owns the
 * container's stdio, writes its json-file log and records exit.json. Protocol: the monitor runs `runtime create`
 * and writes one JSON line to fd 3: {"pid":N} when the container is created (not yet started), or {"error":"..."}.
 */
export interface MonitorOptions {
  runtime: string;
  runtimeRoot: string;
  id: string;
  bundle: string;
  dir: string;
  logPath: string;
  tty: boolean;
  ttySize?: { rows: number; cols: number };
  stdin: boolean;
  logMaxSize?: number;
  logMaxFiles?: number;
  oomFile?: string;
  rootfsMount?: string;
  exitCommand?: string[];
  /** Create and start in one runtime invocation (`run --detach`): the container runs when startMonitor returns. */
  start?: boolean;
  /** Hold the container's output until the first attach client connects, at most this long. */
  attachWaitMs?: number;
  /** The spec's cgroupsPath: lets the monitor delete a stopped container without running the runtime again. */
  cgroupPath?: string;
  /** Remove the container's directory after the cleanup (`run --rm`). */
  removeDir?: boolean;
}

let monitorBin: string | undefined;

export function monitorPath(): string {
  if (monitorBin) return monitorBin;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'monitor', 'berth-monitor');
    if (existsSync(p)) return (monitorBin = p);
    dir = dirname(dir);
  }
  throw unavailable('berth-monitor is not built: run scripts/setup.sh (or npm run build)');
}

export function monitorArgs(o: MonitorOptions): string[] {
  const a = ['--runtime', o.runtime, '--runtime-root', o.runtimeRoot, '--id', o.id, '--bundle', o.bundle,
    '--dir', o.dir, '--log-path', o.logPath, '--sync-fd', '3'];
  if (o.tty) a.push('--tty');
  if (o.ttySize) a.push('--tty-size', `${o.ttySize.rows}x${o.ttySize.cols}`);
  if (o.stdin) a.push('--stdin');
  if (o.logMaxSize !== undefined) a.push('--log-max-size', String(o.logMaxSize));
  if (o.logMaxFiles !== undefined) a.push('--log-max-files', String(o.logMaxFiles));
  if (o.oomFile) a.push('--oom-file', o.oomFile);
  if (o.rootfsMount) a.push('--rootfs-mount', o.rootfsMount);
  if (o.start) a.push('--start');
  if (o.cgroupPath) a.push('--cgroup-path', o.cgroupPath);
  if (o.removeDir) a.push('--remove-dir');
  if (o.attachWaitMs) a.push('--attach-wait', String(o.attachWaitMs));
  if (o.exitCommand && o.exitCommand.length > 0) {
    a.push('--exit-command', o.exitCommand[0]!);
    for (const x of o.exitCommand.slice(1)) a.push('--exit-arg', x);
  }
  return a;
}

/** Spawns the monitor and waits until the container is created (or, with `start`, running); returns its host pid. */
export async function startMonitor(o: MonitorOptions): Promise<number> {
  const line = await spawnDaemon(monitorPath(), monitorArgs(o));
  trace('monitor: sync line');
  const first = line.split('\n')[0] ?? '';
  let msg: { pid?: number; error?: string };
  try {
    msg = JSON.parse(first) as typeof msg;
  } catch {
    throw internal(`container monitor failed to start${first ? `: ${first}` : ''}`);
  }
  if (msg.error !== undefined) throw classifyStartError(msg.error);
  if (!msg.pid) throw internal('container monitor reported no pid');
  return msg.pid;
}
