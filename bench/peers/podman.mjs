// Debian's podman on private storage: its own root, runroot, tmpdir and network config dir under the run's work dir.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupsMatching, must, run, tryRmdir, unmountUnder, which } from '../lib/host.mjs';
import { firstLine, startSleepers } from './peer.mjs';

// podman's default nofile limit is above this machine's hard limit (20000), and crun is not installed: runc.
const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
`;

/** @returns {import('./peer.mjs').Peer} */
export function podmanPeer() {
  const bin = which('podman');
  let global = [];
  let env = process.env;
  let image = '';
  let cgroupParent = '';
  let driver = '';
  const call = (args, opts) => must(bin, [...global, ...args], { env, ...opts });

  return {
    name: 'podman',
    missing: () => (bin ? null : 'podman not found in PATH'),
    async setup(ctx) {
      const dir = join(ctx.work, 'podman');
      image = `localhost/${ctx.image}`;
      cgroupParent = `/${ctx.token}-podman`;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'containers.conf'), CONTAINERS_CONF);
      env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') };
      ctx.cleanup.push('podman storage', () => {
        if (global.length) {
          run(bin, [...global, 'rm', '-af', '-t', '0'], { env });
          run(bin, [...global, 'rmi', '-af'], { env });
        }
        unmountUnder(dir);
        rmSync(dir, { recursive: true, force: true });
        // podman leaves the (empty) cgroup parent it was given, with conmon's cgroup inside
        for (const g of cgroupsMatching([cgroupParent.slice(1)])) tryRmdir(g);
      });
      const errors = [];
      for (const d of ['overlay', 'vfs']) {
        const sub = join(dir, d);
        global = [
          '--root', join(sub, 'root'), '--runroot', join(sub, 'runroot'), '--tmpdir', join(sub, 'tmp'),
          '--network-config-dir', join(sub, 'networks'), '--storage-driver', d,
          '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
        ];
        try {
          call(['import', ctx.tarball, image]);
          call(['run', '--rm', '--network', 'none', '--cgroup-parent', cgroupParent, image, 'true']);
          driver = d;
          return;
        } catch (e) {
          errors.push(`${d}: ${e.message}`);
          run(bin, [...global, 'rmi', '-af'], { env });
          unmountUnder(sub);
        }
      }
      global = [];
      throw new Error(`podman cannot run a container here (${errors.join('; ')})`);
    },
    versions() {
      const v = { podman: `${firstLine(run(bin, ['--version']).stdout)} (storage driver ${driver})` };
      const conmon = which('conmon');
      if (conmon) v.conmon = firstLine(run(conmon, ['--version']).stdout);
      return v;
    },
    cases: () => [
      {
        label: 'podman run',
        peer: 'podman',
        argv: () => ({ cmd: bin, args: [...global, 'run', '--rm', '--network', 'none', '--cgroup-parent', cgroupParent, image, 'true'], env }),
      },
    ],
    monitors: {
      name: 'conmon',
      start: (n) => startSleepers(n, () => call(['run', '-d', '--network', 'none', '--cgroup-parent', cgroupParent, image, 'sleep', '600']), 'conmon', '-c'),
      stop(ids) {
        if (ids.length) run(bin, [...global, 'rm', '-f', '-t', '0', ...ids], { env });
      },
    },
  };
}
