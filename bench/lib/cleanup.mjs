// Undo stack for everything a benchmark run creates, run last-in first-out on success, failure or signal.
import { existsSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { alive, cgroupPids, cgroupsMatching, processes, signal, tryRmdir, unmountUnder, waitGone } from './host.mjs';

/**
 * Cleanup steps registered as resources are created. `run()` executes each step once, newest first; a step that
 * throws is reported in `warnings` and does not stop the others.
 */
export class Cleanup {
  steps = [];
  warnings = [];
  done = false;

  /** Registers a step (sync or async) under a label used in warnings. */
  push(label, fn) {
    this.steps.push({ label, fn });
  }

  async run() {
    if (this.done) return;
    this.done = true;
    while (this.steps.length) {
      const { label, fn } = this.steps.pop();
      try {
        await fn();
      } catch (e) {
        this.warnings.push(`cleanup of ${label}: ${e instanceof Error ? e.message : e}`);
      }
    }
  }
}

/**
 * The last line of defence, for whatever the peers' own cleanups left behind: processes whose command line names the
 * work dir (monitors, shims, daemons), processes in cgroups named by `tokens`, mounts under the work dir, the work
 * dir itself, and the cgroups named by `tokens`. Returns what it had to remove, for the report.
 */
export async function sweep(workDir, tokens) {
  const left = [];
  const strays = processes().filter((p) => p.pid !== process.pid && p.state !== 'Z' && p.argv.some((a) => a.includes(workDir)));
  for (const p of strays) {
    left.push(`process ${p.pid} ${p.comm}`);
    signal(p.pid, 'SIGTERM');
  }
  for (const pid of await waitGone(strays.map((p) => p.pid), 5000)) signal(pid, 'SIGKILL');
  const groups = cgroupsMatching(tokens);
  const inGroups = [...new Set(groups.flatMap(cgroupPids))].filter((pid) => pid !== process.pid && alive(pid));
  for (const pid of inGroups) {
    left.push(`process ${pid} in a benchmark cgroup`);
    signal(pid, 'SIGKILL');
  }
  await waitGone(inGroups, 3000);
  for (const mp of unmountUnder(workDir)) left.push(`mount ${mp}`);
  if (existsSync(workDir)) rmSync(workDir, { recursive: true, force: true, maxRetries: 3 });
  const cgroups = new Map();
  for (const g of cgroupsMatching(tokens)) {
    const rel = g.split('/').slice(5).join('/');
    const removed = tryRmdir(g);
    const key = `cgroup ${rel}${removed ? '' : ' (could not remove)'}`;
    cgroups.set(key, (cgroups.get(key) ?? 0) + 1);
  }
  for (const [key, n] of cgroups) left.push(`${key} in ${n} hierarch${n === 1 ? 'y' : 'ies'}`);
  return left;
}

/**
 * Remembers whether host paths existed before a run, so that `restore()` removes only those the run created
 * (daemons write a few files outside their private roots; see the docker peer).
 */
export class HostPaths {
  constructor(paths) {
    this.before = new Map(paths.map((p) => [p, existsSync(p)]));
  }

  /** Removes the paths that did not exist before; directories only when empty. Returns what it removed. */
  restore() {
    const removed = [];
    const deepestFirst = [...this.before].sort(([a], [b]) => b.length - a.length);
    for (const [p, existed] of deepestFirst) {
      if (existed || !existsSync(p)) continue;
      try {
        if (readdirIfDir(p)) rmdirSync(p);
        else rmSync(p, { force: true });
        removed.push(p);
      } catch {
        // not empty: someone else uses it now
      }
    }
    return removed;
  }
}

function readdirIfDir(p) {
  try {
    readdirSync(p);
    return true;
  } catch {
    return false;
  }
}
