// The harness's only contact with the host: spawning commands, reading /proc, unmounting, removing cgroups.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join, delimiter } from 'node:path';
import { constants as osConstants } from 'node:os';

/**
 * Runs a command to completion and times it (wall clock around the spawn, in ms).
 * Never throws for a non-zero exit: callers look at `code`.
 */
export function run(cmd, args, { env, input, timeout = 120_000 } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env: env ?? process.env, input, timeout, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) return { code: -1, stdout: '', stderr: String(r.error.message), ms };
  const code = r.status ?? 128 + (osConstants.signals[r.signal] ?? 0);
  return { code, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms };
}

/** Runs a command and returns its trimmed stdout; throws with its stderr when it fails. */
export function must(cmd, args, opts) {
  const r = run(cmd, args, opts);
  if (r.code !== 0) {
    const msg = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${msg}`);
  }
  return r.stdout.trim();
}

/** Absolute path of an executable (absolute names are checked as given), or null. */
export function which(name) {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(delimiter).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return null;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Live processes: pid, state (from /proc/PID/stat), comm and the NUL-separated cmdline as an array. */
export function processes() {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const state = stat.slice(close + 2, close + 3);
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(d), state, comm, argv });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** True while the process exists and is not a zombie. */
export function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until none of `pids` is alive; returns the ones still alive after `ms`. */
export async function waitGone(pids, ms) {
  const end = Date.now() + ms;
  let left = pids.filter(alive);
  while (left.length && Date.now() < end) {
    await sleep(50);
    left = left.filter(alive);
  }
  return left;
}

/** Sends a signal to one process by id, ignoring one that is already gone. */
export function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** Resident memory of a process in KiB: VmRSS from status and Pss from smaps_rollup (shared pages split). */
export function memoryKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  let pss = NaN;
  try {
    pss = Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
  } catch {
    // kernel without smaps_rollup
  }
  return { rss, pss };
}

/** Mount points at or under `dir`, deepest first (octal escapes of /proc/self/mounts decoded). */
export function mountsUnder(dir) {
  const decode = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => decode(l.split(' ')[1] ?? ''))
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Lazily unmounts everything at or under `dir`; returns what was mounted. */
export function unmountUnder(dir) {
  const mps = mountsUnder(dir);
  for (const mp of mps) run('umount', ['-l', mp]);
  return mps;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * Cgroup directories (absolute paths, deepest first) whose path below a hierarchy root contains one of `tokens`,
 * searched three levels deep in every mounted hierarchy.
 */
export function cgroupsMatching(tokens) {
  const found = [];
  const walk = (dir, rel, depth) => {
    let ents;
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      const r = `${rel}/${e.name}`;
      if (tokens.some((t) => r.includes(t))) found.push(p);
      if (depth < 3) walk(p, r, depth + 1);
    }
  };
  if (!existsSync(CGROUP_ROOT)) return [];
  for (const h of readdirSync(CGROUP_ROOT)) walk(join(CGROUP_ROOT, h), '', 1);
  return [...new Set(found)].sort((a, b) => b.length - a.length);
}

/** Pids listed in a cgroup directory. */
export function cgroupPids(dir) {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** rmdir, reporting failure instead of throwing. */
export function tryRmdir(dir) {
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return !existsSync(dir);
  }
}
