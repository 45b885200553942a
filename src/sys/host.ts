import { readFileSync } from 'node:fs';
import type { HostLimits } from '../runtime/rlimits.js';

/** What berth reads about its host, for spec options that take it as a parameter. */

/** The hard RLIMIT_NOFILE of this process (the runtime inherits it and cannot raise it without CAP_SYS_RESOURCE). */
export function hostLimits(): HostLimits {
  const m = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return { nofile: !m || m[1] === 'unlimited' ? Infinity : Number(m[1]) };
}

/** The capabilities this process holds in its bounding set: --privileged can grant no more. */
export function hostCapabilityMask(): string | undefined {
  return /CapBnd:\s*(\w+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
}
