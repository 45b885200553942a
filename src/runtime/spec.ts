import { DEFAULT_CAPABILITIES } from '../security/capabilities.js';
import type { LinuxSeccomp } from '../security/seccomp.js';
import { defaultSeccompTemplate } from '../security/seccomp-default.js';
import { initIntent, refreshSeccomp } from './spec-intent.js';
import { defaultRlimits, type HostLimits } from './rlimits.js';

export * from './spec-options.js';
export type { HostLimits, Ulimit } from './rlimits.js';

/**
 * The OCI runtime configuration (config.json, runtime-spec 1.0.2) as berth writes it: the fields berth sets are
 * typed, the rest of the spec is reachable through the index signatures. Options mutate it in place; see
 * spec-options.ts. validateSpec (schema.ts) checks a finished one against the runtime-spec JSON schema.
 */
export interface RuntimeSpec {
  ociVersion: string;
  process: Process;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts: Mount[];
  annotations?: Record<string, string>;
  linux: Linux;
  [extra: string]: unknown;
}

export interface Process {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: { uid: number; gid: number; umask?: number; additionalGids?: number[]; username?: string };
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: Capabilities;
  rlimits?: Rlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
  [extra: string]: unknown;
}

export interface Capabilities {
  bounding?: string[];
  effective?: string[];
  permitted?: string[];
  inheritable?: string[];
  ambient?: string[];
}

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export type MountSpec = Mount;

export type NamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';

export interface Namespace {
  type: NamespaceType;
  path?: string;
}

/** A device cgroup rule; an absent major/minor/type is a wildcard. */
export interface DeviceRule {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
}

/** A device node the runtime creates in the container's /dev. */
export interface Device {
  path: string;
  type: 'c' | 'b' | 'u' | 'p';
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface Resources {
  devices?: DeviceRule[];
  memory?: { limit?: number; reservation?: number; swap?: number; swappiness?: number; disableOOMKiller?: boolean };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
  [extra: string]: unknown;
}

export interface Linux {
  namespaces: Namespace[];
  uidMappings?: { containerID: number; hostID: number; size: number }[];
  gidMappings?: { containerID: number; hostID: number; size: number }[];
  devices?: Device[];
  cgroupsPath?: string;
  resources: Resources;
  rootfsPropagation?: string;
  seccomp?: LinuxSeccomp;
  sysctl?: Record<string, string>;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  [extra: string]: unknown;
}

/** One small change to a spec. Options compose with buildSpec; most may be applied in any order. */
export type SpecOption = (spec: RuntimeSpec) => void;

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default mounts (moby oci/defaults.go), in Docker's order. */
export function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts', type: 'devpts', source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  ];
}

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Docker's device cgroup: deny everything, allow mknod of any node, and use of the few safe character devices. */
export function defaultDeviceRules(): DeviceRule[] {
  const rwm = (major: number, minor?: number): DeviceRule =>
    minor === undefined ? { allow: true, type: 'c', major, access: 'rwm' } : { allow: true, type: 'c', major, minor, access: 'rwm' };
  return [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', access: 'm' },
    { allow: true, type: 'b', access: 'm' },
    rwm(1, 3), // /dev/null
    rwm(1, 5), // /dev/zero
    rwm(1, 7), // /dev/full
    rwm(5, 0), // /dev/tty
    rwm(5, 1), // /dev/console
    rwm(5, 2), // /dev/ptmx
    rwm(1, 8), // /dev/random
    rwm(1, 9), // /dev/urandom
    rwm(136), // /dev/pts/*
    rwm(10, 200), // /dev/net/tun
  ];
}

/**
 * Docker's safe default spec. Without `host`, no rlimits are set and the container inherits the runtime's; with it,
 * RLIMIT_NOFILE is min(1048576, the host's hard limit) (see withRlimits).
 */
export function baseSpec(host?: HostLimits): RuntimeSpec {
  const caps = [...DEFAULT_CAPABILITIES];
  const spec: RuntimeSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [],
      env: [`PATH=${DEFAULT_PATH}`],
      cwd: '/',
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
    },
    root: { path: 'rootfs', readonly: false },
    hostname: 'localhost',
    mounts: defaultMounts(),
    linux: {
      namespaces: (['pid', 'ipc', 'uts', 'mount', 'network', 'cgroup'] as const).map((type) => ({ type })),
      resources: { devices: defaultDeviceRules() },
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  if (host) spec.process.rlimits = defaultRlimits(host);
  initIntent(spec, { capBase: caps, seccomp: defaultSeccompTemplate() });
  refreshSeccomp(spec);
  return spec;
}

/**
 * baseSpec with the options applied in order, then finished: the seccomp profile is resolved last, against the
 * final effective capabilities, so it allows what --cap-add grants (e.g. mount with CAP_SYS_ADMIN).
 */
export function buildSpec(...options: SpecOption[]): RuntimeSpec {
  const spec = baseSpec();
  for (const option of options) option(spec);
  refreshSeccomp(spec);
  return spec;
}
