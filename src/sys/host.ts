import { readFileSync } from 'node:fs';
import type { HostLimits } from '../runtime/rlimits.js';
import { native } from './native.js';

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

/**
 * Seccomp architectures whose system calls this kernel cannot execute, so a filter need not cover them. Only x32
 * is probed: most kernels build it out or disable it (Debian boots with syscall.x32=n), and it is the costly one
 * for runc to compile (its rules are duplicated with the x32 bit), about 15 ms of every container start.
 */
export function hostMissingSeccompArches(): string[] {
  // Probed once per process: a build runs many steps, each with its own spec.
  missingArches ??= process.arch === 'x64' && !native().x32Abi() ? ['SCMP_ARCH_X32'] : [];
  return missingArches;
}

let missingArches: string[] | undefined;
