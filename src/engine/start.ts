import { existsSync, readFileSync, rmSync, statSync, accessSync, constants, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import type { Socket } from 'node:net';
import { hostname } from 'node:os';
import { atomicWrite, atomicWriteJson, withLock } from '../base/fsutil.js';
import { BerthError, conflict, notFound, wrap } from '../base/errors.js';
import { waitMonitorGone, removedByMonitor } from './monitor-state.js';
import { mountOverlay, unmount, isMountPoint } from '../sys/mount.js';
import { cpMounts, resolveContainerPath, type CpMount } from './filesystem.js';
import { resolveUser } from '../security/users.js';
import * as spec from '../runtime/spec.js';
import { hostLimits, hostMissingSeccompArches } from '../sys/host.js';
import { containerCgroupPath, oomFile, removeCgroups } from '../runtime/cgroups.js';
import { startMonitor } from '../runtime/monitor.js';
import { connectAttach } from '../runtime/attach.js';
import type { Engine } from './engine.js';
import type { ContainerConfig, ContainerRecord } from './container.js';
import { parseBytes } from '../base/units.js';
import { trace } from '../base/trace.js';
import { hostCapabilities } from '../security/capabilities.js';

/** Where berth bind-mounts tini-static for --init. /dev is a tmpfs, so nothing lands in the container's layer. */
export const INIT_PATH = '/dev/init';
export const INIT_BINARIES = ['/usr/bin/tini-static', '/usr/bin/tini'];
/** How long the monitor holds output for an attaching client that has not connected yet. */
const ATTACH_WAIT_MS = 10_000;

export interface StartOptions {
  /** Connect to the container's output before it starts (run without -d, start -a). */
  attach?: boolean;
  ttySize?: { rows: number; cols: number };
  /** Command to run when the container exits with no berth process around (run -d --rm). */
  exitCommand?: string[];
}

export interface Started {
  rec: ContainerRecord;
  /** The attach connection, when asked for; connected before the process started, so no output is lost. */
  attach?: Socket;
}

/** Mounts the container's overlay root (image layers read-only under its thin writable layer). */
export async function mountRootfs(engine: Engine, rec: ContainerRecord): Promise<string> {
  const rootfs = rec.GraphDriver.Data.MergedDir;
  if (isMountPoint(rootfs)) return rootfs;
  const image = engine.images.resolve(rec.Image);
  let lowers = await engine.layers.ensure(image);
  if (lowers.length === 0) lowers = [engine.layers.emptyDir()];
  mountOverlay(lowers, rec.GraphDriver.Data.UpperDir, rec.GraphDriver.Data.WorkDir, rootfs);
  return rootfs;
}

/**
 * The container's filesystem as its process sees it when it starts: its root, its volume and bind mounts over it
 * (cpMounts), and its tmpfs mounts, empty then (destinations resolved in the container).
 */
export interface ContainerView {
  root: string;
  mounts: readonly CpMount[];
  tmpfs: readonly string[];
}

export function containerView(rec: ContainerRecord, root: string): ContainerView {
  const mounts = cpMounts(rec, root);
  const tmpfs = Object.keys(rec.HostConfig.Tmpfs ?? {}).map((d) => resolveContainerPath(root, mounts, d).path);
  return { root, mounts, tmpfs };
}

const isBelow = (p: string, dir: string) => p !== dir && p.startsWith(dir === '/' ? '/' : `${dir}/`);

/** What the container sees at `cpath` (symlinks followed inside it): a stat, 'dir' for a fresh tmpfs, or nothing. */
function statInContainer(view: ContainerView, cpath: string): Stats | 'dir' | undefined {
  let r;
  try {
    r = resolveContainerPath(view.root, view.mounts, cpath);
  } catch {
    return undefined; // a symlink loop
  }
  // A tmpfs hides what the root has there; a volume or bind mounted below it stays visible.
  const tmpfs = view.tmpfs.filter((d) => r.path === d || isBelow(r.path, d)).sort((a, b) => b.length - a.length)[0];
  if (tmpfs !== undefined && !(r.mount && isBelow(r.mount.destination, tmpfs))) return r.path === tmpfs ? 'dir' : undefined;
  try {
    return statSync(r.host);
  } catch {
    return undefined;
  }
}

/**
 * Docker's 126/127 checks, done before the runtime is involved so the message is exact. `view` is the container's
 * filesystem: a ContainerView (a container about to start), or a directory that already shows the mounts
 * (/proc/<pid>/root of a running one).
 */
export function checkExecutable(view: string | ContainerView, argv0: string, env: string[], cwd: string): void {
  const v = typeof view === 'string' ? { root: view, mounts: [], tmpfs: [] } : view;
  const notFound = () => new BerthError('command-not-found', `exec: "${argv0}": executable file not found in $PATH`);
  let candidates: string[];
  if (argv0.includes('/')) candidates = [posix.isAbsolute(argv0) ? argv0 : posix.join(cwd || '/', argv0)];
  else {
    const path = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    candidates = path.split(':').filter(Boolean).map((d) => posix.join(d, argv0));
  }
  for (const c of candidates) {
    const st = statInContainer(v, c);
    if (st === undefined) continue;
    if (st === 'dir' || st.isDirectory()) {
      if (argv0.includes('/')) throw new BerthError('cannot-invoke', `exec: "${argv0}": is a directory`);
      continue;
    }
    if ((st.mode & 0o111) === 0) {
      if (argv0.includes('/')) throw new BerthError('cannot-invoke', `exec: "${argv0}": permission denied`);
      continue;
    }
    return;
  }
  if (argv0.includes('/')) throw new BerthError('command-not-found', `exec: "${argv0}": stat ${argv0}: no such file or directory`);
  throw notFound();
}

function initBinary(): string {
  for (const p of INIT_BINARIES) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // try the next
    }
  }
  throw new BerthError('unavailable', `--init needs tini: none of ${INIT_BINARIES.join(', ')} exists (apt-get install tini)`);
}

/**
 * The environment of a container's process (or, with the exec's tty, of an exec), as Docker's daemon builds it:
 * PATH, HOSTNAME and (with a tty) TERM first, each replaced in place by Config.Env; HOME last if still unset.
 * Docker adds TERM when it builds the spec, so `inspect` does not show it.
 */
export function processEnv(c: ContainerConfig, hostname: string, home: string, tty: boolean = c.Tty): string[] {
  const env = [`PATH=${spec.DEFAULT_PATH}`, `HOSTNAME=${hostname}`, ...(tty ? ['TERM=xterm'] : [])];
  for (const e of c.Env) {
    const key = e.includes('=') ? e.slice(0, e.indexOf('=') + 1) : `${e}=`;
    const at = env.findIndex((x) => x.startsWith(key));
    if (at >= 0) env[at] = e;
    else env.push(e);
  }
  return env.some((e) => e.startsWith('HOME=')) ? env : [...env, `HOME=${home}`];
}

/** The hostname the container's processes see: the host's with `--network host`. */
export function containerHostname(rec: ContainerRecord): string {
  return rec.HostConfig.NetworkMode === 'host' ? hostname() : rec.Config.Hostname;
}

/** Builds the runtime spec for this start of the container. */
function containerSpec(rec: ContainerRecord, rootfs: string): spec.RuntimeSpec {
  const hc = rec.HostConfig;
  const c = rec.Config;
  const user = resolveUser(rootfs, c.User || '');
  const env = processEnv(c, containerHostname(rec), user.home || '/');
  const args = [rec.Path, ...rec.Args];
  const cwd = c.WorkingDir || '/';
  checkExecutable(containerView(rec, rootfs), rec.Path, env, cwd);

  const mounts: spec.MountSpec[] = [
    { destination: '/etc/resolv.conf', type: 'bind', source: rec.ResolvConfPath, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hostname', type: 'bind', source: rec.HostnamePath, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hosts', type: 'bind', source: rec.HostsPath, options: ['rbind', 'rprivate'] },
  ];
  for (const m of rec.Mounts) {
    mounts.push({ destination: m.Destination, type: 'bind', source: m.Source, options: ['rbind', m.RW ? 'rw' : 'ro', 'rprivate'] });
  }
  for (const [dst, opts] of Object.entries(hc.Tmpfs ?? {})) {
    mounts.push({ destination: dst, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', ...(opts ? opts.split(',') : [])] });
  }
  if (hc.Init) mounts.push({ destination: INIT_PATH, type: 'bind', source: initBinary(), options: ['rbind', 'ro', 'rprivate'] });

  const opts: spec.SpecOption[] = [
    spec.withArgs(hc.Init ? [INIT_PATH, '--', ...args] : args),
    spec.withEnv(env),
    spec.withCwd(cwd),
    spec.withTerminal(c.Tty),
    spec.withUser(user),
    spec.withRootfs(rootfs, hc.ReadonlyRootfs),
    spec.withRlimits(hostLimits()),
    spec.withoutSeccompArches(hostMissingSeccompArches()),
    spec.withCgroupsPath(containerCgroupPath(rec.Id)),
    spec.withMounts(mounts),
    spec.withAnnotations({ 'org.opencontainers.image.ref.name': c.Image, 'io.berth.container.name': rec.Name.slice(1) }),
  ];
  if (hc.NetworkMode === 'host') opts.push(spec.withoutNamespace('network'), spec.withoutNamespace('uts'));
  else opts.push(spec.withHostname(c.Hostname));
  if (hc.Memory || hc.MemorySwap) opts.push(spec.withMemory(hc.Memory, hc.MemorySwap || undefined));
  if (hc.NanoCpus) opts.push(spec.withCpus(hc.NanoCpus / 1e9));
  if (hc.CpuShares) opts.push(spec.withCpuShares(hc.CpuShares));
  if (hc.PidsLimit) opts.push(spec.withPidsLimit(hc.PidsLimit));
  if (hc.Privileged) opts.push(spec.withHostCapabilities(hostCapabilities()), spec.withPrivileged());
  if (hc.CapDrop) opts.push(spec.withCapDrop(hc.CapDrop));
  if (hc.CapAdd) opts.push(spec.withCapAdd(hc.CapAdd));
  for (const so of hc.SecurityOpt ?? []) {
    const [k, v] = so.includes('=') ? [so.slice(0, so.indexOf('=')), so.slice(so.indexOf('=') + 1)] : so.split(':');
    if (k === 'no-new-privileges' && v !== 'false') opts.push(spec.withNoNewPrivileges());
    else if (k === 'seccomp' && v === 'unconfined') opts.push(spec.withSeccomp('unconfined'));
    else if (k === 'seccomp' && v) opts.push(spec.withSeccomp(JSON.parse(readFileSync(v, 'utf8')) as never));
    else if (k === 'label' || k === 'apparmor') continue;
    else throw new BerthError('invalid-argument', `Invalid --security-opt: "${so}"`);
  }
  return spec.buildSpec(...opts);
}

function writeEtcFiles(rec: ContainerRecord): void {
  const hostname = rec.HostConfig.NetworkMode === 'host' ? readFileSync('/etc/hostname', 'utf8').trim() : rec.Config.Hostname;
  atomicWrite(rec.HostnamePath, `${hostname}\n`, { durable: false });
  const hosts = rec.HostConfig.NetworkMode === 'host'
    ? readFileSync('/etc/hosts', 'utf8')
    : `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t${hostname}\n`;
  atomicWrite(rec.HostsPath, hosts, { durable: false });
  let resolv = '';
  try {
    resolv = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    resolv = '';
  }
  // Loopback resolvers on the host are unreachable from a private network namespace (Docker drops them too).
  if (rec.HostConfig.NetworkMode !== 'host') resolv = resolv.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l)).join('\n');
  atomicWrite(rec.ResolvConfPath, resolv, { durable: false });
}

/**
 * Starts a created or exited container: mount its root, write the bundle, hand it to a new monitor (which runs
 * `runtime create`), optionally attach, then `runtime start`. On any failure everything is undone: the runtime
 * state, the cgroup and the mount.
 */
export async function startContainer(engine: Engine, ref: string, o: StartOptions = {}): Promise<Started> {
  const found = engine.containers.resolve(ref);
  const id = found.Id;
  return withLock(engine.paths.lock(`start-${id}`), async () => {
    // The previous run's monitor may still be cleaning up (unmount, runtime files): let it finish first.
    await waitMonitorGone(engine, id);
    const rec = engine.containers.read(id);
    if (!rec) throw notFound(`No such container: ${ref}`);
    if (rec.State.Running) {
      if (rec.State.Paused) throw conflict(`cannot start a paused container, try unpause instead`);
      return { rec };
    }
    const dir = engine.containers.dir(id);
    const cg = containerCgroupPath(id);
    const runtime = engine.runtimeFor(rec);
    // Leftovers of a previous run, if its monitor could not clean up (a fresh container has none).
    if (existsSync(join(runtime.root, id))) await runtime.delete(id);
    rmSync(join(dir, 'exit.json'), { force: true });

    let rootfs: string | undefined;
    let socket: Socket | undefined;
    try {
      trace('start: locked');
      rootfs = await mountRootfs(engine, rec);
      trace('start: rootfs mounted');
      writeEtcFiles(rec);
      const s = containerSpec(rec, rootfs);
      atomicWriteJson(join(dir, 'config.json'), s, { durable: false });
      trace('start: bundle written');
      const lc = rec.HostConfig.LogConfig.Config;
      const pid = await startMonitor({
        runtime: runtime.bin,
        runtimeRoot: runtime.root,
        id,
        bundle: dir,
        dir,
        logPath: rec.LogPath,
        tty: rec.Config.Tty,
        ...(o.ttySize ? { ttySize: o.ttySize } : {}),
        stdin: rec.Config.OpenStdin,
        logMaxSize: parseBytes(lc['max-size'] ?? '10m'),
        logMaxFiles: Number(lc['max-file'] ?? 3),
        oomFile: oomFile(cg),
        rootfsMount: rootfs,
        ...(removedByMonitor(engine, rec) ? { removeDir: true } : o.exitCommand ? { exitCommand: o.exitCommand } : {}),
        cgroupPath: cg,
        start: true,
        // An attaching client connects right after this returns; the monitor holds output until then.
        ...(o.attach ? { attachWaitMs: ATTACH_WAIT_MS } : {}),
      });
      trace('start: monitor started the container');
      // Record the start before an attach client connects: until then the monitor holds the container's output
      // and exit, afterwards a `--rm` container may be gone at any moment.
      let updated = rec;
      try {
        updated = engine.containers.update(id, (r) => {
          Object.assign(r.State, {
            Status: 'running', Running: true, Paused: false, Pid: pid, ExitCode: 0, Error: '', OOMKilled: false,
            StartedAt: new Date().toISOString(), FinishedAt: r.State.FinishedAt,
          });
        });
      } catch (e) {
        // A detached `--rm` container that already ran and was removed by its monitor.
        if (!(e instanceof BerthError && e.kind === 'not-found' && !o.attach)) throw e;
      }
      if (o.attach) socket = await connectAttach(join(dir, 'attach.sock'));
      return { rec: updated, ...(socket ? { attach: socket } : {}) };
    } catch (e) {
      socket?.destroy();
      await runtime.kill(id, 'KILL').catch(() => undefined);
      await runtime.delete(id);
      if (rootfs) unmount(rootfs);
      removeCgroups(cg);
      const err = e instanceof BerthError ? e : wrap(e, 'starting container');
      try {
        engine.containers.update(id, (r) => {
          r.State.Error = err.message;
          if (r.State.Status === 'created' || r.State.Status === 'exited') {
            r.State.ExitCode = err.kind === 'command-not-found' ? 127 : err.kind === 'cannot-invoke' ? 126 : 128;
          }
        });
      } catch {
        // the record may be gone (removed meanwhile)
      }
      throw err;
    }
  });
}


