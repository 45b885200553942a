import { spawnSync, spawn, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxTar, tempDir } from './busybox-rootfs.js';

/** Drives the real berth CLI (bin/berth) against a private state root, as a user would. */
export const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** A berth command running in the background. */
export interface Running {
  child: ChildProcess;
  /** Its result once it has exited (code 128 if a signal ended it). */
  done: Promise<Result>;
  /** What it has printed on stderr so far. */
  stderr: () => string;
}

/**
 * Starts berth on b's root without waiting for it (for commands that run at the same time as others, or that a
 * test interrupts), stdin closed, with `env` added to the environment.
 */
export function runAsync(b: Berth, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Running {
  const child = spawn(BERTH, ['--root', b.root, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
  return { child, done, stderr: () => stderr };
}

export class Berth {
  readonly root: string;
  private readonly work: string;

  constructor() {
    this.work = tempDir('berth-test-');
    this.root = join(this.work, 'root');
  }

  run(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Result {
    const r: SpawnSyncReturns<string> = spawnSync(BERTH, ['--root', this.root, ...args], {
      encoding: 'utf8', input: opts.input, env: { ...process.env, ...(opts.env ?? {}) }, timeout: opts.timeout ?? 60_000,
    });
    if (r.error) throw r.error;
    return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
  }

  /** Runs and asserts success, returning trimmed stdout. */
  ok(args: string[], opts: { input?: string | Buffer } = {}): string {
    const r = this.run(args, opts);
    if (r.code !== 0) throw new Error(`berth ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  }

  spawn(args: string[]) {
    return spawn(BERTH, ['--root', this.root, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Imports the busybox test image as NAME (default "busybox:latest"). */
  importBusybox(name = 'busybox:latest'): string {
    const tar = makeBusyboxTar(this.work);
    try {
      return this.ok(['import', tar, name]);
    } finally {
      rmSync(tar, { force: true });
    }
  }

  inspect<T = Record<string, any>>(ref: string): T {
    return (JSON.parse(this.ok(['inspect', ref])) as T[])[0]!;
  }

  /** What berth still holds in the kernel for this root: mounts, runtime state, cgroups, monitor processes. */
  leftovers(): string[] {
    // Monitors finish their cleanup (runtime state, cgroups, `--rm` directories) just after a command returns.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && spawnSync('pgrep', ['-f', `berth-monitor.*${this.root}`], { encoding: 'utf8' }).stdout.trim()) {
      spawnSync('sleep', ['0.05']);
    }
    const out: string[] = [];
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const mp = line.split(' ')[1];
      if (mp && mp.startsWith(this.work)) out.push(`mount ${mp}`);
    }
    const runcRoot = join(this.root, 'run', 'runc');
    if (existsSync(runcRoot)) for (const c of readdirSync(runcRoot)) out.push(`runc state ${c}`);
    const ids = existsSync(join(this.root, 'containers')) ? readdirSync(join(this.root, 'containers')) : [];
    for (const ctl of readdirSync('/sys/fs/cgroup')) {
      const base = join('/sys/fs/cgroup', ctl);
      try {
        for (const d of readdirSync(base)) if (d.startsWith('berth-') && ids.some((id) => d === `berth-${id}`)) out.push(`cgroup ${ctl}/${d}`);
      } catch {
        // not a directory
      }
    }
    const ps = spawnSync('pgrep', ['-f', `berth-monitor.*${this.root}`], { encoding: 'utf8' });
    if (ps.stdout.trim()) out.push(`monitors ${ps.stdout.trim().split('\n').join(',')}`);
    return out;
  }

  /** Removes every container (forcefully) and the whole state root; returns what was left before. */
  destroy(): string[] {
    const ids = this.run(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean);
    if (ids.length) this.run(['rm', '-f', ...ids]);
    const left = this.leftovers();
    for (const l of left) if (l.startsWith('mount ')) spawnSync('umount', ['-l', l.slice(6)]);
    rmSync(this.work, { recursive: true, force: true });
    return left;
  }
}
