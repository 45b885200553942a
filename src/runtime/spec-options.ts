import { posix } from 'node:path';
import { invalidArgument } from '../base/errors.js';
import { normalizeCapabilities } from '../security/capabilities.js';
import { fromDockerProfile, type DockerSeccompProfile } from '../security/seccomp.js';
import { defaultRlimits, ulimitToRlimit, type HostLimits, type Ulimit } from './rlimits.js';
import { applyCapabilities, intentOf, refreshSeccomp } from './spec-intent.js';
import type { Device, Mount, NamespaceType, Rlimit, RuntimeSpec, SpecOption } from './spec.js';

/*
 * Spec options: each a small pure function of its arguments that returns a SpecOption. Bad arguments throw
 * invalid-argument errors worded as Docker words them, when the option is made or applied.
 */

// ---- process ----------------------------------------------------------------------------------------------

/**
 * The command. With withInit the init and "--" stay in front, whichever option comes first.
 * An empty command is Docker's "No command specified".
 */
export function withArgs(args: readonly string[]): SpecOption {
  if (args.length === 0) throw invalidArgument('No command specified');
  return (spec) => {
    const init = intentOf(spec).init;
    spec.process.args = init ? [init, '--', ...args] : [...args];
  };
}

/** Runs the process under an init (e.g. tini bind-mounted at /dev/init) that reaps zombies and forwards signals. */
export function withInit(initPath: string): SpecOption {
  return (spec) => {
    const intent = intentOf(spec);
    const args = intent.init && spec.process.args[0] === intent.init ? spec.process.args.slice(2) : spec.process.args;
    intent.init = initPath;
    spec.process.args = [initPath, '--', ...args];
  };
}

/** Sets variables: an entry replaces one with the same name, in place; new names are appended. */
export function withEnv(env: readonly string[]): SpecOption {
  const key = (e: string) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);
  return (spec) => {
    const out = [...spec.process.env];
    for (const e of env) {
      const at = out.findIndex((x) => key(x) === key(e));
      if (at >= 0) out[at] = e;
      else out.push(e);
    }
    spec.process.env = out;
  };
}

export function withCwd(dir: string): SpecOption {
  if (!posix.isAbsolute(dir)) throw invalidArgument(`the working directory '${dir}' is invalid, it needs to be an absolute path`);
  return (spec) => {
    spec.process.cwd = dir;
  };
}

export function withTerminal(on: boolean): SpecOption {
  return (spec) => {
    spec.process.terminal = on;
  };
}

export interface UserIds {
  uid: number;
  gid: number;
  additionalGids?: readonly number[];
  umask?: number;
}

export function withUser(user: UserIds): SpecOption {
  for (const id of [user.uid, user.gid, ...(user.additionalGids ?? [])]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw invalidArgument(`invalid user or group id: ${id}`);
  }
  return (spec) => {
    spec.process.user = { uid: user.uid, gid: user.gid };
    const groups = [...new Set(user.additionalGids ?? [])];
    if (groups.length) spec.process.user.additionalGids = groups;
    if (user.umask !== undefined) spec.process.user.umask = user.umask;
  };
}

/** RLIMIT_NOFILE from the host's limits (see defaultRlimits); other rlimits already set are kept. */
export function withRlimits(host: HostLimits): SpecOption {
  return (spec) => setRlimits(spec, defaultRlimits(host));
}

/** `--ulimit`: each replaces the rlimit of its type. */
export function withUlimits(ulimits: readonly Ulimit[]): SpecOption {
  const rlimits = ulimits.map(ulimitToRlimit);
  return (spec) => setRlimits(spec, rlimits);
}

function setRlimits(spec: RuntimeSpec, rlimits: Rlimit[]): void {
  const types = new Set(rlimits.map((r) => r.type));
  spec.process.rlimits = [...(spec.process.rlimits ?? []).filter((r) => !types.has(r.type)), ...rlimits];
}

export function withNoNewPrivileges(on = true): SpecOption {
  return (spec) => {
    spec.process.noNewPrivileges = on;
  };
}

export function withOomScoreAdj(score: number): SpecOption {
  if (!Number.isInteger(score) || score < -1000 || score > 1000) {
    throw invalidArgument(`Invalid value ${score}, range for oom score adj is [-1000, 1000]`);
  }
  return (spec) => {
    spec.process.oomScoreAdj = score;
  };
}

// ---- identity and root ------------------------------------------------------------------------------------

/** The container's hostname (needs the uts namespace; withoutNamespace('uts') removes it). */
export function withHostname(name: string): SpecOption {
  if (!/^[^\s/]{1,64}$/.test(name)) throw invalidArgument(`invalid hostname format: ${name}`);
  return (spec) => {
    spec.hostname = name;
  };
}

/** The root filesystem, relative to the bundle or absolute; `readonly` is --read-only. */
export function withRootfs(path: string, readonly = false): SpecOption {
  return (spec) => {
    spec.root = { path, readonly };
  };
}

export function withAnnotations(annotations: Readonly<Record<string, string>>): SpecOption {
  return (spec) => {
    spec.annotations = { ...spec.annotations, ...annotations };
  };
}

// ---- namespaces -------------------------------------------------------------------------------------------

const NAMESPACES: readonly NamespaceType[] = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];

function checkNamespace(type: string): NamespaceType {
  if (!NAMESPACES.includes(type as NamespaceType)) throw invalidArgument(`invalid namespace type: ${type}`);
  return type as NamespaceType;
}

/**
 * A new namespace of this type or, with `path` (e.g. /proc/123/ns/net, a bind-mounted netns), joining one.
 * `--network none` is a new network namespace with nothing in it, i.e. this option without a path.
 */
export function withNamespace(type: NamespaceType, path?: string): SpecOption {
  checkNamespace(type);
  return (spec) => {
    const entry = path === undefined ? { type } : { type, path };
    const list = spec.linux.namespaces;
    const at = list.findIndex((n) => n.type === type);
    if (at >= 0) list[at] = entry;
    else list.push(entry);
  };
}

/** Shares the host's namespace of this type: `--network host` is withoutNamespace('network'). */
export function withoutNamespace(type: NamespaceType): SpecOption {
  checkNamespace(type);
  return (spec) => {
    spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== type);
    if (type === 'uts') delete spec.hostname; // runc refuses a hostname without a private uts namespace
  };
}

// ---- mounts -----------------------------------------------------------------------------------------------

function cleanDestination(d: string): string {
  if (!posix.isAbsolute(d)) throw invalidArgument(`invalid mount path: '${d}' mount path must be absolute`);
  const n = posix.normalize(d);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

const depth = (d: string) => (d === '/' ? 0 : d.split('/').length - 1);

/**
 * Adds mounts. A mount on a destination that already has one replaces it (so a user /dev/shm replaces
 * Docker's default), and a mount on /dev drops the default mounts below /dev, as Docker does. All mounts are
 * then ordered parents first (stable by path depth), so /data/logs is mounted after /data.
 */
export function withMounts(mounts: readonly Mount[]): SpecOption {
  const adds = mounts.map((m) => ({ ...m, destination: cleanDestination(m.destination), options: [...(m.options ?? [])] }));
  const seen = new Set<string>();
  for (const m of adds) {
    if (seen.has(m.destination)) throw invalidArgument(`Duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
  }
  return (spec) => {
    const kept = spec.mounts.filter((m) => {
      const d = posix.normalize(m.destination);
      return !seen.has(d) && !(seen.has('/dev') && d.startsWith('/dev/'));
    });
    spec.mounts = [...kept, ...adds].map((m, i) => ({ m, i }))
      .sort((a, b) => depth(posix.normalize(a.m.destination)) - depth(posix.normalize(b.m.destination)) || a.i - b.i)
      .map(({ m }) => m);
  };
}

/** A bind mount of a host path or a volume's directory (`-v src:dst[:ro]`, `--mount type=bind`). */
export function bindMount(source: string, destination: string, opts: { readonly?: boolean; propagation?: string } = {}): Mount {
  const options = ['rbind', opts.propagation ?? 'rprivate'];
  if (opts.readonly) options.push('ro');
  return { destination, type: 'bind', source, options };
}

/**
 * A `--tmpfs dst[:opts]` mount: Docker's noexec,nosuid,nodev unless the options say exec/suid/dev,
 * then the user's options (size=64m, mode=1777, ...).
 */
export function tmpfsMount(destination: string, options: readonly string[] = []): Mount {
  const defaults = [['noexec', 'exec'], ['nosuid', 'suid'], ['nodev', 'dev']]
    .filter(([def, opposite]) => !options.includes(def!) && !options.includes(opposite!))
    .map(([def]) => def!);
  return { destination, type: 'tmpfs', source: 'tmpfs', options: [...defaults, ...options] };
}

/** Replaces the masked paths (bind-mounted over with /dev/null or an empty directory). */
export function withMaskedPaths(paths: readonly string[]): SpecOption {
  return (spec) => {
    spec.linux.maskedPaths = [...paths];
  };
}

/** Replaces the paths remounted read-only. */
export function withReadonlyPaths(paths: readonly string[]): SpecOption {
  return (spec) => {
    spec.linux.readonlyPaths = [...paths];
  };
}

// ---- devices ----------------------------------------------------------------------------------------------

/** `--device`: a node created in the container's /dev plus a cgroup rule allowing it (default access rwm). */
export function withDevices(devices: readonly (Device & { permissions?: string })[]): SpecOption {
  for (const d of devices) {
    if (!/^[rwm]+$/.test(d.permissions ?? 'rwm')) throw invalidArgument(`invalid device mode: ${d.permissions}`);
  }
  return (spec) => {
    for (const { permissions, ...dev } of devices) {
      spec.linux.devices = [...(spec.linux.devices ?? []).filter((x) => x.path !== dev.path), dev];
      if (dev.type === 'c' || dev.type === 'b') {
        spec.linux.resources.devices = [
          ...(spec.linux.resources.devices ?? []),
          { allow: true, type: dev.type, major: dev.major, minor: dev.minor, access: permissions ?? 'rwm' },
        ];
      }
    }
  };
}

// ---- resources (cgroups) ----------------------------------------------------------------------------------

const MIN_MEMORY = 6 * 1024 * 1024;

/**
 * `--memory` / `--memory-swap`. `swapBytes` is Docker's: memory plus swap, -1 for unlimited swap; when only the
 * memory limit is given, swap is twice it. A limit of 0 means no limit.
 */
export function withMemory(limitBytes: number, swapBytes?: number): SpecOption {
  const swapGiven = swapBytes !== undefined && swapBytes !== 0;
  if (limitBytes === 0 && swapGiven && swapBytes > 0) {
    throw invalidArgument('You should always set the Memory limit when using Memoryswap limit, see usage');
  }
  if (limitBytes !== 0 && (!Number.isSafeInteger(limitBytes) || limitBytes < MIN_MEMORY)) {
    throw invalidArgument('Minimum memory limit allowed is 6MB');
  }
  if (swapGiven && swapBytes !== -1 && (!Number.isSafeInteger(swapBytes) || swapBytes < limitBytes)) {
    throw invalidArgument('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  return (spec) => {
    if (limitBytes === 0) return;
    const swap = swapGiven ? swapBytes : limitBytes * 2;
    spec.linux.resources.memory = { ...spec.linux.resources.memory, limit: limitBytes, swap };
  };
}

const CPU_PERIOD = 100000;

/** `--cpus`: a CFS quota of cpus x 100ms per 100ms period. `hostCpus` bounds it as Docker does, if given. */
export function withCpus(cpus: number, hostCpus?: number): SpecOption {
  if (!Number.isFinite(cpus) || cpus < 0.01 || (hostCpus !== undefined && cpus > hostCpus)) {
    throw invalidArgument(
      hostCpus === undefined
        ? `invalid value for --cpus: ${cpus}: must be at least 0.01`
        : `range of CPUs is from 0.01 to ${hostCpus}.00, as there are only ${hostCpus} CPUs available`,
    );
  }
  return (spec) => {
    spec.linux.resources.cpu = { ...spec.linux.resources.cpu, period: CPU_PERIOD, quota: Math.round(cpus * CPU_PERIOD) };
  };
}

/** `--cpu-shares`: relative weight; 0 means the default (unset). */
export function withCpuShares(shares: number): SpecOption {
  if (!Number.isSafeInteger(shares) || shares < 0) throw invalidArgument(`invalid value for --cpu-shares: ${shares}`);
  return (spec) => {
    const { shares: _old, ...cpu } = spec.linux.resources.cpu ?? {};
    spec.linux.resources.cpu = shares === 0 ? cpu : { ...cpu, shares };
  };
}

/** `--pids-limit`: 0 means unset, a negative number unlimited. */
export function withPidsLimit(n: number): SpecOption {
  if (!Number.isSafeInteger(n)) throw invalidArgument(`invalid value for --pids-limit: ${n}`);
  return (spec) => {
    if (n === 0) delete spec.linux.resources.pids;
    else spec.linux.resources.pids = { limit: n < 0 ? -1 : n };
  };
}

/** Where the runtime creates the container's cgroup, e.g. "/berth-<id>" below each v1 hierarchy. */
export function withCgroupsPath(path: string): SpecOption {
  if (!path) throw invalidArgument('empty cgroups path');
  return (spec) => {
    spec.linux.cgroupsPath = path;
  };
}

/** Namespaced kernel parameters (`--sysctl`), merged over any already set. */
export function withSysctls(sysctls: Readonly<Record<string, string>>): SpecOption {
  return (spec) => {
    spec.linux.sysctl = { ...spec.linux.sysctl, ...sysctls };
  };
}

// ---- security ---------------------------------------------------------------------------------------------

/** `--cap-add` (names with or without CAP_, any case, or ALL). Docker applies drops first, then adds. */
export function withCapAdd(caps: readonly string[]): SpecOption {
  const names = normalizeCapabilities(caps);
  return (spec) => {
    intentOf(spec).capAdd.push(...names);
    applyCapabilities(spec);
  };
}

/** `--cap-drop` (names with or without CAP_, any case, or ALL). */
export function withCapDrop(caps: readonly string[]): SpecOption {
  const names = normalizeCapabilities(caps);
  return (spec) => {
    intentOf(spec).capDrop.push(...names);
    applyCapabilities(spec);
  };
}

/**
 * The capabilities this host can grant (its bounding set, see capabilitiesFromMask): what ALL and privileged
 * mean. Without it, every capability Linux defines is assumed grantable.
 */
export function withHostCapabilities(available: readonly string[]): SpecOption {
  const caps = normalizeCapabilities(available).filter((c) => c !== 'ALL');
  return (spec) => {
    intentOf(spec).available = caps;
    applyCapabilities(spec);
  };
}

/**
 * `--privileged`: every available capability (regardless of --cap-add/--cap-drop), no seccomp, no masked or
 * read-only paths, all devices allowed by the device cgroup, /sys and the cgroup tree writable. Host device nodes
 * are not added here: pass them with withDevices.
 */
export function withPrivileged(): SpecOption {
  return (spec) => {
    intentOf(spec).privileged = true;
    applyCapabilities(spec);
    spec.linux.maskedPaths = [];
    spec.linux.readonlyPaths = [];
    spec.linux.resources.devices = [{ allow: true, access: 'rwm' }];
    for (const m of spec.mounts) {
      if (m.destination === '/sys' || m.type === 'cgroup') m.options = (m.options ?? []).filter((o) => o !== 'ro');
    }
  };
}

/**
 * Leaves architectures out of the default seccomp profile's filter: for ABIs the host kernel cannot execute
 * (hostMissingSeccompArches), whose rules would only cost the runtime time to compile. A system call of a left-out
 * ABI then meets the filter's bad-architecture action (the calling thread is killed with SIGSYS) instead of the
 * ENOSYS the kernel would give; docs/compat.md lists this. Profiles given with --security-opt are kept as written.
 */
export function withoutSeccompArches(arches: readonly string[]): SpecOption {
  return (spec) => {
    intentOf(spec).seccompSkipArches = [...arches];
    refreshSeccomp(spec);
  };
}

/**
 * A seccomp profile in Docker's format (as `--security-opt seccomp=file.json` takes; OCI-shaped ones are too),
 * narrowed for amd64, or 'unconfined'. Ignored for privileged containers, as in Docker.
 */
export function withSeccomp(profile: DockerSeccompProfile | 'unconfined'): SpecOption {
  const seccomp = profile === 'unconfined' ? 'unconfined' : fromDockerProfile(profile, { arch: 'amd64' });
  return (spec) => {
    intentOf(spec).seccomp = seccomp;
    refreshSeccomp(spec);
  };
}
