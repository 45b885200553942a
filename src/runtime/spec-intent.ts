import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, tweakCapabilities } from '../security/capabilities.js';
import { resolveSeccomp, type SeccompTemplate } from '../security/seccomp.js';
import { defaultSeccompTemplate } from '../security/seccomp-default.js';
import type { RuntimeSpec } from './spec.js';

/**
 * What options asked for that has to be resolved together rather than written straight into the spec: Docker
 * applies --cap-drop before --cap-add whatever their order, privileged overrides both, and the seccomp profile
 * depends on the final capabilities. It is kept beside the spec (not in it), so config.json stays plain OCI and
 * options stay order-independent. A copy of a spec (structuredClone, JSON) does not carry it.
 */
export interface SpecIntent {
  /** Capabilities before --cap-add/--cap-drop. */
  capBase: string[];
  capAdd: string[];
  capDrop: string[];
  /** What the host can grant (its bounding set): the meaning of "ALL" and of privileged. */
  available: readonly string[];
  privileged: boolean;
  /** undefined: leave linux.seccomp as it is. */
  seccomp: SeccompTemplate | 'unconfined' | undefined;
  /** Seccomp architectures the kernel cannot execute, left out of the default profile's filter; see withoutSeccompArches. */
  seccompSkipArches: readonly string[];
  /** Path of an init (tini) that runs the process; see withInit. */
  init: string | undefined;
}

const intents = new WeakMap<RuntimeSpec, SpecIntent>();

export function initIntent(spec: RuntimeSpec, init: Partial<SpecIntent>): SpecIntent {
  const intent: SpecIntent = {
    capBase: [...(spec.process.capabilities?.bounding ?? DEFAULT_CAPABILITIES)],
    capAdd: [],
    capDrop: [],
    available: ALL_CAPABILITIES,
    privileged: false,
    seccomp: undefined,
    seccompSkipArches: [],
    init: undefined,
    ...init,
  };
  intents.set(spec, intent);
  return intent;
}

/** The spec's intent; a spec that baseSpec did not make gets one from what it holds now. */
export function intentOf(spec: RuntimeSpec): SpecIntent {
  return intents.get(spec) ?? initIntent(spec, {});
}

/** Rewrites the capability sets from the intent (drop, then add; or everything if privileged), then seccomp. */
export function applyCapabilities(spec: RuntimeSpec): void {
  const i = intentOf(spec);
  const caps = i.privileged ? [...i.available] : tweakCapabilities(i.capBase, i.capAdd, i.capDrop, i.available);
  // Not inheritable or ambient: those would survive execve of non-root programs (CVE-2022-24769).
  spec.process.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps] };
  refreshSeccomp(spec);
}

/** Re-resolves linux.seccomp against the current effective capabilities. */
export function refreshSeccomp(spec: RuntimeSpec): void {
  const i = intentOf(spec);
  if (i.privileged || i.seccomp === 'unconfined') delete spec.linux.seccomp;
  else if (i.seccomp) {
    const sc = resolveSeccomp(i.seccomp, spec.process.capabilities?.effective ?? []);
    // Only berth's default profile: a profile the user gave (--security-opt seccomp=FILE) is used as written.
    if (i.seccompSkipArches.length && sc.architectures && i.seccomp === defaultSeccompTemplate()) {
      sc.architectures = sc.architectures.filter((a) => !i.seccompSkipArches.includes(a));
    }
    spec.linux.seccomp = sc;
  }
}
