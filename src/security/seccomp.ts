import { invalidArgument } from '../base/errors.js';

/** Seccomp in the OCI runtime-spec shape (config-linux.md, "Seccomp"): what runc reads. */
export interface LinuxSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  syscalls?: SeccompRule[];
}

export type SeccompAction =
  | 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_KILL_THREAD' | 'SCMP_ACT_TRAP' | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE' | 'SCMP_ACT_ALLOW' | 'SCMP_ACT_LOG' | 'SCMP_ACT_NOTIFY';

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: SeccompArg[];
}

/** A rule that applies only if the container holds all `includes.caps` and none of `excludes.caps`. */
export interface ConditionalRule extends SeccompRule {
  includes?: { caps?: string[] };
  excludes?: { caps?: string[] };
}

/**
 * A profile already narrowed to one architecture and kernel, whose capability conditions are still open: they are
 * resolved against the container's effective capabilities when its spec is generated (resolveSeccomp).
 * src/security/seccomp-default.json is berth's default profile in this shape (scripts/gen-seccomp.mjs).
 */
export interface SeccompTemplate extends Omit<LinuxSeccomp, 'syscalls'> {
  syscalls: ConditionalRule[];
}

/** Conditions in Docker's profile format. */
interface DockerFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

/**
 * Docker's seccomp profile format (`--security-opt seccomp=profile.json`): the OCI shape plus `archMap`,
 * `name` as an alternative to `names`, comments, and per-rule `includes`/`excludes` on capabilities, Go
 * architecture names and a minimum kernel. An OCI-shaped profile is a valid Docker profile.
 */
export interface DockerSeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] | null }[];
  flags?: string[];
  listenerPath?: string;
  syscalls?: (Omit<SeccompRule, 'names'> & {
    names?: string[];
    name?: string;
    comment?: string;
    includes?: DockerFilter;
    excludes?: DockerFilter;
  })[];
}

/** The machine a profile is narrowed for: a Go architecture name and, if known, the kernel release. */
export interface SeccompTarget {
  arch: string;
  /** e.g. "6.1.0-18-amd64"; when absent, minKernel conditions count as met. */
  kernel?: string;
}

/** Go architecture names -> the libseccomp architecture Docker's archMap is keyed by. */
const NATIVE_ARCH: Readonly<Record<string, string>> = {
  amd64: 'SCMP_ARCH_X86_64', '386': 'SCMP_ARCH_X86', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM',
  ppc64le: 'SCMP_ARCH_PPC64LE', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64', loong64: 'SCMP_ARCH_LOONGARCH64',
  mips64: 'SCMP_ARCH_MIPS64', mips64le: 'SCMP_ARCH_MIPSEL64',
};

function kernelAtLeast(release: string, min: string): boolean {
  const parse = (v: string) => (v.match(/^(\d+)\.(\d+)/) ?? []).slice(1).map(Number);
  const [a = 0, b = 0] = parse(release);
  const [x = 0, y = 0] = parse(min);
  return a > x || (a === x && b >= y);
}

/**
 * Narrows a Docker-format profile to one architecture and kernel as Docker does (moby profiles/seccomp), keeping
 * the capability conditions for resolveSeccomp. Contradictory profiles are invalid-argument errors.
 */
export function fromDockerProfile(profile: DockerSeccompProfile, target: SeccompTarget = { arch: 'amd64' }): SeccompTemplate {
  if (!profile || typeof profile.defaultAction !== 'string') throw invalidArgument('seccomp profile has no defaultAction');
  if (profile.architectures?.length && profile.archMap?.length) {
    throw invalidArgument("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  const out: Omit<SeccompTemplate, 'syscalls'> = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  const native = NATIVE_ARCH[target.arch];
  if (profile.archMap?.length) {
    const entry = profile.archMap.find((m) => m.architecture === native);
    if (entry) out.architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  } else if (profile.architectures?.length) {
    out.architectures = [...profile.architectures];
  }
  if (profile.flags?.length) out.flags = [...profile.flags];
  if (profile.listenerPath) out.listenerPath = profile.listenerPath;

  const rules: ConditionalRule[] = [];
  for (const call of profile.syscalls ?? []) {
    if (call.name && call.names?.length) throw invalidArgument("use either 'name' or 'names' in a seccomp rule, not both");
    const names = call.names?.length ? call.names : call.name ? [call.name] : [];
    if (names.length === 0) throw invalidArgument('seccomp rule has no syscall names');
    const inc = call.includes ?? {};
    const exc = call.excludes ?? {};
    if (exc.minKernel) throw invalidArgument('seccomp rule: excludes.minKernel is not supported');
    if (inc.arches?.length && !inc.arches.includes(target.arch)) continue;
    if (exc.arches?.includes(target.arch)) continue;
    if (inc.minKernel && target.kernel && !kernelAtLeast(target.kernel, inc.minKernel)) continue;
    const rule: ConditionalRule = { names: [...names], action: call.action };
    if (call.errnoRet !== undefined) rule.errnoRet = call.errnoRet;
    if (call.args?.length) rule.args = call.args.map((a) => ({ ...a }));
    if (inc.caps?.length) rule.includes = { caps: [...inc.caps] };
    if (exc.caps?.length) rule.excludes = { caps: [...exc.caps] };
    rules.push(rule);
  }
  return { ...out, syscalls: rules };
}

/** The OCI seccomp config for a container whose effective capability set is `caps`. */
export function resolveSeccomp(template: SeccompTemplate, caps: readonly string[]): LinuxSeccomp {
  const have = new Set(caps);
  // A new spine of objects; the rules' arrays are shared with the template, which nothing mutates (it is frozen).
  const { syscalls, ...head } = template;
  const kept: SeccompRule[] = [];
  for (const { includes, excludes, ...rule } of syscalls) {
    if (includes?.caps && !includes.caps.every((c) => have.has(c))) continue;
    if (excludes?.caps && excludes.caps.some((c) => have.has(c))) continue;
    kept.push(rule);
  }
  return { ...head, syscalls: kept };
}

