import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mountsUnder, unmount } from '../sys/mount.js';
import { removeCgroups } from '../runtime/cgroups.js';
import type { Engine } from '../engine/engine.js';
import { STEP_DIR_PREFIX } from './layer-commit.js';
import { RUN_ID_PREFIX } from './run-step.js';

/** Where RUN secret files live while a step runs (a tmpfs: never on disk): `berth-secret-<pid>-<random>`. */
export const SECRET_DIR = '/dev/shm';
export const SECRET_PREFIX = 'berth-secret-';
/** Scratch mounts of COPY --from and RUN --mount=from under <root>/tmp: `from-<pid>-<random>`. */
export const SOURCE_MOUNT_PREFIX = 'from-';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** The owner pid of a `<prefix><pid>-<random>` name, when the name has that form. */
function ownerOf(name: string, prefixes: readonly string[]): number | undefined {
  for (const p of prefixes) {
    if (!name.startsWith(p)) continue;
    const m = /^(\d+)-[0-9a-f]+$/.exec(name.slice(p.length));
    if (m) return Number(m[1]);
  }
  return undefined;
}

/**
 * Removes what builds killed without a chance to clean up (SIGKILL, a crash) left behind: their RUN containers
 * (killed, runtime state deleted, cgroups removed), step and source mounts and directories under <root>/tmp, and
 * secret files. Only things whose owner process is gone are touched, so concurrent builds are safe.
 * Returns what was removed, for debugging.
 */
export async function sweepStaleBuilds(engine: Engine): Promise<string[]> {
  const removed: string[] = [];
  const runcRoot = engine.runtime.root;
  if (existsSync(runcRoot)) {
    for (const id of readdirSync(runcRoot)) {
      const pid = ownerOf(id, [RUN_ID_PREFIX]);
      if (pid === undefined || alive(pid)) continue;
      await engine.runtime.kill(id, 'KILL', true).catch(() => undefined);
      await engine.runtime.delete(id);
      removeCgroups(`/${id}`);
      removed.push(`container ${id}`);
    }
  }
  const tmp = engine.paths.tmp;
  if (existsSync(tmp)) {
    for (const name of readdirSync(tmp)) {
      const pid = ownerOf(name, [STEP_DIR_PREFIX, RUN_ID_PREFIX, SOURCE_MOUNT_PREFIX]);
      if (pid === undefined || alive(pid)) continue;
      const dir = join(tmp, name);
      for (const m of mountsUnder(dir)) unmount(m);
      if (name.startsWith(RUN_ID_PREFIX)) removeCgroups(`/${name}`);
      rmSync(dir, { recursive: true, force: true });
      removed.push(`dir ${dir}`);
    }
  }
  try {
    for (const name of readdirSync(SECRET_DIR)) {
      const pid = ownerOf(name, [SECRET_PREFIX, RUN_ID_PREFIX]);
      if (pid === undefined || alive(pid)) continue;
      rmSync(join(SECRET_DIR, name), { recursive: true, force: true });
      removed.push(`${SECRET_DIR}/${name}`);
    }
  } catch {
    // no /dev/shm
  }
  return removed;
}
