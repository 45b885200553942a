import type { SeccompTemplate } from './seccomp.js';
import profile from './seccomp-default.json' with { type: 'json' };

/**
 * berth's default seccomp profile: Docker's default narrowed to amd64 (x86_64, x86, x32) with its capability rules
 * still open, to be resolved per container by resolveSeccomp. Regenerate the JSON with scripts/gen-seccomp.mjs.
 */
export function defaultSeccompTemplate(): SeccompTemplate {
  return frozen;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

// Shared and frozen: every spec resolves its rules from it without copying (it is in the startup snapshot too).
const frozen = deepFreeze(profile as SeccompTemplate);
