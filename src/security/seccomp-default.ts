import type { SeccompTemplate } from './seccomp.js';
import profile from './seccomp-default.json' with { type: 'json' };

/**
 * berth's default seccomp profile: Docker's default narrowed to amd64 (x86_64, x86, x32) with its capability rules
 * still open, to be resolved per container by resolveSeccomp. Regenerate the JSON with scripts/gen-seccomp.mjs.
 */
export function defaultSeccompTemplate(): SeccompTemplate {
  return structuredClone(profile as SeccompTemplate);
}
