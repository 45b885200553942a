import { spawn, type SpawnOptions, type StdioOptions } from 'node:child_process';
import { accessSync, closeSync, constants, read } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { BerthError, unavailable } from '../base/errors.js';
import { native } from './native.js';

/** The only module that starts host processes. Container processes start through the runtime driver. */

export interface ExecResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Throw when the process exits non-zero (default true). */
  check?: boolean;
  signal?: AbortSignal;
}

/** Runs a program to completion, collecting output. A missing program is an 'unavailable' error. */
export function execFile(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      signal: opts.signal,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(unavailable(`${cmd}: executable not found in $PATH`, e));
      else reject(e);
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    child.on('close', (code, signal) => {
      const r: ExecResult = { code: code ?? 128, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if ((opts.check ?? true) && r.code !== 0) {
        const detail = (r.stderr || r.stdout).trim().split('\n').slice(-3).join('; ');
        reject(new BerthError('internal', `${cmd} ${args[0] ?? ''} failed (exit ${r.code}${signal ? `, ${signal}` : ''}): ${detail}`));
      } else resolve(r);
    });
  });
}


/** Starts a long-lived process with the given stdio; the caller owns it. */
export function spawnProcess(cmd: string, args: readonly string[], stdio: StdioOptions, extra: SpawnOptions = {}) {
  return spawn(cmd, args, { stdio, ...extra });
}

/**
 * Starts a daemon that reports on fd 3 (berth-monitor): posix_spawn in a new session with stdin and stdout on
 * /dev/null and stderr inherited, then reads fd 3 until every holder closed it, and reaps the spawned process
 * (a daemon forks away from it). Cheaper than child_process.spawn, which forks all of Node's address space.
 */
export async function spawnDaemon(cmd: string, args: readonly string[]): Promise<string> {
  const n = native();
  const { pid, fds: [fd] } = n.spawn(cmd, [cmd, ...args], true, [3]) as { pid: number; fds: [number] };
  const chunks: Buffer[] = [];
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(4096);
      const got = await new Promise<number>((resolve, reject) => read(fd, buf, 0, buf.length, null, (e, k) => (e ? reject(e) : resolve(k))));
      if (got === 0) break;
      chunks.push(buf.subarray(0, got));
    }
  } finally {
    closeSync(fd);
    // The spawned process forks the daemon away and exits at once: give up on it after 20 s.
    await reap(pid, 20_000);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Waits for a child started with native spawn, without blocking the event loop (its pipes said it is ending:
 * polled at 1 ms at first, then 10 ms). Its exit code, or 128+signal; -1 if it still runs after `limitMs`.
 */
async function reap(pid: number, limitMs = Infinity): Promise<number> {
  const n = native();
  const until = Date.now() + limitMs;
  for (let i = 0; ; i++) {
    const code = n.waitpid(pid, true);
    if (code === -2) throw new BerthError('internal', `process ${pid} is not a child of this process`);
    if (code !== -1 || Date.now() > until) return code;
    await new Promise((r) => setTimeout(r, i < 50 ? 1 : 10));
  }
}

/** A process started by spawnPiped: its output streams and its exit. */
export interface PipedProcess {
  pid: number;
  stdout: Readable;
  stderr: Readable;
  /** Its exit code (128+signal when killed), once both streams ended and it exited. */
  exited: Promise<number>;
}

/**
 * Starts a program with stdin on /dev/null and stdout and stderr piped: posix_spawn, without child_process's copy
 * of Node's address space (about 5 ms for each RUN step's runtime). The pipes end when every process holding them
 * did (the runtime, and a container's processes); the program is reaped after that, so both streams must be read
 * (or resumed) for `exited` to settle.
 */
export function spawnPiped(cmd: string, args: readonly string[]): PipedProcess {
  const { pid, fds } = native().spawn(cmd, [cmd, ...args], false, [1, 2]) as { pid: number; fds: [number, number] };
  const sockets: Socket[] = [];
  try {
    for (const fd of fds) sockets.push(new Socket({ fd, readable: true, writable: false }));
  } catch (e) {
    for (const sock of sockets) sock.destroy();
    for (const fd of fds.slice(sockets.length)) closeSync(fd);
    void reap(pid).catch(() => undefined);
    throw e;
  }
  const [stdout, stderr] = sockets as [Socket, Socket];
  // A read error ends a stream like its end does (then 'close'); the exit status still comes from waitpid.
  const ended = (s: Socket) => new Promise<void>((resolve) => s.on('error', () => undefined).once('close', () => resolve()));
  const exited = Promise.all([ended(stdout), ended(stderr)]).then(() => reap(pid));
  return { pid, stdout, stderr, exited };
}

/** Finds an executable in $PATH (as the shell would); absolute or relative paths are returned as they are. */
export function lookPath(cmd: string): string {
  if (cmd.includes('/')) return cmd;
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = `${dir || '.'}/${cmd}`;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw unavailable(`${cmd}: executable file not found in $PATH`);
}
