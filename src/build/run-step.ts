import { mkdirSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnPiped } from '../sys/exec.js';
import { hostCapabilities } from '../security/capabilities.js';
import * as spec from '../runtime/spec.js';
import { hostLimits, hostMissingSeccompArches } from '../sys/host.js';
import { removeCgroups } from '../runtime/cgroups.js';
import { resolveInRoot } from '../storage/rootpath.js';
import { resolveUser } from '../security/users.js';
import type { Engine } from '../engine/engine.js';
import { invalidArgument } from '../base/errors.js';
import { trace } from '../base/trace.js';
import { acquireCacheMounts, isCacheMountRequest, type CacheMountRequest } from './cache-mounts.js';

/** What a `RUN` step executes, after the builder resolved its command, environment and mounts. */
export interface RunStep {
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  network: 'none' | 'host';
  /** `RUN --security=insecure` (with the security.insecure entitlement): every capability, no seccomp, as --privileged. */
  privileged?: boolean;
  /** In mount order; cache mounts are taken (per their sharing mode) when the step starts and held until it ends. */
  mounts: (spec.Mount | CacheMountRequest)[];
  onOutput(stream: 'stdout' | 'stderr', data: Buffer): void;
  /** Aborting kills the step's processes; runStep then returns their exit status as usual. */
  signal?: AbortSignal;
}

/** Runtime ids (and cgroup names, bundle dirs under <root>/tmp) of RUN steps: `berth-build-<pid>-<random>`. */
export const RUN_ID_PREFIX = 'berth-build-';
/** Where RUN bundles go (a tmpfs), when the host has it. */
export const BUNDLE_TMPFS = '/dev/shm';


/** What a RUN step did: its exit code, and the mount points the runtime had to create (to drop from the layer). */
export interface RunResult {
  code: number;
  /** Paths relative to the root ("proc", "run/secrets", "run/secrets/id") the runtime made only as mount points. */
  stubs: string[];
}

/**
 * The paths missing on the way to each mount destination: what the runtime creates in the root to mount there
 * (BuildKit's mount stubs), so they can be dropped from the layer afterwards (when still empty).
 */
function mountStubs(rootfs: string, destinations: readonly string[]): string[] {
  const out = new Set<string>();
  for (const d of destinations) {
    let p = posix.normalize('/' + d);
    while (p !== '/' && !existsSync(resolveInRoot(rootfs, p, false))) {
      out.add(p.slice(1));
      p = posix.dirname(p);
    }
  }
  return [...out];
}

/**
 * Runs a build step's command in the mounted step root with the runtime in the foreground (`runc run`), with
 * Docker's default confinement (capabilities, seccomp, masked paths) and no network unless asked. Returns the
 * command's exit code. The runtime state and cgroup are removed afterwards, also on failure. Cache mounts are held
 * from before the command starts until the runtime is gone, released also on failure; an abort while waiting for a
 * `sharing=locked` cache returns 137 like an abort of the command.
 */
export async function runStep(engine: Engine, rootfs: string, step: RunStep): Promise<RunResult> {
  if (step.signal?.aborted) return { code: 137, stubs: [] };
  for (const m of step.mounts) if (posix.normalize(isCacheMountRequest(m) ? m.target : m.destination) === '/') throw invalidArgument('invalid mount target "/"');
  const caches = step.mounts.filter(isCacheMountRequest);
  const held = caches.length ? await acquireCacheMounts(caches, step.signal) : { paths: [], release: () => undefined };
  if (!held) return { code: 137, stubs: [] };
  try {
    let next = 0;
    const mounts = step.mounts.map((m) => (isCacheMountRequest(m) ? spec.bindMount(held.paths[next++]!, m.target, { readonly: m.mount.readonly }) : m));
    return await runInRuntime(engine, rootfs, step, mounts);
  } finally {
    held.release();
  }
}

async function runInRuntime(engine: Engine, rootfs: string, step: RunStep, mounts: spec.Mount[]): Promise<RunResult> {
  const id = `${RUN_ID_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`;
  // The bundle's config.json holds the environment, secrets given as env= included: kept on a tmpfs, never on disk.
  const bundle = join(existsSync(BUNDLE_TMPFS) ? BUNDLE_TMPFS : engine.paths.tmp, id);
  const cgroup = `/${id}`;
  if (step.signal?.aborted) return { code: 137, stubs: [] };
  mkdirSync(bundle, { recursive: true });
  // Docker creates the working directory of RUN if it is missing.
  mkdirSync(resolveInRoot(rootfs, step.cwd), { recursive: true });
  const etc = join(bundle, 'etc');
  mkdirSync(etc);
  writeFileSync(join(etc, 'hosts'), '127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  writeFileSync(join(etc, 'hostname'), 'buildkitsandbox\n');
  let resolv = '';
  try {
    resolv = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // none on the host
  }
  writeFileSync(join(etc, 'resolv.conf'), resolv);
  const user = resolveUser(rootfs, step.user);
  const env = step.env.some((e) => e.startsWith('PATH=')) ? step.env : ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...step.env];
  const s = spec.buildSpec(
    spec.withArgs(step.args),
    spec.withEnv(env),
    spec.withCwd(step.cwd),
    spec.withUser(user),
    spec.withRootfs(rootfs, false),
    spec.withRlimits(hostLimits()),
    spec.withoutSeccompArches(hostMissingSeccompArches()),
    spec.withCgroupsPath(cgroup),
    spec.withHostname('buildkitsandbox'),
    ...(step.network === 'host' ? [spec.withoutNamespace('network')] : []),
    ...(step.privileged ? [spec.withHostCapabilities(hostCapabilities()), spec.withPrivileged()] : []),
    spec.withMounts([
      spec.bindMount(join(etc, 'hosts'), '/etc/hosts', { readonly: true }),
      spec.bindMount(join(etc, 'hostname'), '/etc/hostname', { readonly: true }),
      spec.bindMount(join(etc, 'resolv.conf'), '/etc/resolv.conf', { readonly: true }),
      ...mounts,
    ]),
  );
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(s));
  const stubs = mountStubs(rootfs, s.mounts.map((m) => m.destination));
  try {
    const child = spawnPiped(engine.runtime.bin, ['--root', engine.runtime.root, 'run', '--bundle', bundle, id]);
    trace('run: spawned');
    child.stdout.on('data', (d: Buffer) => step.onOutput('stdout', d));
    child.stderr.on('data', (d: Buffer) => step.onOutput('stderr', d));
    // The container may not exist yet when the abort comes: keep killing until runc returns.
    let timer: NodeJS.Timeout | undefined;
    const killOnce = () => void engine.runtime.kill(id, 'KILL', true).catch(() => undefined);
    const kill = () => {
      killOnce();
      timer ??= setInterval(killOnce, 200);
    };
    step.signal?.addEventListener('abort', kill);
    if (step.signal?.aborted) kill();
    try {
      const code = await child.exited;
      trace('run: runc exited');
      return { code, stubs };
    } finally {
      step.signal?.removeEventListener('abort', kill);
      if (timer) clearInterval(timer);
    }
  } finally {
    if (existsSync(join(engine.runtime.root, id))) await engine.runtime.delete(id);
    removeCgroups(cgroup);
    rmSync(bundle, { recursive: true, force: true });
  }
}
