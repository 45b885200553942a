import { invalidArgument } from '../base/errors.js';
import { hostCapabilityMask } from '../sys/host.js';

/** Linux capabilities by number (include/uapi/linux/capability.h), as the OCI spec names them. */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Docker's default set for unprivileged containers (moby oci/caps/defaults.go), in Docker's order. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const known = new Set(ALL_CAPABILITIES);

/**
 * "net_admin", "NET_ADMIN" and "cap_net_admin" all become "CAP_NET_ADMIN"; "all" becomes "ALL".
 * An unknown name is an invalid-argument error worded as Docker words it.
 */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const cap = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!known.has(cap)) throw invalidArgument(`unknown capability: "${cap}"`);
  return cap;
}

export function normalizeCapabilities(names: readonly string[]): string[] {
  return names.map(normalizeCapability);
}

/**
 * Docker's --cap-add/--cap-drop semantics (moby TweakCapabilities): adding ALL grants every available capability
 * except the dropped ones; dropping ALL keeps only the added ones; otherwise drops apply to `base`, then adds.
 * `available` is what the host can grant (its bounding set); asking for anything else is an error, as in Docker.
 */
export function tweakCapabilities(
  base: readonly string[],
  add: readonly string[],
  drop: readonly string[],
  available: readonly string[] = ALL_CAPABILITIES,
): string[] {
  const adds = normalizeCapabilities(add);
  const drops = normalizeCapabilities(drop);
  const avail = new Set(available);
  for (const c of [...adds, ...drops]) {
    if (c !== 'ALL' && !avail.has(c)) {
      throw invalidArgument(`capability not supported by your kernel or not available in the current environment: "${c}"`);
    }
  }
  let caps: string[];
  if (adds.includes('ALL')) caps = available.filter((c) => !drops.includes(c));
  else if (drops.includes('ALL')) caps = adds;
  else caps = [...base.filter((c) => !drops.includes(c)), ...adds];
  return [...new Set(caps)];
}

/**
 * The capabilities in a /proc/<pid>/status mask such as CapBnd ("000001fffeffffff"), in number order.
 * Bits beyond the names berth knows are ignored.
 */
export function capabilitiesFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** The capabilities berth itself holds: --privileged can grant no more (root here lacks CAP_SYS_RESOURCE). */
export function hostCapabilities(): string[] {
  const mask = hostCapabilityMask();
  return mask ? capabilitiesFromMask(mask) : [];
}
