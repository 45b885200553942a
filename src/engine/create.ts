import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { invalidArgument, notFound, unavailable } from '../base/errors.js';
import type { Engine } from './engine.js';
import { FileLock } from '../base/fsutil.js';
import { newState, type ContainerRecord, type MountPoint } from './container.js';
import { newId, randomName } from './names.js';
import { familiarString, parseReference } from '../image/reference.js';
import type { Image } from '../image/types.js';
import { parseBytes } from '../base/units.js';

/** What `berth create`/`run` asks for, after flag parsing. */
export interface CreateOptions {
  image: string;
  name?: string;
  cmd?: string[];
  /** --entrypoint: a string replaces the image's entrypoint ("" clears it). */
  entrypoint?: string;
  env?: string[];
  envFiles?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  labels?: string[];
  tty?: boolean;
  interactive?: boolean;
  autoRemove?: boolean;
  init?: boolean;
  stopSignal?: string;
  stopTimeout?: number;
  network?: string;
  readOnly?: boolean;
  tmpfs?: string[];
  volumes?: string[];
  memory?: number;
  memorySwap?: number;
  cpus?: number;
  cpuShares?: number;
  pidsLimit?: number;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  securityOpt?: string[];
  logOpts?: string[];
  runtime?: string;
}

export const DEFAULT_LOG_MAX_SIZE = '10m';
export const DEFAULT_LOG_MAX_FILE = '3';

/** Parses `--env-file` contents: KEY=VALUE lines, comments, and bare KEY taken from berth's environment. */
export function parseEnvFile(text: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    out.push(...expandEnvArg(line, env));
  }
  return out;
}

/** `-e KEY=V` stays as is; `-e KEY` takes KEY from the caller's environment, or is dropped if unset (Docker). */
export function expandEnvArg(arg: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (arg.includes('=')) {
    if (arg.startsWith('=')) throw invalidArgument(`invalid environment variable: ${arg}`);
    return [arg];
  }
  const v = env[arg];
  return v === undefined ? [] : [`${arg}=${v}`];
}

/** Later entries win, keeping the first position of each key (Docker's merge of image and user env). */
export function mergeEnv(...lists: string[][]): string[] {
  const order: string[] = [];
  const values = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const k = kv.split('=')[0]!;
      if (!values.has(k)) order.push(k);
      values.set(k, kv);
    }
  }
  return order.map((k) => values.get(k)!);
}

export function parseLabels(labels: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const i = l.indexOf('=');
    if (i === 0) throw invalidArgument(`invalid label: ${l}`);
    if (i < 0) out[l] = '';
    else out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** Docker's volume spec: `name:/ctr[:ro]`, `/host:/ctr[:ro|rw]`, or `/ctr` (anonymous). */
export interface VolumeSpec {
  source: string;
  destination: string;
  readOnly: boolean;
  kind: 'bind' | 'volume';
}

export function parseVolumeSpec(spec: string): VolumeSpec {
  const parts = spec.split(':');
  let source = '', destination: string, mode = '';
  if (parts.length === 1) destination = parts[0]!;
  else if (parts.length === 2) {
    if (parts[1]!.startsWith('/')) [source, destination] = [parts[0]!, parts[1]!];
    else [destination, mode] = [parts[0]!, parts[1]!];
  } else if (parts.length === 3) [source, destination, mode] = [parts[0]!, parts[1]!, parts[2]!];
  else throw invalidArgument(`invalid volume specification: '${spec}'`);
  if (!destination.startsWith('/')) throw invalidArgument(`invalid volume specification: '${spec}': invalid mount config for type "bind": invalid mount path: '${destination}' mount path must be absolute`);
  if (destination === '/') throw invalidArgument(`invalid volume specification: '${spec}': invalid mount config: destination can't be '/'`);
  const modes = mode ? mode.split(',') : [];
  for (const m of modes) {
    if (!['ro', 'rw', 'z', 'Z', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave', 'nocopy'].includes(m)) {
      throw invalidArgument(`invalid mode: ${m}`);
    }
  }
  return {
    source,
    destination: posix.normalize(destination),
    readOnly: modes.includes('ro'),
    kind: source.startsWith('/') ? 'bind' : 'volume',
  };
}

const SUPPORTED_NETWORKS = ['none', 'host'];

function resolveImage(engine: Engine, ref: string): Image {
  try {
    return engine.images.resolve(ref);
  } catch (e) {
    // Docker says "Unable to find image ... locally" then tries a registry; pulling comes with the registry issue.
    let name = ref;
    try {
      name = familiarString(parseReference(ref));
    } catch {
      // keep as typed
    }
    if ((e as { kind?: string }).kind === 'not-found') throw notFound(`No such image: ${name}`);
    throw e;
  }
}

/**
 * Creates a container record and its directories; nothing runs and nothing is mounted yet. Holds the images lock
 * shared, so an `rmi` or `image prune` (exclusive) cannot remove the image between lookup and record.
 */
export function createContainer(engine: Engine, o: CreateOptions): ContainerRecord {
  const lock = new FileLock(engine.paths.lock('images')).acquire(true);
  try {
    return createLocked(engine, o);
  } finally {
    lock.release();
  }
}

function createLocked(engine: Engine, o: CreateOptions): ContainerRecord {
  const image = resolveImage(engine, o.image);
  const ic = image.config.config ?? {};
  const network = o.network ?? 'none';
  if (network === 'bridge' || network === 'default') {
    throw unavailable('bridge networking is not available yet in berth: use --network none or --network host');
  }
  if (!SUPPORTED_NETWORKS.includes(network) && !network.startsWith('container:')) {
    throw notFound(`network ${network} not found`);
  }

  // Entrypoint and command: --entrypoint resets the image's CMD unless a command is given (Docker).
  let entrypoint: string[] | null = ic.Entrypoint ?? null;
  let cmd: string[] | null = ic.Cmd ?? null;
  if (o.entrypoint !== undefined) {
    entrypoint = o.entrypoint === '' ? null : [o.entrypoint];
    cmd = null;
  }
  if (o.cmd && o.cmd.length > 0) cmd = o.cmd;
  const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (argv.length === 0) throw invalidArgument('no command specified');

  const userEnv: string[] = [];
  for (const f of o.envFiles ?? []) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      throw invalidArgument(`open ${f}: no such file or directory`);
    }
    userEnv.push(...parseEnvFile(text));
  }
  for (const e of o.env ?? []) userEnv.push(...expandEnvArg(e));
  const defaultPath = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const env = mergeEnv(ic.Env?.some((e) => e.startsWith('PATH=')) ? [] : [defaultPath], ic.Env ?? [], userEnv);

  const id = newId();
  const name = o.name ?? randomName();
  const dir = engine.containers.dir(id);
  const logOpts = parseLabels(o.logOpts ?? []);
  for (const k of Object.keys(logOpts)) {
    if (k !== 'max-size' && k !== 'max-file') throw invalidArgument(`unknown log opt '${k}' for json-file log driver`);
  }
  if (logOpts['max-size'] !== undefined) {
    try {
      parseBytes(logOpts['max-size']);
    } catch {
      throw invalidArgument(`invalid max-size: ${logOpts['max-size']}`);
    }
  }
  if (logOpts['max-file'] !== undefined && !/^[1-9]\d*$/.test(logOpts['max-file'])) throw invalidArgument(`invalid value for max-file: ${logOpts['max-file']}`);
  const binds = (o.volumes ?? []).map(parseVolumeSpec);

  const tmpfs: Record<string, string> = {};
  for (const t of o.tmpfs ?? []) {
    const i = t.indexOf(':');
    const dst = i < 0 ? t : t.slice(0, i);
    if (!dst.startsWith('/')) throw invalidArgument(`invalid mount path: '${dst}' mount path must be absolute`);
    tmpfs[dst] = i < 0 ? '' : t.slice(i + 1);
  }

  const mounts: MountPoint[] = [];
  for (const b of binds) {
    if (b.kind === 'bind') {
      mounts.push({ Type: 'bind', Source: b.source, Destination: b.destination, Mode: b.readOnly ? 'ro' : '', RW: !b.readOnly, Propagation: 'rprivate' });
    } else {
      const vol = b.source ? engine.volumes.create(b.source) : engine.volumes.create(undefined, { anonymous: true });
      mounts.push({ Type: 'volume', Name: vol.Name, Source: vol.Mountpoint, Destination: b.destination, Driver: 'local', Mode: b.readOnly ? 'ro' : 'z', RW: !b.readOnly, Propagation: '' });
    }
  }
  // Image VOLUMEs not covered by a user mount get anonymous volumes.
  for (const dest of Object.keys(ic.Volumes ?? {})) {
    const d = posix.normalize(dest);
    if (mounts.some((m) => m.Destination === d) || tmpfs[d] !== undefined) continue;
    const vol = engine.volumes.create(undefined, { anonymous: true });
    mounts.push({ Type: 'volume', Name: vol.Name, Source: vol.Mountpoint, Destination: d, Driver: 'local', Mode: '', RW: true, Propagation: '' });
  }

  for (const m of mounts) {
    // Docker makes a missing -v source directory; an existing file is bind-mounted as it is.
    if (m.Type === 'bind' && !existsSync(m.Source)) {
      try {
        mkdirSync(m.Source, { recursive: true });
      } catch {
        throw invalidArgument(`invalid mount source: ${m.Source}`);
      }
    }
  }

  const now = new Date().toISOString();
  const rec: ContainerRecord = {
    Id: id,
    Created: now,
    Path: argv[0]!,
    Args: argv.slice(1),
    State: newState(),
    Image: image.id,
    ResolvConfPath: join(dir, 'resolv.conf'),
    HostnamePath: join(dir, 'hostname'),
    HostsPath: join(dir, 'hosts'),
    LogPath: join(dir, `${id}-json.log`),
    Name: `/${name}`,
    RestartCount: 0,
    Driver: 'overlay',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      Binds: (o.volumes ?? []).length ? [...o.volumes!] : null,
      NetworkMode: network,
      AutoRemove: !!o.autoRemove,
      Privileged: !!o.privileged,
      ReadonlyRootfs: !!o.readOnly,
      CapAdd: o.capAdd?.length ? o.capAdd : null,
      CapDrop: o.capDrop?.length ? o.capDrop : null,
      SecurityOpt: o.securityOpt?.length ? o.securityOpt : null,
      Tmpfs: Object.keys(tmpfs).length ? tmpfs : null,
      Memory: o.memory ?? 0,
      MemorySwap: o.memorySwap ?? 0,
      NanoCpus: o.cpus ? Math.round(o.cpus * 1e9) : 0,
      CpuShares: o.cpuShares ?? 0,
      PidsLimit: o.pidsLimit ?? null,
      Init: o.init ?? null,
      Runtime: o.runtime ?? engine.runtime.name,
      LogConfig: { Type: 'json-file', Config: { 'max-size': logOpts['max-size'] ?? DEFAULT_LOG_MAX_SIZE, 'max-file': logOpts['max-file'] ?? DEFAULT_LOG_MAX_FILE } },
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    },
    GraphDriver: {
      Name: 'overlay',
      Data: { LowerDir: '', MergedDir: join(dir, 'rootfs'), UpperDir: join(dir, 'upper'), WorkDir: join(dir, 'work') },
    },
    Mounts: mounts,
    Config: {
      Hostname: o.hostname ?? (network === 'host' ? '' : id.slice(0, 12)),
      Domainname: '',
      User: o.user ?? ic.User ?? '',
      AttachStdin: !!o.interactive,
      AttachStdout: true,
      AttachStderr: true,
      ExposedPorts: ic.ExposedPorts,
      Tty: !!o.tty,
      OpenStdin: !!o.interactive,
      StdinOnce: !!o.interactive,
      Env: env,
      Cmd: cmd,
      Image: o.image,
      Volumes: ic.Volumes ?? null,
      WorkingDir: o.workdir ?? ic.WorkingDir ?? '',
      Entrypoint: entrypoint,
      OnBuild: null,
      Labels: { ...(ic.Labels ?? {}), ...parseLabels(o.labels ?? []) },
      ...(o.stopSignal ?? ic.StopSignal ? { StopSignal: o.stopSignal ?? ic.StopSignal } : {}),
      ...(o.stopTimeout !== undefined ? { StopTimeout: o.stopTimeout } : {}),
    },
    NetworkSettings: { Networks: { [network]: {} } },
  };
  if (rec.Config.WorkingDir && !rec.Config.WorkingDir.startsWith('/')) {
    throw invalidArgument(`the working directory '${rec.Config.WorkingDir}' is invalid, it needs to be an absolute path`);
  }
  engine.containers.create(rec);
  for (const d of ['upper', 'work', 'rootfs']) mkdirSync(join(dir, d), { recursive: true });
  return rec;
}
