import type { FlagSpec, Parsed } from '../args.js';
import type { CreateOptions } from '../../engine/create.js';
import { flag } from '../context.js';

/** The flags `run` and `create` share, with Docker's names and meanings. */
export const CREATE_FLAGS: FlagSpec[] = [
  { name: 'name', type: 'string', description: 'Assign a name to the container' },
  { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
  { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
  { name: 'env', short: 'e', type: 'strings', description: 'Set environment variables' },
  { name: 'env-file', type: 'strings', description: 'Read in a file of environment variables' },
  { name: 'workdir', short: 'w', type: 'string', description: 'Working directory inside the container' },
  { name: 'user', short: 'u', type: 'string', description: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  { name: 'entrypoint', type: 'string', description: 'Overwrite the default ENTRYPOINT of the image' },
  { name: 'hostname', short: 'h', type: 'string', description: 'Container host name' },
  { name: 'label', short: 'l', type: 'strings', description: 'Set meta data on a container' },
  { name: 'rm', type: 'bool', description: 'Automatically remove the container and its associated anonymous volumes when it exits' },
  { name: 'init', type: 'bool', description: 'Run an init inside the container that forwards signals and reaps processes' },
  { name: 'stop-signal', type: 'string', description: 'Signal to stop the container' },
  { name: 'stop-timeout', type: 'int', description: 'Timeout (in seconds) to stop a container' },
  { name: 'network', type: 'string', description: 'Connect a container to a network (none, host)' },
  { name: 'net', type: 'string', description: 'Connect a container to a network', hidden: true },
  { name: 'read-only', type: 'bool', description: "Mount the container's root filesystem as read only" },
  { name: 'tmpfs', type: 'strings', description: 'Mount a tmpfs directory' },
  { name: 'volume', short: 'v', type: 'strings', description: 'Bind mount a volume' },
  { name: 'memory', short: 'm', type: 'bytes', description: 'Memory limit' },
  { name: 'memory-swap', type: 'string', description: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { name: 'cpus', type: 'number', description: 'Number of CPUs' },
  { name: 'cpu-shares', short: 'c', type: 'int', description: 'CPU shares (relative weight)' },
  { name: 'pids-limit', type: 'int', description: 'Tune container pids limit (set -1 for unlimited)' },
  { name: 'cap-add', type: 'strings', description: 'Add Linux capabilities' },
  { name: 'cap-drop', type: 'strings', description: 'Drop Linux capabilities' },
  { name: 'privileged', type: 'bool', description: 'Give extended privileges to this container' },
  { name: 'security-opt', type: 'strings', description: 'Security Options' },
  { name: 'log-opt', type: 'strings', description: 'Log driver options' },
  { name: 'runtime', type: 'string', description: 'Runtime to use for this container' },
];

export function createOptions(p: Parsed, parseBytes: (s: string) => number): CreateOptions {
  const [image, ...cmd] = p.args;
  const swap = flag.str(p, 'memory-swap');
  const o: CreateOptions = {
    image: image!,
    cmd,
    env: flag.strs(p, 'env'),
    envFiles: flag.strs(p, 'env-file'),
    labels: flag.strs(p, 'label'),
    tty: flag.bool(p, 'tty'),
    interactive: flag.bool(p, 'interactive'),
    autoRemove: flag.bool(p, 'rm'),
    init: flag.bool(p, 'init'),
    readOnly: flag.bool(p, 'read-only'),
    tmpfs: flag.strs(p, 'tmpfs'),
    volumes: flag.strs(p, 'volume'),
    capAdd: flag.strs(p, 'cap-add'),
    capDrop: flag.strs(p, 'cap-drop'),
    privileged: flag.bool(p, 'privileged'),
    securityOpt: flag.strs(p, 'security-opt'),
    logOpts: flag.strs(p, 'log-opt'),
  };
  const set = <K extends keyof CreateOptions>(k: K, v: CreateOptions[K] | undefined) => {
    if (v !== undefined) o[k] = v;
  };
  set('name', flag.str(p, 'name'));
  set('workdir', flag.str(p, 'workdir'));
  set('user', flag.str(p, 'user'));
  set('entrypoint', flag.str(p, 'entrypoint'));
  set('hostname', flag.str(p, 'hostname'));
  set('stopSignal', flag.str(p, 'stop-signal'));
  set('stopTimeout', flag.num(p, 'stop-timeout'));
  set('network', flag.str(p, 'network') ?? flag.str(p, 'net'));
  set('memory', flag.num(p, 'memory'));
  set('memorySwap', swap === undefined ? undefined : swap === '-1' ? -1 : parseBytes(swap));
  set('cpus', flag.num(p, 'cpus'));
  set('cpuShares', flag.num(p, 'cpu-shares'));
  set('pidsLimit', flag.num(p, 'pids-limit'));
  set('runtime', flag.str(p, 'runtime'));
  return o;
}
