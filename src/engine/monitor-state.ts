import { setTimeout as sleep } from 'node:timers/promises';
import type { Engine } from './engine.js';
import type { ContainerRecord } from './container.js';

/** What berth knows about a container's monitor (monitor/berth-monitor.c) beyond the record. */

/**
 * Waits until the monitor has also finished its cleanup (runtime delete, unmount, removing its files), so the
 * container can be started again or removed without racing it. exit.json appears before that cleanup.
 */
export async function waitMonitorGone(engine: Engine, id: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (engine.containers.monitorAlive(id) && Date.now() < deadline) {
    await sleep(delay);
    delay = Math.min(delay * 2, 20);
  }
}

/**
 * Whether the monitor can carry out `--rm` by itself: it can remove the container's directory, but anonymous
 * volumes (which `run --rm` also removes) need berth.
 */
export function removedByMonitor(engine: Engine, rec: ContainerRecord): boolean {
  if (!rec.HostConfig.AutoRemove) return false;
  return !rec.Mounts.some((m) => m.Type === 'volume' && m.Name && engine.volumes.exists(m.Name) && engine.volumes.get(m.Name).Anonymous);
}
