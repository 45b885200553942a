// Debian's docker.io: a private dockerd (and the containerd it starts) on unix sockets under the run's work dir,
// with host networking changes turned off; stopped and its data removed at the end.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostPaths } from '../lib/cleanup.mjs';
import { cgroupsMatching, must, processes, run, signal, sleep, tryRmdir, unmountUnder, waitGone, which } from '../lib/host.mjs';
import { startSleepers } from './peer.mjs';

// Paths dockerd 20.10 writes outside --data-root/--exec-root: its trust key in /etc/docker, its plugin socket dir in
// /run/docker/plugins and containerd's shim sockets in /run/containerd/s. Removed afterwards if this run created them.
const HOST_PATHS = [
  '/etc/docker/key.json', '/etc/docker', '/run/docker/plugins', '/run/docker', '/run/containerd/s', '/run/containerd', '/var/lib/docker',
];

/** @returns {import('./peer.mjs').Peer} */
export function dockerPeer(opts) {
  const daemon = which('dockerd');
  const cli = opts.dockerCli ? which(opts.dockerCli) : (which('/usr/bin/docker') ?? which('docker'));
  let host = [];
  let env = process.env;
  let image = '';
  let dockerdPid = 0;
  let execRoot = '';
  const call = (args) => must(cli, [...host, ...args], { env });

  const containerdPids = () =>
    processes()
      .filter((p) => p.comm === 'containerd' && p.state !== 'Z' && p.argv.some((a) => a.startsWith(execRoot)))
      .map((p) => p.pid);

  return {
    name: 'docker',
    missing() {
      if (!daemon) return 'dockerd not found in PATH';
      if (!cli) return `docker CLI not found (${opts.dockerCli ?? '/usr/bin/docker, or docker in PATH'})`;
      return null;
    },
    async setup(ctx) {
      const dir = join(ctx.work, 'docker');
      execRoot = join(dir, 'exec');
      const sock = join(dir, 'docker.sock');
      image = ctx.image;
      host = ['-H', `unix://${sock}`];
      mkdirSync(join(dir, 'cli'), { recursive: true });
      writeFileSync(join(dir, 'daemon.json'), '{}\n');
      env = { ...process.env, DOCKER_CONFIG: join(dir, 'cli') };
      const hostPaths = new HostPaths(HOST_PATHS);
      const cgroupParent = `${ctx.token}-docker`;

      ctx.cleanup.push('dockerd', async () => {
        if (dockerdPid) {
          const ids = run(cli, [...host, 'ps', '-aq'], { env, timeout: 20_000 }).stdout.split('\n').filter(Boolean);
          if (ids.length) run(cli, [...host, 'rm', '-f', ...ids], { env, timeout: 60_000 });
          run(cli, [...host, 'rmi', '-f', image], { env, timeout: 20_000 });
          const children = containerdPids();
          signal(dockerdPid, 'SIGTERM');
          for (const pid of await waitGone([dockerdPid], 20_000)) signal(pid, 'SIGKILL');
          for (const pid of await waitGone(children, 10_000)) signal(pid, 'SIGKILL');
          await waitGone(children, 3000);
        }
        unmountUnder(dir);
        rmSync(dir, { recursive: true, force: true });
        hostPaths.restore();
        // dockerd leaves the (empty) cgroup parent it was given
        for (const g of cgroupsMatching([cgroupParent])) tryRmdir(g);
      });

      const log = openSync(join(dir, 'dockerd.log'), 'a');
      const child = spawn(
        daemon,
        [
          '--data-root', join(dir, 'data'), '--exec-root', execRoot, '--pidfile', join(dir, 'docker.pid'),
          '-H', `unix://${sock}`, '--config-file', join(dir, 'daemon.json'),
          '--bridge', 'none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--ip-forward=false',
          '--cgroup-parent', cgroupParent,
        ],
        { detached: true, stdio: ['ignore', log, log] },
      );
      closeSync(log);
      dockerdPid = child.pid ?? 0;
      let exited = null;
      child.on('exit', (code, sig) => (exited = sig ?? code));
      child.unref();
      const end = Date.now() + 60_000;
      while (run(cli, [...host, 'version'], { env, timeout: 5000 }).code !== 0) {
        if (exited !== null || Date.now() > end) {
          const tail = readFileSync(join(dir, 'dockerd.log'), 'utf8').trim().split('\n').slice(-3).join(' | ');
          throw new Error(`dockerd ${exited !== null ? `exited (${exited})` : 'did not answer in 60 s'}: ${tail}`);
        }
        await sleep(200);
      }
      call(['import', ctx.tarball, image]);
    },
    versions() {
      const fmt = (f) => run(cli, [...host, 'version', '--format', f], { env }).stdout.trim();
      const containerd = run('containerd', ['--version']).stdout.trim().split(' ').slice(-1)[0] ?? '';
      return {
        dockerd: `${fmt('{{.Server.Version}}')} (${daemon}, API ${fmt('{{.Server.APIVersion}}')}, containerd ${containerd})`,
        'docker CLI': `${fmt('{{.Client.Version}}')} (${cli})`,
      };
    },
    cases: () => [
      { label: 'docker run', peer: 'docker', argv: () => ({ cmd: cli, args: [...host, 'run', '--rm', '--network', 'none', image, 'true'], env }) },
    ],
    monitors: {
      name: 'containerd-shim-runc-v2',
      start: (n) => startSleepers(n, () => call(['run', '-d', '--network', 'none', image, 'sleep', '600']), 'containerd-shim', '-id'),
      stop(ids) {
        if (ids.length) run(cli, [...host, 'rm', '-f', ...ids], { env });
      },
      daemons: () => [
        { label: 'dockerd', pids: [dockerdPid] },
        { label: 'containerd', pids: containerdPids() },
      ],
    },
  };
}
