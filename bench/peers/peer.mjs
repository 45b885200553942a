// The contract every benchmarked engine implements, and helpers they share.
import { processes, sleep } from '../lib/host.mjs';

/**
 * @typedef {object} Context  what run.mjs hands every peer
 * @property {string} work       private temp dir of this run; each peer works under work/<peer name>
 * @property {string} tarball    busybox rootfs tar (scripts/make-busybox-image.sh)
 * @property {string} image      image name to import the tarball as
 * @property {string} token      unique string of this run; put it in every name that lands outside `work`
 *                               (container ids, cgroup parents) so the final sweep can find leftovers
 * @property {import('../lib/cleanup.mjs').Cleanup} cleanup   register an undo step for everything created
 * @property {object} opts       parsed command-line options
 *
 * @typedef {object} Case  one timed command (a row of the table)
 * @property {string} label
 * @property {string} peer
 * @property {boolean} [reference]   true for rows that start no container (reference costs)
 * @property {(i: number) => {cmd: string, args: string[], env?: NodeJS.ProcessEnv}} argv   the i-th invocation
 *
 * @typedef {object} Monitors  the per-container supervisor process of an engine, for the memory benchmark
 * @property {string} name                                   process name (berth-monitor, conmon, ...)
 * @property {(n: number) => Promise<{ids: string[], pids: number[]}>} start   starts n detached sleepers
 * @property {(ids: string[]) => void} stop                  removes them
 * @property {() => {label: string, pids: number[]}[]} [daemons]   long-lived daemons serving all containers
 *
 * @typedef {object} Peer
 * @property {string} name
 * @property {() => string | null} missing     why it cannot run on this machine, or null
 * @property {(ctx: Context) => Promise<void>} setup   creates its state and imports the image; throws on failure
 * @property {() => Record<string, string>} versions
 * @property {() => Case[]} cases
 * @property {Monitors} [monitors]
 */

/** Polls the process table until one live process named `comm` has all of `needles` in its argv. */
export async function findProcess(comm, needles, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const p = processes().find((x) => x.comm === comm && x.state !== 'Z' && needles.every((n) => x.argv.includes(n)));
    if (p) return p.pid;
    if (Date.now() > end) throw new Error(`no ${comm} process with ${needles.join(' ')} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** First line of a command's output, for version strings. */
export function firstLine(s) {
  return (s ?? '').trim().split('\n')[0] ?? '';
}

/**
 * Starts n detached `sleep` containers with `startOne()` (which returns the container id) and finds each one's
 * monitor process by its command name and the flag that carries the id. For the monitor-memory comparison.
 */
export async function startSleepers(n, startOne, comm, idFlag) {
  const ids = [];
  const pids = [];
  for (let i = 0; i < n; i++) {
    const id = startOne();
    ids.push(id);
    pids.push(await findProcess(comm, [idFlag, id]));
  }
  return { ids, pids };
}
