import { invalidArgument } from '../base/errors.js';
import type { Rlimit } from './spec.js';

/**
 * What the engine read about the host's resource limits (/proc/self/limits): spec options take it as a parameter
 * and never read the host themselves.
 */
export interface HostLimits {
  /** The hard RLIMIT_NOFILE of the process that starts the runtime; Infinity if unlimited. */
  nofile?: number;
}

/** Docker's nofile for containers; more than that breaks programs that size tables by it. */
export const DEFAULT_NOFILE = 1048576;

/**
 * The rlimits berth gives a container: RLIMIT_NOFILE soft = hard = min(1048576, host hard), since without
 * CAP_SYS_RESOURCE a hard limit cannot be raised above the runtime's own. Empty if the host's is unknown.
 */
export function defaultRlimits(host: HostLimits): Rlimit[] {
  if (host.nofile === undefined || !(host.nofile > 0)) return [];
  const n = Math.min(DEFAULT_NOFILE, host.nofile);
  return [{ type: 'RLIMIT_NOFILE', soft: n, hard: n }];
}

/** A `--ulimit name=soft[:hard]` request, already split. */
export interface Ulimit {
  name: string;
  soft: number;
  hard: number;
}

const ULIMIT_NAMES = new Set([
  'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio',
  'rttime', 'sigpending', 'stack',
]);

/** The OCI rlimit for a --ulimit, validated as Docker validates it. */
export function ulimitToRlimit(u: Ulimit): Rlimit {
  if (!ULIMIT_NAMES.has(u.name)) throw invalidArgument(`invalid ulimit type: ${u.name}`);
  for (const v of [u.soft, u.hard]) {
    if (!Number.isSafeInteger(v) || v < 0) throw invalidArgument(`invalid ulimit argument: ${u.name}=${u.soft}:${u.hard}`);
  }
  if (u.soft > u.hard) throw invalidArgument(`ulimit soft limit must be less than or equal to hard limit: ${u.soft} > ${u.hard}`);
  return { type: `RLIMIT_${u.name.toUpperCase()}`, soft: u.soft, hard: u.hard };
}
