import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { conflict, BerthError, invalidArgument } from '../base/errors.js';
import { readJsonIf, withLock } from '../base/fsutil.js';
import { unmount, mountsUnder } from '../sys/mount.js';
import { containerCgroupPath, removeCgroups } from '../runtime/cgroups.js';
import { signalNumber, signalName } from '../runtime/signals.js';
import type { Engine } from './engine.js';
import { removedByMonitor, waitMonitorGone } from './monitor-state.js';
import type { ContainerRecord, ExitRecord } from './container.js';

/** Stop, kill, wait, remove, pause: the container lifecycle after start. */

/** Resolves once the container's monitor has recorded its exit (or the monitor is gone). */
export async function waitExit(engine: Engine, id: string, timeoutMs = Infinity): Promise<ContainerRecord | undefined> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    const rec = engine.containers.read(id);
    if (!rec) return undefined;
    if (!rec.State.Running) return rec;
    if (Date.now() >= deadline) return rec;
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
    delay = Math.min(delay * 2, 50);
  }
}


/**
 * A marker in the container's directory while `restart` stops and starts it: the monitor's exit command of an
 * auto-remove container must not remove it then (Docker keeps --rm containers across a restart).
 */
export function restartMarker(engine: Engine, id: string): string {
  return join(engine.containers.dir(id), 'restarting');
}

export function stopSignalOf(rec: ContainerRecord): string {
  return rec.Config.StopSignal ?? 'SIGTERM';
}

/**
 * Docker's stop: the stop signal, then SIGKILL after the grace period (-t, the container's StopTimeout, or 10 s).
 * Returns once the container has exited.
 */
export async function stopContainer(engine: Engine, ref: string, o: { timeoutSec?: number; signal?: string } = {}): Promise<ContainerRecord> {
  const rec = engine.containers.resolve(ref);
  if (!rec.State.Running) return rec;
  if (rec.State.Paused) await engine.runtimeFor(rec).resume(rec.Id).catch(() => undefined);
  const timeout = o.timeoutSec ?? rec.Config.StopTimeout ?? 10;
  const sig = signalName(o.signal ?? stopSignalOf(rec));
  await engine.runtimeFor(rec).kill(rec.Id, sig);
  let after = timeout < 0 ? await waitExit(engine, rec.Id) : await waitExit(engine, rec.Id, timeout * 1000);
  if (after?.State.Running) {
    await engine.runtimeFor(rec).kill(rec.Id, 'KILL', true);
    after = await waitExit(engine, rec.Id, 10_000);
  }
  await waitMonitorGone(engine, rec.Id);
  return after ?? rec;
}

export async function killContainer(engine: Engine, ref: string, signal = 'KILL'): Promise<ContainerRecord> {
  const rec = engine.containers.resolve(ref);
  if (!rec.State.Running) throw conflict(`cannot kill container: ${rec.Id}: container ${rec.Id} is not running`);
  const name = signalName(signal);
  if (rec.State.Paused && name !== 'SIGKILL') throw conflict(`cannot kill container: ${rec.Id}: container ${rec.Id} is paused`);
  await engine.runtimeFor(rec).kill(rec.Id, name);
  return rec;
}

export async function pauseContainer(engine: Engine, ref: string): Promise<void> {
  const rec = engine.containers.resolve(ref);
  if (!rec.State.Running) throw conflict(`container ${rec.Id} is not running`);
  if (rec.State.Paused) throw conflict(`container ${rec.Id} is already paused`);
  await engine.runtimeFor(rec).pause(rec.Id);
  engine.containers.update(rec.Id, (r) => { r.State.Paused = true; r.State.Status = 'paused'; });
}

export async function unpauseContainer(engine: Engine, ref: string): Promise<void> {
  const rec = engine.containers.resolve(ref);
  if (!rec.State.Paused) throw conflict(`container ${rec.Id} is not paused`);
  await engine.runtimeFor(rec).resume(rec.Id);
  engine.containers.update(rec.Id, (r) => { r.State.Paused = false; r.State.Status = 'running'; });
}

/**
 * Removes a container: a running one only with force (killed first). Everything it owned goes: runtime state,
 * cgroups, mounts, its directory, and with `volumes` its anonymous volumes. Removals of one container are
 * serialized across processes (an attached `run --rm` and the monitor's exit command may both try); one that
 * finds the container already gone succeeds.
 */
export async function removeContainer(engine: Engine, ref: string, o: { force?: boolean; volumes?: boolean } = {}): Promise<ContainerRecord> {
  const found = engine.containers.resolve(ref);
  const lock = engine.paths.lock(`rm-${found.Id}`);
  return withLock(lock, async () => {
    const rec = engine.containers.read(found.Id);
    if (!rec) return found;
    if (rec.State.Running) {
      if (!o.force) {
        const state = rec.State.Paused ? 'paused' : 'running';
        throw conflict(`cannot remove container "${rec.Name}": container is ${state}: stop the container before removing or force remove`);
      }
      if (rec.State.Paused) await engine.runtimeFor(rec).resume(rec.Id).catch(() => undefined);
      await engine.runtimeFor(rec).kill(rec.Id, 'KILL', true);
      await waitExit(engine, rec.Id, 10_000);
    }
    // Also when it already exited: its monitor may still be unmounting and deleting the runtime state.
    await waitMonitorGone(engine, rec.Id);
    await releaseContainer(engine, rec);
    if (o.volumes) {
      for (const m of rec.Mounts) {
        if (m.Type !== 'volume' || !m.Name) continue;
        try {
          const v = engine.volumes.exists(m.Name) ? engine.volumes.get(m.Name) : undefined;
          if (v?.Anonymous && !volumeUsers(engine, m.Name, rec.Id).length) engine.volumes.remove(m.Name, [], true);
        } catch {
          // removed meanwhile
        }
      }
    }
    forgetLocks(engine, rec.Id);
    return rec;
  });
}

/** The container's lock files (locks/ctr-ID, start-ID, rm-ID): once it is gone, nothing takes them again. */
export function forgetLocks(engine: Engine, id: string): void {
  for (const name of [`ctr-${id}`, `start-${id}`, `rm-${id}`]) rmSync(engine.paths.lock(name), { force: true });
}

/** Everything a stopped container holds in the kernel and on disk. Safe to call more than once. */
export async function releaseContainer(engine: Engine, rec: ContainerRecord): Promise<void> {
  // The monitor deletes the runtime state when the container exits; only a crash leaves it.
  if (existsSync(join(engine.runtimeFor(rec).root, rec.Id))) await engine.runtimeFor(rec).delete(rec.Id);
  const dir = engine.containers.dir(rec.Id);
  for (const m of mountsUnder(dir)) unmount(m);
  removeCgroups(containerCgroupPath(rec.Id));
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // An auto-remove monitor (--remove-dir) may be deleting the same tree right now; only a tree left over is an error.
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * `--rm` after the container exited: the monitor removes the directory itself when it can (removedByMonitor);
 * wait for that, else (or if it takes too long) remove it here.
 */
export async function awaitAutoRemove(engine: Engine, rec: ContainerRecord): Promise<void> {
  const dir = engine.containers.dir(rec.Id);
  if (removedByMonitor(engine, rec)) {
    const deadline = Date.now() + 10_000;
    let delay = 1;
    while (existsSync(dir) && Date.now() < deadline) {
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
    if (!existsSync(dir)) {
      forgetLocks(engine, rec.Id);
      return;
    }
  }
  await removeContainer(engine, rec.Id, { force: true, volumes: true }).catch((e: unknown) => {
    if (!(e instanceof BerthError && e.kind === 'not-found')) throw e; // the monitor's exit command removed it first
  });
}

export function volumeUsers(engine: Engine, name: string, exceptId?: string): string[] {
  return engine.containers.list().filter((c) => c.Id !== exceptId && c.Mounts.some((m) => m.Type === 'volume' && m.Name === name)).map((c) => c.Id);
}

export function exitRecord(engine: Engine, id: string): ExitRecord | undefined {
  return readJsonIf<ExitRecord>(join(engine.containers.dir(id), 'exit.json'));
}

export function checkSignal(sig: string): string {
  if (signalNumber(sig) === undefined) throw invalidArgument(`Invalid signal: ${sig}`); // moby/sys/signal's wording
  return signalName(sig);
}

