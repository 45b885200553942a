import { spawn, type SpawnOptions, type StdioOptions } from 'node:child_process';
import { accessSync, closeSync, constants, read } from 'node:fs';
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
  const { pid, fd } = n.spawnSession(cmd, [cmd, ...args]);
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
    // The spawned process forks the daemon away and exits at once: reap it without blocking the event loop.
    for (let i = 0; i < 2000 && n.waitpid(pid, true) === -1; i++) await new Promise((r) => setTimeout(r, i < 20 ? 1 : 10));
  }
  return Buffer.concat(chunks).toString('utf8');
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
