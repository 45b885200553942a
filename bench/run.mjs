#!/usr/bin/env node
// berth's benchmark harness, two suites: `start` (container start time and monitor memory, berth side by side with
// runc, podman and docker) and `build` (one Dockerfile built by berth, BuildKit and buildah, and the layer commit
// rate). Usage: node bench/run.mjs [--suite start|build|all] [--runs N] [--warmups N] [--only LIST] [--sleepers N]
// [--layer-mb N] [--docker-cli PATH] [--out FILE] [--no-write]. See bench/README.md.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup, sweep } from './lib/cleanup.mjs';
import { memoryKiB, must, run, sleep } from './lib/host.mjs';
import { NOTES_MARKER, memoryTable, resultsMarkdown, startTable, text } from './lib/report.mjs';
import { median, ratio, summarize } from './lib/stats.mjs';
import { BUILD_MARKER, buildMarkdown, buildText, goalLine } from './build/report.mjs';
import { buildSuite } from './build/suite.mjs';
import { berthPeer } from './peers/berth.mjs';
import { dockerPeer } from './peers/docker.mjs';
import { nodePeer } from './peers/node.mjs';
import { podmanPeer } from './peers/podman.mjs';
import { runcPeer } from './peers/runc.mjs';

const REPO = fileURLToPath(new URL('../', import.meta.url));
// Engine names --only takes: the start suite's peers and the build suite's builders (docker is BuildKit there).
const ALL = ['berth', 'runc', 'podman', 'docker', 'node', 'buildah'];
const SUITES = ['start', 'build'];
/** Per-suite defaults for --runs and --warmups (a build round takes seconds, a start round well under one). */
const DEFAULTS = { start: { runs: 20, warmups: 3 }, build: { runs: 5, warmups: 1 } };
const USAGE = `Usage: node bench/run.mjs [--suite start|build|all] [--runs N] [--warmups N] [--only ${ALL.join(',')}]
                          [--sleepers N] [--layer-mb N] [--docker-cli PATH] [--workdir DIR] [--out FILE] [--no-write]`;

/** Where every engine's private state and the build context live (--workdir); all engines share one file system. */
const DEFAULT_WORKDIR = tmpdir();

function parseArgs(argv) {
  const o = {
    suites: SUITES, runs: undefined, warmups: undefined, only: ALL, sleepers: 5, layerMb: 100, dockerCli: undefined,
    out: join(REPO, 'bench/RESULTS.md'), write: true, workdir: DEFAULT_WORKDIR,
  };
  const count = (v, name, min) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} needs an integer >= ${min}, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? (() => { throw new Error(`${flag} needs a value`); })();
    switch (flag) {
      case '--runs': o.runs = count(value(), 'runs', 1); break;
      case '--warmups': o.warmups = count(value(), 'warmups', 0); break;
      case '--sleepers': o.sleepers = count(value(), 'sleepers', 0); break;
      case '--layer-mb': o.layerMb = count(value(), 'layer-mb', 0); break;
      case '--suite': {
        const v = value();
        if (v !== 'all' && !SUITES.includes(v)) throw new Error(`--suite takes start, build or all; got "${v}"`);
        o.suites = v === 'all' ? SUITES : [v];
        break;
      }
      case '--docker-cli': o.dockerCli = value(); break;
      case '--out': o.out = value(); break;
      case '--workdir': o.workdir = value(); break;
      case '--no-write': o.write = false; break;
      case '--only': {
        o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
        const bad = o.only.filter((n) => !ALL.includes(n));
        if (bad.length || !o.only.length) throw new Error(`--only takes a comma list of ${ALL.join(', ')}; got "${bad.join(',')}"`);
        break;
      }
      case '-h': case '--help': process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: throw new Error(`unknown argument "${argv[i]}"\n${USAGE}`);
    }
  }
  return o;
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function machine(loadBefore, workdir) {
  const cgroup = existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : 'v1';
  return {
    nproc: String(availableParallelism()),
    kernel: release(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    cgroups: cgroup,
    'load average (1/5/15 min) before, after': `${loadBefore}; ${loadavg()}`,
    'work dir (engines\' state, build context)': workdir,
  };
}

const log = (s) => process.stderr.write(`${s}\n`);
/** `cleanup`: the running suite's undo stack, run by the signal handlers. */
const state = { interrupted: false, cleanup: null };
/** Lets signal handlers run between timed commands (the commands themselves are spawned synchronously). */
const yieldToSignals = () => new Promise((r) => setImmediate(r));

/** Times every case: warm-ups first, then `runs` rounds, each running every case once in a rotated order. */
async function timeCases(cases, o, failures) {
  const samples = new Map(cases.map((c) => [c, []]));
  const broken = new Set();
  let invocation = 0;
  const once = (c) => {
    const { cmd, args, env } = c.argv(invocation++);
    const r = run(cmd, args, { env, timeout: 60_000 });
    if (r.code !== 0) {
      broken.add(c);
      const msg = (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ');
      failures.push(`${c.label}: \`${basename(cmd)} ${args.slice(-4).join(' ')}\` exited ${r.code}: ${msg}`);
      log(`  ${c.label} FAILED (exit ${r.code}): ${msg}`);
      return null;
    }
    return r.ms;
  };
  for (const c of cases) {
    log(`warm-up: ${c.label} x${o.warmups}`);
    for (let i = 0; i < o.warmups && !broken.has(c) && !state.interrupted; i++) {
      once(c);
      await yieldToSignals();
    }
  }
  for (let round = 0; round < o.runs && !state.interrupted; round++) {
    const order = cases.map((_, i) => cases[(i + round) % cases.length]);
    for (const c of order) {
      if (broken.has(c)) continue;
      const t = once(c);
      if (t !== null) samples.get(c).push(t);
      await yieldToSignals();
    }
    if ((round + 1) % 5 === 0 || round + 1 === o.runs) log(`round ${round + 1}/${o.runs}`);
  }
  const medianOf = (peer) => {
    const c = cases.find((x) => x.peer === peer && !x.reference && !broken.has(x));
    return c ? median(samples.get(c)) : NaN;
  };
  const podman = medianOf('podman');
  const runc = medianOf('runc');
  return cases.map((c) => {
    if (broken.has(c)) return { label: c.label, peer: c.peer, reference: c.reference, error: true };
    const s = summarize(samples.get(c));
    return { label: c.label, peer: c.peer, reference: !!c.reference, ...s, xPodman: ratio(s.median, podman), xRunc: ratio(s.median, runc) };
  });
}

/** Starts `n` sleepers per engine, reads its monitors' memory, removes them. */
async function measureMonitors(peers, n, failures) {
  const rows = [];
  const daemons = [];
  for (const p of peers) {
    const m = p.monitors;
    if (!m || n === 0 || state.interrupted) continue;
    log(`memory: ${n} x ${p.name} sleeper`);
    let ids = [];
    try {
      const started = await m.start(n);
      ids = started.ids;
      await sleep(1000);
      const mem = started.pids.map(memoryKiB);
      const rss = mem.map((x) => x.rss);
      rows.push({ engine: p.name, process: m.name, n, rssMedian: median(rss), rssMax: Math.max(...rss), pssMedian: median(mem.map((x) => x.pss)) });
      for (const d of m.daemons?.() ?? []) {
        const ms = d.pids.filter(Boolean).map(memoryKiB);
        daemons.push({ engine: p.name, label: d.label, rss: ms.reduce((a, x) => a + x.rss, 0), pss: ms.reduce((a, x) => a + x.pss, 0) });
      }
    } catch (e) {
      failures.push(`memory ${p.name}: ${e.message}`);
      rows.push({ engine: p.name, process: m.name, error: true });
    } finally {
      m.stop(ids);
    }
  }
  const podman = rows.find((r) => r.engine === 'podman' && !r.error)?.rssMedian;
  for (const r of rows) r.xPodman = ratio(r.rssMedian, podman);
  return { rows, daemons };
}

/**
 * Runs `fn` with a fresh work dir (`DIR/berth-bench-XXXXXX` for --workdir DIR, its name the token) and an undo stack whose first
 * step is the sweep; the stack runs when `fn` returns or throws, or on a signal (then the process exits 130).
 */
async function inWorkDir(base, fn) {
  const work = mkdtempSync(join(base, 'berth-bench-'));
  const token = basename(work);
  const cleanup = new Cleanup();
  cleanup.push('sweep', async () => {
    for (const l of await sweep(work, [token])) cleanup.warnings.push(`left behind by a peer, removed by the sweep: ${l}`);
  });
  state.cleanup = cleanup;
  try {
    return await fn({ work, token, cleanup });
  } finally {
    if (!state.interrupted) await cleanup.run();
    state.cleanup = null;
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (state.interrupted) return;
    state.interrupted = true;
    log(`\n${sig}: cleaning up`);
    (state.cleanup?.run() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

/**
 * Rewrites one suite's generated part of RESULTS.md: the start part (from the top to BUILD_MARKER), the build part
 * (from BUILD_MARKER to NOTES_MARKER); the other part and the hand-written notes below NOTES_MARKER are kept.
 */
function spliceResults(old, part) {
  const at = old.indexOf(NOTES_MARKER);
  const generated = at >= 0 ? old.slice(0, at) : old;
  const notes = at >= 0 ? old.slice(at) : `${NOTES_MARKER}\n`;
  const b = generated.indexOf(BUILD_MARKER);
  let start = b >= 0 ? generated.slice(0, b) : generated;
  let build = b >= 0 ? generated.slice(b) : '';
  if (part.start !== undefined) start = part.start;
  if (part.build !== undefined) build = part.build;
  if (!start.trim()) start = '# berth benchmark results\n\n(The start suite has not been run yet: `node bench/run.mjs --suite start`.)\n';
  return `${start.trimEnd()}\n\n${build.trim() ? `${build.trimEnd()}\n\n` : ''}${notes}`;
}

function writeResults(o, part) {
  if (!o.write) return;
  const old = existsSync(o.out) ? readFileSync(o.out, 'utf8') : '';
  writeFileSync(o.out, spliceResults(old, part));
  process.stdout.write(`\nwrote ${o.out}\n`);
}

/** The start suite: container start times and monitor memory. Returns false if a measured command failed. */
async function startSuite(o, argv) {
  const runs = o.runs ?? DEFAULTS.start.runs;
  const warmups = o.warmups ?? DEFAULTS.start.warmups;
  const so = { ...o, runs, warmups, only: o.only.filter((n) => n !== 'buildah') };
  if (!so.only.length) {
    log('start suite: nothing selected by --only');
    return true;
  }
  const loadBefore = loadavg();
  const failures = [];
  const skipped = [];
  let versions = {};
  let start = [];
  let memory = { rows: [], daemons: [] };
  const warnings = await inWorkDir(o.workdir, async ({ work, token, cleanup }) => {
    const image = 'berth-bench-busybox:latest';
    const tarball = join(work, 'busybox.tar');
    must('bash', [join(REPO, 'scripts/make-busybox-image.sh'), tarball]);
    const ctx = { work, tarball, image, token, cleanup, opts: so };
    const makers = { berth: berthPeer, runc: runcPeer, podman: podmanPeer, docker: dockerPeer, node: nodePeer };
    const peers = [];
    for (const name of so.only) {
      const p = makers[name](so);
      const why = p.missing();
      if (why) {
        skipped.push([name, why]);
        log(`skipping ${name}: ${why}`);
        continue;
      }
      log(`setting up ${name}`);
      try {
        await p.setup(ctx);
        peers.push(p);
      } catch (e) {
        skipped.push([name, `setup failed: ${e.message}`]);
        log(`skipping ${name}: setup failed: ${e.message}`);
      }
      if (state.interrupted) return cleanup.warnings;
    }
    for (const p of peers) Object.assign(versions, p.versions());
    start = await timeCases(peers.flatMap((p) => p.cases()), so, failures);
    memory = await measureMonitors(peers, so.sleepers, failures);
    return cleanup.warnings;
  });
  if (state.interrupted) return false;
  if (!start.length) {
    for (const [n, why] of skipped) log(`skipped ${n}: ${why}`);
    log('bench: start suite: nothing was measured');
    return false;
  }

  const podmanMedian = start.find((r) => r.peer === 'podman' && !r.reference && !r.error)?.median;
  const berthRow = start.find((r) => r.peer === 'berth' && !r.reference && !r.error);
  const goal =
    berthRow && Number.isFinite(podmanMedian)
      ? `Goal (berth median <= 0.67x podman's): ${berthRow.xPodman <= 0.67 ? 'met' : 'not met'} ` +
        `(${berthRow.median.toFixed(1)} ms vs ${(0.67 * podmanMedian).toFixed(1)} ms allowed).`
      : '';
  const result = {
    argv, date: new Date().toISOString(), machine: machine(loadBefore, o.workdir), versions, runs, warmups, sleepers: so.sleepers,
    start, memory: memory.rows, daemons: memory.daemons, goal, skipped, failures, warnings,
  };

  process.stdout.write(`\nContainer start (${runs} runs after ${warmups} warm-ups)\n${text(startTable(start))}\n`);
  if (goal) process.stdout.write(`${goal}\n`);
  if (memory.rows.length) process.stdout.write(`\nMonitor memory (${so.sleepers} sleepers each)\n${text(memoryTable(memory.rows))}\n`);
  for (const d of memory.daemons) process.stdout.write(`  ${d.engine} ${d.label}: RSS ${(d.rss / 1024).toFixed(1)} MiB\n`);
  for (const [n, why] of skipped) process.stdout.write(`skipped ${n}: ${why}\n`);
  for (const w of [...failures, ...warnings]) process.stdout.write(`! ${w}\n`);
  writeResults(o, { start: resultsMarkdown(result) });
  return failures.length === 0;
}

/** The build suite: berth build vs BuildKit vs buildah, and the layer commit rate. Returns false if a build failed. */
async function runBuildSuite(o, argv) {
  const runs = o.runs ?? DEFAULTS.build.runs;
  const warmups = o.warmups ?? DEFAULTS.build.warmups;
  const bo = { ...o, runs, warmups };
  const loadBefore = loadavg();
  let r = null;
  const warnings = await inWorkDir(o.workdir, async ({ work, token, cleanup }) => {
    r = await buildSuite(bo, { work, token, cleanup, log, interrupted: () => state.interrupted });
    return cleanup.warnings;
  });
  if (state.interrupted || !r) return false;
  const measured = r.rows.some((x) => !x.error) || r.layer;
  if (!measured) {
    for (const [n, why] of r.skipped) log(`skipped ${n}: ${why}`);
    log('bench: build suite: nothing was measured');
    return false;
  }
  const result = {
    ...r, argv, date: new Date().toISOString(), machine: machine(loadBefore, o.workdir), runs, warmups, goal: goalLine(r.rows),
    warnings: [...r.notices, ...warnings],
  };
  process.stdout.write(`\n${buildText(result)}\n`);
  for (const [n, why] of r.skipped) process.stdout.write(`skipped ${n}: ${why}\n`);
  for (const w of [...r.failures, ...result.warnings]) process.stdout.write(`! ${w}\n`);
  writeResults(o, { build: buildMarkdown(result) });
  return r.failures.length === 0;
}

async function main() {
  const argv = process.argv.slice(2);
  const o = parseArgs(argv);
  let ok = true;
  for (const suite of o.suites) {
    if (state.interrupted) return;
    ok = (suite === 'start' ? await startSuite(o, argv) : await runBuildSuite(o, argv)) && ok;
  }
  if (!ok) process.exitCode = 1;
}

main().catch((e) => {
  log(`bench: ${e instanceof Error ? e.message : e}`);
  process.exit(2);
});
