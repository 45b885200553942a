import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Berth, BERTH } from '../lib/berth.js';
import { makeBusyboxTar, tempDir } from '../lib/busybox-rootfs.js';
import {
  diffConfigs, diffTrees, formatConfigDifference, formatTreeDifference, partitionDifferences, treeManifest, under,
  type Expectation, type TreeManifest,
} from '../lib/oracle.js';

// The builder against an oracle: every Dockerfile in test/fixtures/build-corpus is built by `berth build` and by
// Debian's `buildah bud` from the same context, and the two images must agree on the file tree (path, type, mode,
// owner, size, content, link target, hardlinks) and on the config a Dockerfile sets. buildah runs on a private
// store that is removed afterwards. ORACLE_ONLY=name[,name] runs just those entries, ORACLE_VERBOSE=1 prints the
// accepted differences too, ORACLE_KEEP=1 keeps the contexts and exports.

const CORPUS = fileURLToPath(new URL('../fixtures/build-corpus/', import.meta.url));
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * A corpus entry is a directory: `Dockerfile`, `build.json` (below), and optionally `context/` (the build context,
 * copied to a temp dir), `prepare.sh` (run in that copy: what git cannot hold, i.e. modes, owners, symlinks,
 * hardlinks, archives, mtimes) and `Dockerfile.oracle` (what buildah builds instead, where buildah 1.28 lacks the
 * syntax: the same result spelled with older instructions).
 */
interface EntryMeta {
  description: string;
  /** --build-arg values; `{{httpBase}}` in one becomes the harness's HTTP server (http://127.0.0.1:PORT, see HTTP_FILES). */
  buildArgs?: Record<string, string>;
  target?: string;
  /** Secret id to its content (written to a file outside the context, passed as --secret id=ID,src=FILE). */
  secrets?: Record<string, string>;
  /** Secret id to a variable set in both builders' environment and its value (passed as --secret id=ID,env=VAR). */
  secretEnv?: Record<string, { env: string; value: string }>;
  /** --label k=v, passed to both builders. */
  labels?: Record<string, string>;
  /** Paths whose mtime must agree too (set by the Dockerfile or kept from the context or an archive). */
  mtimes?: string[];
  /** Why Dockerfile.oracle exists (required with it). */
  oracle?: string;
  /** Flags given to buildah only, with Dockerfile.oracle: what buildah 1.28 spells build-wide (e.g. --network). */
  oracleFlags?: string[];
  /** Images built first, by both, from other Dockerfiles in the entry (for ONBUILD and FROM <built image>). */
  prebuild?: { file: string; tag: string }[];
}

/**
 * Entries berth gets wrong today (berth bugs, each with what Docker and buildah do). They still run, as todo: the
 * lead removes an entry here once the builder is fixed.
 */
const KNOWN_FAILURES: Record<string, string> = {
};

/**
 * Differences that are not bugs, in one place, each with its reason. "oracle:" lines are where buildah 1.28
 * differs from Docker/BuildKit and berth follows Docker (docs/compat.md, "Builder", lists them too). A deliberate
 * difference of berth's own that shows in a tree or config would go here as a "berth:" line; none does today.
 */
const EXPECTED: Expectation[] = [
  {
    reason: 'oracle: buildah stamps its version as a label',
    config: (d) => d.field === 'Labels' && d.key === 'io.buildah.version' && d.ours === undefined,
  },
  {
    reason: 'oracle: buildah leaves /run (its mount point for /run/.containerenv and /run/secrets) in a RUN layer; '
      + 'BuildKit removes the mount stubs it created, and so does berth',
    tree: (d) => d.kind === 'only-theirs' && d.path === '/run' && d.theirs.type === 'dir',
  },
  {
    reason: 'oracle: buildah leaves the directories it created for a RUN --mount target; BuildKit removes empty mount '
      + 'stubs with their created parents, and so does berth',
    tree: (d, { entry }) => d.kind === 'only-theirs' && d.theirs.type === 'dir' && (MOUNT_STUBS[entry] ?? []).includes(d.path),
  },
  {
    reason: 'oracle: buildah creates VOLUME directories in the image; BuildKit only records them in the config, and so does berth',
    tree: (d, { theirs }) => d.kind === 'only-theirs' && d.theirs.type === 'dir' && hasKey(theirs.Volumes, d.path),
  },
  {
    reason: 'oracle: buildah moves a variable that ENV sets again to the end of Env; BuildKit (addEnv) and berth replace it in place',
    config: (d) => d.field === 'Env' && movedToEnd(d.ours, d.theirs),
  },
  {
    reason: 'oracle: buildah keeps EXPOSE 9000/TCP as written; Docker (nat.ParsePortSpecs) and berth lower-case the protocol',
    config: (d, { ours, theirs }) => d.field === 'ExposedPorts' && d.key !== undefined && (d.key !== d.key.toLowerCase()
      ? d.ours === undefined && hasKey(ours.ExposedPorts, d.key.toLowerCase())
      : d.theirs === undefined && Object.keys((theirs.ExposedPorts ?? {}) as object).some((k) => k !== d.key && k.toLowerCase() === d.key)),
  },
  {
    reason: 'oracle: buildah keeps EXPOSE 8000-8002 as one "8000-8002/tcp" key; Docker (nat.ParsePortSpecs, BuildKit parsePortSpecs) '
      + 'and berth expose each port of the range',
    config: (d, { ours, theirs }) => d.field === 'ExposedPorts' && d.key !== undefined && (rangePorts(d.key)
      ? d.ours === undefined && rangePorts(d.key)!.every((p) => hasKey(ours.ExposedPorts, p))
      : d.theirs === undefined && Object.keys((theirs.ExposedPorts ?? {}) as object).some((k) => rangePorts(k)?.includes(d.key!))),
  },
  {
    reason: 'oracle: buildah wraps shell-form CMD and ENTRYPOINT in /bin/sh -c even after SHELL; BuildKit (withShell) and berth use the SHELL',
    entries: ['shell'],
    config: (d) => (d.field === 'Cmd' || d.field === 'Entrypoint') && Array.isArray(d.ours) && Array.isArray(d.theirs)
      && d.ours.length > 2 && d.ours.at(-1) === d.theirs.at(-1) && JSON.stringify(d.theirs.slice(0, -1)) === '["/bin/sh","-c"]',
  },
  {
    reason: 'oracle: buildah drops the setgid bit of directories it copies; BuildKit (fsutil copy chmods with the full mode) and berth keep it',
    tree: (d) => d.kind === 'field' && d.type === 'dir' && d.field === 'mode' && d.ours === (Number(d.theirs) | 0o2000) && d.ours !== d.theirs,
  },
  {
    reason: 'oracle: buildah bind-mounts the raw context dir, .dockerignore not applied; BuildKit mounts the context it was sent '
      + '(without the ignored files), and so does berth',
    entries: ['dockerignore-self'],
    tree: (d) => d.kind === 'field' && d.path === '/bind-listing.txt' && (d.field === 'size' || d.field === 'digest'),
  },
];

/** The ports of an exposed range key ("8000-8002/tcp" -> 8000/tcp, 8001/tcp, 8002/tcp), or undefined for one port. */
function rangePorts(key: string): string[] | undefined {
  const m = /^(\d+)-(\d+)\/(\w+)$/.exec(key);
  if (!m) return undefined;
  const out: string[] = [];
  for (let p = Number(m[1]); p <= Number(m[2]); p++) out.push(`${p}/${m[3]!.toLowerCase()}`);
  return out;
}

/** Per entry, the mount stubs buildah leaves behind (see EXPECTED). */
const MOUNT_STUBS: Record<string, string[]> = {
  'run-mount-bind': ['/mnt'],
  'run-mount-cache': ['/var/cache'],
  'run-mount-secret': ['/etc/app', '/run/secrets'],
  'run-mount-tmpfs': ['/scratch'],
  'secret-env': ['/run/secrets'],
};

/** True when `theirs` is `ours` with some entries moved, in any order, to the end (same entries otherwise). */
function movedToEnd(ours: unknown, theirs: unknown): boolean {
  if (!Array.isArray(ours) || !Array.isArray(theirs) || ours.length !== theirs.length) return false;
  if (!ours.every((e) => theirs.includes(e))) return false; // an entry differs, not only its place
  // Drop from `ours` the entries that sit in theirs' tail and see whether the rest keeps its order.
  for (let cut = theirs.length; cut >= 0; cut--) {
    const tailSet = new Set(theirs.slice(cut));
    const head = ours.filter((e) => !tailSet.has(e));
    if (JSON.stringify(head) === JSON.stringify(theirs.slice(0, cut))) return true;
  }
  return false;
}

function hasKey(m: unknown, k: string): boolean {
  return typeof m === 'object' && m !== null && k in m;
}

// ---------------------------------------------------------------------------------------------------------------

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 180_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? 128, stdout, stderr }); });
  });
}

async function ok(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${tail(r.stderr + r.stdout)}`);
  return r.stdout.trim();
}

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const tail = (s: string, n = 25) => s.trim().split('\n').slice(-n).join('\n');

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  if (spawnSync('buildah', ['--version']).status !== 0) return 'buildah is not installed (apt-get install buildah; scripts/setup.sh does)';
  if (!existsSync(fileURLToPath(new URL('../../dist/berth.mjs', import.meta.url)))) return 'berth is not built (npm run build)';
  return false;
}

const entries = existsSync(CORPUS) ? readdirSync(CORPUS).filter((n) => existsSync(join(CORPUS, n, 'Dockerfile'))).sort() : [];
const only = process.env.ORACLE_ONLY?.split(',').filter(Boolean);

/** A private buildah store (root, runroot, overlay driver) and the containers.conf this host needs. */
class Buildah {
  private readonly env: NodeJS.ProcessEnv;
  private readonly base: string[];

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'containers.conf');
    // runc (crun is not installed); nofile within what root may set here (no CAP_SYS_RESOURCE).
    writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=20000:20000"]\n\n[engine]\nruntime = "runc"\n');
    this.env = { CONTAINERS_CONF: conf, BUILDAH_ISOLATION: 'oci', TMPDIR: dir };
    this.base = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'overlay'];
  }

  ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    return ok('buildah', [...this.base, ...args], { env: { ...env, ...this.env } });
  }

  run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
    return run('buildah', [...this.base, ...args], { env: { ...env, ...this.env } });
  }

  /** Commits an image from a rootfs tar, like `berth import -c "ENV ..."`. */
  async importTar(tar: string, name: string, env: string[]): Promise<void> {
    const ctr = await this.ok(['from', 'scratch']);
    try {
      await this.ok(['add', ctr, tar, '/']);
      for (const e of env) await this.ok(['config', '--env', e, ctr]);
      await this.ok(['commit', '--format', 'docker', ctr, name]);
    } finally {
      await this.run(['rm', ctr]);
    }
  }

  /** The image's root filesystem as a manifest, through a working container (`from` only prints ONBUILD triggers). */
  async tree(image: string): Promise<TreeManifest> {
    const ctr = `${image}-oracle`;
    await this.ok(['from', '--pull=never', '--name', ctr, image]);
    try {
      return treeManifest(await this.ok(['mount', ctr]));
    } finally {
      await this.run(['umount', ctr]);
      await this.run(['rm', ctr]);
    }
  }

  async config(image: string): Promise<Record<string, unknown>> {
    const info = JSON.parse(await this.ok(['inspect', '--type', 'image', image])) as { Docker: { config?: Record<string, unknown>; author?: string } };
    return { ...(info.Docker.config ?? {}), Author: info.Docker.author };
  }

  async destroy(): Promise<void> {
    await this.run(['rm', '--all']);
    await this.run(['rmi', '--all', '--force']);
    // The overlay driver may keep its home bind-mounted; deepest first.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(`${this.dir}/`));
    for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function berthRun(b: Berth, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(BERTH, ['--root', b.root, ...args], { env });
}

async function berthOk(b: Berth, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return ok(BERTH, ['--root', b.root, ...args], { env });
}

/** berth's image root filesystem: a container's export, unpacked with owners and modes. */
async function berthTree(b: Berth, image: string, work: string): Promise<TreeManifest> {
  const ctr = await berthOk(b, ['create', image, '/oracle-none']);
  const tar = join(work, 'export.tar');
  const dir = join(work, 'rootfs');
  try {
    await berthOk(b, ['export', '-o', tar, ctr]);
    mkdirSync(dir);
    await ok('tar', ['--numeric-owner', '--same-owner', '-xpf', tar, '-C', dir]);
    return treeManifest(dir);
  } finally {
    await berthRun(b, ['rm', '-f', ctr]);
    rmSync(tar, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

async function berthConfig(b: Berth, image: string): Promise<Record<string, unknown>> {
  const [info] = JSON.parse(await berthOk(b, ['inspect', image])) as { Config?: Record<string, unknown>; Author?: string }[];
  return { ...(info!.Config ?? {}), Author: info!.Author };
}

/**
 * What the harness's HTTP server serves (for ADD <url>): path to body, each with the same Last-Modified (ADD gives
 * the file that mtime, in Docker and buildah alike).
 */
const HTTP_FILES: Record<string, string> = {
  '/checksummed.txt': 'checksummed body\n', // sha256:e6477bf5e051a6514596a86b39ce315259c23ef25c0b7d18b339fd542d45650a
  '/plain.txt': 'plain body, no checksum\n',
};
const HTTP_LAST_MODIFIED = 'Wed, 21 Oct 2015 07:28:00 GMT';

/** Serves HTTP_FILES on 127.0.0.1 (a random port); resolves to the server and its base URL. */
function startHttp(): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const body = HTTP_FILES[new URL(req.url ?? '/', 'http://x').pathname];
    if (body === undefined) {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), 'Last-Modified': HTTP_LAST_MODIFIED });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  });
}

function buildFlags(meta: EntryMeta, secretsDir: string, httpBase: string): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(meta.buildArgs ?? {})) out.push('--build-arg', `${k}=${v.replaceAll('{{httpBase}}', httpBase)}`);
  if (meta.target) out.push('--target', meta.target);
  for (const id of Object.keys(meta.secrets ?? {})) out.push('--secret', `id=${id},src=${join(secretsDir, id)}`);
  for (const [id, s] of Object.entries(meta.secretEnv ?? {})) out.push('--secret', `id=${id},env=${s.env}`);
  for (const [k, v] of Object.entries(meta.labels ?? {})) out.push('--label', `${k}=${v}`);
  return out;
}

describe('the oracle comparison itself', { skip: process.getuid?.() !== 0 && 'needs root (chown)' }, () => {
  it('reports every field that differs, paths on one side only, hardlinks and config keys', () => {
    const a = tempDir('berth-oracle-a-');
    const b = tempDir('berth-oracle-b-');
    try {
      for (const d of [a, b]) {
        mkdirSync(join(d, 'etc'));
        writeFileSync(join(d, 'etc/same'), 'x');
        writeFileSync(join(d, 'etc/file'), d === a ? 'one' : 'two!');
        symlinkSync(d === a ? 'same' : 'file', join(d, 'etc/link'));
        mkdirSync(join(d, 'proc/self'), { recursive: true }); // ignored: a runtime mount point
      }
      writeFileSync(join(a, 'only-a'), '');
      linkSync(join(b, 'etc/same'), join(b, 'etc/same-hardlink'));
      writeFileSync(join(a, 'etc/same-hardlink'), 'x');
      for (const f of ['only-a', 'etc/same', 'etc/file', 'etc/same-hardlink']) chmodSync(join(a, f), 0o644);
      chmodSync(join(b, 'etc/file'), 0o644);
      chmodSync(join(b, 'etc/same'), 0o600);
      chownSync(join(b, 'etc/file'), 7, 8);
      const diffs = diffTrees(treeManifest(a), treeManifest(b)).map((d) => formatTreeDifference(d));
      assert.deepEqual(diffs, [
        '/etc/file: uid berth 0, buildah 7',
        '/etc/file: gid berth 0, buildah 8',
        '/etc/file: size berth 3, buildah 4',
        `/etc/file: digest berth "${sha256hex('one')}", buildah "${sha256hex('two!')}"`,
        '/etc/link: target berth "same", buildah "file"',
        '/etc/same: mode berth 0644, buildah 0600',
        '/etc/same: linkGroup berth undefined, buildah "/etc/same"',
        '/etc/same-hardlink: mode berth 0644, buildah 0600',
        '/etc/same-hardlink: linkGroup berth undefined, buildah "/etc/same"',
        '/only-a: only in berth (file 0644 0:0 0 bytes)',
      ]);
      assert.deepEqual(diffTrees(treeManifest(a), treeManifest(a)), []);
    } finally {
      rmSync(a, { recursive: true, force: true });
      rmSync(b, { recursive: true, force: true });
    }
    const c = diffConfigs(
      { Env: ['A=1'], Cmd: null, Labels: { k: 'v', same: 's' }, Healthcheck: { Test: ['NONE'], Interval: 0 } },
      { Env: ['A=2'], Cmd: [], Labels: { same: 's' }, Healthcheck: { Test: ['NONE'] }, StopSignal: 'SIGKILL' },
    ).map((d) => formatConfigDifference(d));
    assert.deepEqual(c, [
      'config Env: berth ["A=1"], buildah ["A=2"]',
      'config Labels["k"]: berth "v", buildah unset',
      'config StopSignal: berth unset, buildah "SIGKILL"',
    ]);
  });
});

const skip = skipReason();

describe('berth build against buildah bud (build corpus)', { skip, concurrency: 2 }, () => {
  let berth: Berth;
  let buildah: Buildah;
  let work: string;
  let http: { server: Server; base: string } | undefined;

  before(async () => {
    http = await startHttp();
    work = tempDir('berth-oracle-');
    berth = new Berth();
    buildah = new Buildah(join(work, 'buildah'));
    const tar = makeBusyboxTar(work);
    // busybox has PATH set, as real base images do; busybox-nopath is the bare import.
    await berthOk(berth, ['import', '-c', `ENV ${DEFAULT_PATH}`, tar, 'busybox:latest']);
    await berthOk(berth, ['import', tar, 'busybox-nopath:latest']);
    await buildah.importTar(tar, 'busybox:latest', [DEFAULT_PATH]);
    await buildah.importTar(tar, 'busybox-nopath:latest', []);
    rmSync(tar, { force: true });
  });

  after(async () => {
    if (http) await new Promise<void>((resolve) => { http!.server.closeAllConnections(); http!.server.close(() => resolve()); });
    const left = berth ? berth.destroy() : [];
    if (buildah) await buildah.destroy();
    if (work && !process.env.ORACLE_KEEP) rmSync(work, { recursive: true, force: true });
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => work && l.split(' ')[1]?.startsWith(work));
    assert.deepEqual([...left, ...mounts], [], 'the oracle run left state behind');
  });

  it('has a corpus of at least 40 entries, each with a description', () => {
    assert.ok(entries.length >= 40, `only ${entries.length} entries`);
    for (const e of entries) {
      const meta = JSON.parse(readFileSync(join(CORPUS, e, 'build.json'), 'utf8')) as EntryMeta;
      assert.ok(meta.description, `${e}: build.json needs a description`);
      assert.equal(existsSync(join(CORPUS, e, 'Dockerfile.oracle')), Boolean(meta.oracle), `${e}: Dockerfile.oracle and "oracle" (its reason) go together`);
      assert.ok(!meta.oracleFlags || meta.oracle, `${e}: "oracleFlags" needs Dockerfile.oracle and "oracle"`);
    }
    for (const k of Object.keys(KNOWN_FAILURES)) assert.ok(entries.includes(k), `KNOWN_FAILURES names ${k}, which is not in the corpus`);
  });

  for (const name of entries) {
    if (only && !only.includes(name)) continue;
    const todo = KNOWN_FAILURES[name];
    it(name, { ...(todo ? { todo } : {}) }, async () => {
      const dir = join(CORPUS, name);
      const meta = JSON.parse(readFileSync(join(dir, 'build.json'), 'utf8')) as EntryMeta;
      const ew = join(work, 'entries', name);
      const ctx = join(ew, 'context');
      mkdirSync(ctx, { recursive: true });
      try {
        if (existsSync(join(dir, 'context'))) cpSync(join(dir, 'context'), ctx, { recursive: true });
        if (existsSync(join(dir, 'prepare.sh'))) await ok('sh', ['-e', join(dir, 'prepare.sh')], { cwd: ctx });
        const secrets = join(ew, 'secrets');
        mkdirSync(secrets);
        for (const [id, v] of Object.entries(meta.secrets ?? {})) writeFileSync(join(secrets, id), v);
        const flags = buildFlags(meta, secrets, http!.base);
        const env = Object.fromEntries(Object.values(meta.secretEnv ?? {}).map((s) => [s.env, s.value]));
        const tag = `corpus-${name}`;

        for (const p of meta.prebuild ?? []) {
          await berthOk(berth, ['build', '--progress', 'plain', '-f', join(dir, p.file), '-t', p.tag, ...flags, ctx], env);
          await buildah.ok(['bud', '--format', 'docker', '--layers=false', '--pull=never', '-f', join(dir, p.file), '-t', p.tag, ...flags, ctx], env);
        }
        const oracleFile = join(dir, meta.oracle ? 'Dockerfile.oracle' : 'Dockerfile');
        const [ours, theirs] = await Promise.all([
          berthRun(berth, ['build', '--progress', 'plain', '-f', join(dir, 'Dockerfile'), '-t', tag, ...flags, ctx], env),
          buildah.run(['bud', '--format', 'docker', '--layers=false', '--pull=never', '-f', oracleFile, '-t', tag, ...flags, ...meta.oracleFlags ?? [], ctx], env),
        ]);
        assert.equal(theirs.code, 0, `buildah bud failed (the corpus entry is wrong):\n${tail(theirs.stderr + theirs.stdout)}`);
        assert.equal(ours.code, 0, `berth build failed:\n${tail(ours.stderr)}`);

        const mtimes = meta.mtimes ?? [];
        const tw = join(ew, 'berth');
        mkdirSync(tw);
        const [ourTree, theirTree, ourConfig, theirConfig] = await Promise.all([
          berthTree(berth, tag, tw), buildah.tree(tag), berthConfig(berth, tag), buildah.config(tag),
        ]);
        const treeDiffs = diffTrees(ourTree, theirTree, (p) => under(p, mtimes));
        const configDiffs = diffConfigs(ourConfig, theirConfig);
        const { unexpected, accepted } = partitionDifferences(treeDiffs, configDiffs, EXPECTED, { entry: name, ours: ourConfig, theirs: theirConfig });
        if (process.env.ORACLE_VERBOSE && accepted.length) console.log(`${name}: accepted\n  ${accepted.join('\n  ')}`);
        assert.ok(ourTree.size > 0 || theirTree.size === 0, 'berth exported an empty tree');
        assert.deepEqual(unexpected, [], `${name}: berth and buildah differ:\n  ${unexpected.join('\n  ')}`);
      } finally {
        if (!process.env.ORACLE_KEEP) rmSync(ew, { recursive: true, force: true });
      }
    });
  }
});
