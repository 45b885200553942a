import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `fn` (every 25 ms) until it returns something other than undefined or false, and resolves with that; rejects
 * with "timed out waiting for <what>" after `timeoutMs`.
 */
export async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
