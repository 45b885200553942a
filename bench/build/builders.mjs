// The three image builders the build benchmark compares: berth build, BuildKit (Debian's docker.io: a private
// dockerd, its own CLI, DOCKER_BUILDKIT=1) and buildah bud --layers on private storage.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostPaths } from '../lib/cleanup.mjs';
import { cgroupsMatching, must, run, tryRmdir, unmountUnder, which } from '../lib/host.mjs';
import { dockerPeer } from '../peers/docker.mjs';
import { firstLine } from '../peers/peer.mjs';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BERTH = join(REPO, 'bin/berth');

/**
 * @typedef {'cold' | 'warm' | 'edit'} Kind
 *   cold: `--no-cache` with the base image present; warm: again, nothing changed; edit: after one source changed
 *
 * @typedef {object} BuildContext  what the suite hands every builder
 * @property {string} work      this run's temp dir; each builder works under work/<name>
 * @property {string} tarball   busybox rootfs tar (scripts/make-busybox-image.sh)
 * @property {string} base      name to import the tarball as (the Dockerfile's FROM)
 * @property {string} tag       name every build is tagged as
 * @property {string} token     unique string of this run, for names outside `work`
 * @property {import('../lib/cleanup.mjs').Cleanup} cleanup
 * @property {object} opts      parsed command-line options
 *
 * @typedef {object} Builder
 * @property {string} name          berth | docker | buildah (what --only selects)
 * @property {string} label         row label
 * @property {boolean} steps        true if its --progress plain output has BuildKit's "#N name" / "#N DONE 1.2s" lines
 * @property {() => string | null} missing
 * @property {(ctx: BuildContext) => Promise<void>} setup   creates private state, imports the base; throws on failure
 * @property {() => Record<string, string>} versions
 * @property {(kind: Kind, dir: string) => {cmd: string, args: string[], env?: NodeJS.ProcessEnv}} argv   one build of `dir`
 */

/** berth's own CLI (bin/berth, the esbuild bundle in dist/) on a private --root. */
export function berthBuilder() {
  let root = '';
  let tag = '';
  return {
    name: 'berth',
    label: 'berth build',
    steps: true,
    missing() {
      if (!existsSync(join(REPO, 'dist/berth.mjs'))) return `no ${join(REPO, 'dist/berth.mjs')}: run npm run build`;
      return null;
    },
    async setup(ctx) {
      root = join(ctx.work, 'berth');
      tag = ctx.tag;
      const runcRoot = join(root, 'run/runc');
      ctx.cleanup.push('berth root', () => {
        // RUN steps run in the foreground; only an interrupted build leaves a runtime container behind.
        const runc = which('runc');
        if (runc && existsSync(runcRoot)) {
          for (const id of run(runc, ['--root', runcRoot, 'list', '-q']).stdout.split('\n').filter(Boolean)) {
            run(runc, ['--root', runcRoot, 'delete', '-f', id]);
          }
        }
        unmountUnder(root);
        rmSync(root, { recursive: true, force: true });
      });
      must(BERTH, ['--root', root, 'import', ctx.tarball, ctx.base]);
    },
    versions() {
      const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
      const launch = existsSync(join(REPO, 'dist/berth.blob')) ? 'V8 startup snapshot dist/berth.blob' : 'ESM bundle dist/berth.mjs';
      const built = statSync(join(REPO, 'dist/berth.mjs')).mtime.toISOString();
      return { berth: `${pkg.version} (bin/berth from ${launch}; dist/berth.mjs built ${built})` };
    },
    argv(kind, dir) {
      const noCache = kind === 'cold' ? ['--no-cache'] : [];
      return { cmd: BERTH, args: ['--root', root, 'build', ...noCache, '--progress', 'plain', '--network', 'none', '-t', tag, dir] };
    },
  };
}

/**
 * BuildKit as Debian's docker.io 20.10 ships it: built into dockerd, driven by its own CLI with DOCKER_BUILDKIT=1.
 * The daemon is the start benchmark's docker peer (private roots, no host networking changes, stopped at the end).
 */
export function buildkitBuilder(opts) {
  const peer = dockerPeer(opts);
  let cli = '';
  let host = [];
  let env = process.env;
  let tag = '';
  return {
    name: 'docker',
    label: 'BuildKit (docker build)',
    steps: true,
    missing: () => peer.missing(),
    async setup(ctx) {
      tag = ctx.tag;
      await peer.setup({ ...ctx, image: ctx.base });
      // The peer's `docker run` case carries the client's daemon address and environment.
      const probe = peer.cases()[0].argv(0);
      cli = probe.cmd;
      host = probe.args.slice(0, probe.args.indexOf('run'));
      env = { ...probe.env, DOCKER_BUILDKIT: '1' };
      const help = run(cli, ['build', '--help'], { env }).stdout;
      if (!help.includes('--progress')) throw new Error(`${cli} build has no BuildKit (--progress); use Debian's docker.io CLI`);
    },
    versions() {
      const v = peer.versions();
      return { dockerd: `${v.dockerd}, BuildKit built in`, 'docker CLI': `${v['docker CLI']}, DOCKER_BUILDKIT=1` };
    },
    argv(kind, dir) {
      const noCache = kind === 'cold' ? ['--no-cache'] : [];
      return { cmd: cli, args: [...host, 'build', ...noCache, '--progress', 'plain', '--network', 'none', '-t', tag, dir], env };
    },
  };
}

// Private containers.conf: the runtime named, cgroupfs (no systemd here), nothing read from the host's config.
const CONTAINERS_CONF = `[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
`;

// buildah writes its blob-info cache here whatever its --root; removed afterwards if this run created it.
const BUILDAH_HOST_PATHS = ['/var/lib/containers/cache/blob-info-cache-v1.boltdb', '/var/lib/containers/cache', '/var/lib/containers'];

/** Debian's buildah: `bud --layers` on private --root/--runroot storage (overlay, else vfs), its own TMPDIR. */
export function buildahBuilder() {
  const bin = which('buildah');
  let global = [];
  let env = process.env;
  let tag = '';
  let cgroupParent = '';
  let driver = '';
  return {
    name: 'buildah',
    label: 'buildah bud --layers',
    steps: false,
    missing: () => (bin ? null : 'buildah not found in PATH'),
    async setup(ctx) {
      const dir = join(ctx.work, 'buildah');
      tag = ctx.tag;
      cgroupParent = `/${ctx.token}-buildah`;
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      writeFileSync(join(dir, 'containers.conf'), CONTAINERS_CONF);
      env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf'), TMPDIR: join(dir, 'tmp') };
      const hostPaths = new HostPaths(BUILDAH_HOST_PATHS);
      ctx.cleanup.push('buildah storage', () => {
        if (global.length) {
          run(bin, [...global, 'rm', '-a'], { env });
          run(bin, [...global, 'rmi', '-af'], { env });
        }
        unmountUnder(dir);
        rmSync(dir, { recursive: true, force: true });
        hostPaths.restore();
        for (const g of cgroupsMatching([cgroupParent.slice(1)])) tryRmdir(g);
      });
      const errors = [];
      for (const d of ['overlay', 'vfs']) {
        global = ['--root', join(dir, d, 'root'), '--runroot', join(dir, d, 'runroot'), '--storage-driver', d];
        try {
          const c = must(bin, [...global, 'from', 'scratch'], { env });
          must(bin, [...global, 'add', c, ctx.tarball, '/'], { env });
          must(bin, [...global, 'commit', '--rm', '-q', c, ctx.base], { env });
          driver = d;
          return;
        } catch (e) {
          errors.push(`${d}: ${e.message}`);
          run(bin, [...global, 'rm', '-a'], { env });
          run(bin, [...global, 'rmi', '-af'], { env });
          unmountUnder(join(dir, d));
        }
      }
      global = [];
      throw new Error(`buildah cannot make the base image here (${errors.join('; ')})`);
    },
    versions: () => ({ buildah: `${firstLine(run(bin, ['--version']).stdout)} (storage driver ${driver}, runtime runc)` }),
    argv(kind, dir) {
      const noCache = kind === 'cold' ? ['--no-cache'] : [];
      return {
        cmd: bin,
        args: [...global, 'bud', '--layers', ...noCache, '--network', 'none', '--cgroup-parent', cgroupParent, '-t', tag, dir],
        env,
      };
    },
  };
}
