import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reading container cgroups, for both hierarchies. The runtime creates and limits them (from the spec's
 * linux.resources); berth reads usage for `stats` and the OOM counter, and removes what a crashed runtime left.
 * The mount root is a parameter so this is testable on fake trees.
 */
export type CgroupVersion = 1 | 2;

export function cgroupVersion(root = '/sys/fs/cgroup'): CgroupVersion {
  return existsSync(join(root, 'cgroup.controllers')) ? 2 : 1;
}

/** The cgroupsPath berth gives a container's runtime spec. */
export function containerCgroupPath(id: string): string {
  return `/berth-${id}`;
}

/** The file whose "oom_kill N" line counts OOM kills in the container's memory cgroup. */
export function oomFile(cgPath: string, root = '/sys/fs/cgroup'): string {
  return cgroupVersion(root) === 2 ? join(root, cgPath, 'memory.events') : join(root, 'memory', cgPath, 'memory.oom_control');
}

export interface CgroupStats {
  memoryUsage: number;
  memoryLimit: number;
  cpuUsageNs: number;
  pids: number;
}

function readNum(path: string): number {
  try {
    const t = readFileSync(path, 'utf8').trim();
    return t === 'max' ? Infinity : Number(t);
  } catch {
    return 0;
  }
}

function readKeyed(path: string): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const [k, v] = line.split(' ');
      if (k && v) out[k] = Number(v);
    }
  } catch {
    // absent controller: zeros
  }
  return out;
}

export function readStats(cgPath: string, root = '/sys/fs/cgroup'): CgroupStats {
  if (cgroupVersion(root) === 2) {
    const dir = join(root, cgPath);
    const cpu = readKeyed(join(dir, 'cpu.stat'));
    const mstat = readKeyed(join(dir, 'memory.stat'));
    return {
      memoryUsage: readNum(join(dir, 'memory.current')) - (mstat.inactive_file ?? 0),
      memoryLimit: readNum(join(dir, 'memory.max')),
      cpuUsageNs: (cpu.usage_usec ?? 0) * 1000,
      pids: readNum(join(dir, 'pids.current')),
    };
  }
  const mstat = readKeyed(join(root, 'memory', cgPath, 'memory.stat'));
  const usage = readNum(join(root, 'memory', cgPath, 'memory.usage_in_bytes'));
  return {
    // Docker subtracts the page cache that can be reclaimed (total_inactive_file on v1).
    memoryUsage: Math.max(0, usage - (mstat.total_inactive_file ?? 0)),
    memoryLimit: readNum(join(root, 'memory', cgPath, 'memory.limit_in_bytes')),
    cpuUsageNs: readNum(join(root, 'cpuacct', cgPath, 'cpuacct.usage')),
    pids: readNum(join(root, 'pids', cgPath, 'pids.current')),
  };
}

/** Removes the container's (empty) cgroup directories in every hierarchy; a runtime crash can leave them. */
export function removeCgroups(cgPath: string, root = '/sys/fs/cgroup'): void {
  const dirs = cgroupVersion(root) === 2 ? [join(root, cgPath)] : readdirSync(root).map((c) => join(root, c, cgPath));
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      // absent or busy: nothing to do
    }
  }
}
