// The build benchmark: the same two-stage Dockerfile built by berth, BuildKit and buildah, side by side in one run
// (cold, rebuilt unchanged, rebuilt after one source changed), then the layer commit rate. Called by bench/run.mjs.
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { must, run } from '../lib/host.mjs';
import { median, ratio, summarize } from '../lib/stats.mjs';
import { berthBuilder, buildahBuilder, buildkitBuilder } from './builders.mjs';
import { layerRate } from './layer-rate.mjs';
import { BASE_IMAGE, TAG, editor, writeProject } from './project.mjs';
import { parseSteps } from './steps.mjs';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Builders in table order; the names are what --only selects (docker = BuildKit). */
export const BUILDERS = ['berth', 'docker', 'buildah'];
export const KINDS = /** @type {const} */ (['cold', 'warm', 'edit']);
export const KIND_LABEL = { cold: 'cold (--no-cache)', warm: 'rebuild, nothing changed', edit: 'rebuild, 1 source changed' };

/**
 * @typedef {object} SuiteContext
 * @property {string} work   this run's temp dir
 * @property {string} token
 * @property {import('../lib/cleanup.mjs').Cleanup} cleanup
 * @property {(s: string) => void} log
 * @property {() => boolean} interrupted
 */

/**
 * Runs the build suite with options `o` (runs, warmups, only, layerMb, dockerCli). Everything it creates is
 * registered on ctx.cleanup; the caller runs it. Returns the numbers for the report.
 */
export async function buildSuite(o, ctx) {
  const { work, log } = ctx;
  const skipped = [];
  const failures = [];
  const versions = {};
  const tarball = join(work, 'busybox.tar');
  must('bash', [join(REPO, 'scripts/make-busybox-image.sh'), tarball]);
  const bctx = { work, tarball, base: BASE_IMAGE, tag: TAG, token: ctx.token, cleanup: ctx.cleanup, opts: o };
  const makers = { berth: berthBuilder, docker: buildkitBuilder, buildah: buildahBuilder };
  const active = [];
  for (const name of BUILDERS.filter((n) => o.only.includes(n))) {
    const b = makers[name](o);
    const why = b.missing();
    if (why) {
      skipped.push([name, why]);
      log(`skipping ${name}: ${why}`);
      continue;
    }
    log(`setting up ${b.label}`);
    try {
      await b.setup(bctx);
      const dir = join(work, 'context', name);
      mkdirSync(dir, { recursive: true });
      const sources = writeProject(dir);
      active.push({ b, dir, edit: editor(dir), sources });
    } catch (e) {
      skipped.push([name, `setup failed: ${e.message}`]);
      log(`skipping ${name}: setup failed: ${e.message}`);
    }
    if (ctx.interrupted()) return null;
  }
  for (const { b } of active) Object.assign(versions, b.versions());
  versions.runc = run('runc', ['--version']).stdout.trim().split('\n')[0] ?? '';

  const distBefore = distStamp();
  const builds = await timeBuilds(active, o, ctx, failures);
  const distAfter = distStamp();
  const warnings = [];
  if (distBefore !== distAfter) {
    warnings.push(`dist/berth.mjs was rebuilt during the builds (${distBefore} -> ${distAfter}): berth's rows mix two builds of berth`);
  }
  let layer = null;
  if (o.layerMb > 0 && !ctx.interrupted()) {
    layer = await layerRate({ work, mb: o.layerMb, runs: o.runs, warmups: o.warmups, log, interrupted: ctx.interrupted });
    failures.push(...layer.failures);
    Object.assign(versions, layer.versions);
  }
  return {
    versions, builders: active.map(({ b, sources }) => ({ name: b.name, label: b.label, sources })), ...builds, layer, skipped, failures,
    notices: warnings,
  };
}

/** When bin/berth's bundle was built: other work in the tree may rebuild it while the suite runs. */
function distStamp() {
  try {
    return statSync(join(REPO, 'dist/berth.mjs')).mtime.toISOString();
  } catch {
    return 'missing';
  }
}

/**
 * `warmups` + `runs` rounds; in each, every builder in turn (order rotated per round) builds cold, then again with
 * nothing changed, then after one source changed (the edit is made before the clock starts). A builder whose build
 * fails is dropped from the remaining rounds. A `berth --version` per round gives berth's fixed start cost.
 */
async function timeBuilds(active, o, ctx, failures) {
  const samples = new Map(active.map(({ b }) => [b.name, { cold: [], warm: [], edit: [], steps: { cold: [], warm: [], edit: [] } }]));
  const broken = new Set();
  const startup = [];
  let edits = 0;
  const berth = active.find(({ b }) => b.name === 'berth');
  for (let round = -o.warmups; round < o.runs && !ctx.interrupted(); round++) {
    const shift = ((round % active.length) + active.length) % active.length;
    const order = active.map((_, i) => active[(i + shift) % active.length]);
    for (const { b, dir, edit } of order) {
      for (const kind of KINDS) {
        if (broken.has(b.name) || ctx.interrupted()) break;
        if (kind === 'edit') edit(++edits);
        const { cmd, args, env } = b.argv(kind, dir);
        const r = run(cmd, args, { env, timeout: 600_000 });
        if (r.code !== 0) {
          broken.add(b.name);
          const msg = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
          failures.push(`${b.label}, ${kind}: exited ${r.code}: ${msg}`);
          ctx.log(`  ${b.label} ${kind} FAILED (exit ${r.code}): ${msg}`);
          break;
        }
        if (round < 0) continue;
        const s = samples.get(b.name);
        s[kind].push(r.ms);
        if (b.steps) s.steps[kind].push(parseSteps(`${r.stdout}\n${r.stderr}`));
      }
      await new Promise((res) => setImmediate(res));
    }
    if (berth && round >= 0) {
      const { cmd, args } = berth.b.argv('warm', berth.dir);
      const v = run(cmd, [args[0], args[1], '--version']);
      if (v.code === 0) startup.push(v.ms);
    }
    ctx.log(round < 0 ? `builds: warm-up round ${round + o.warmups + 1}/${o.warmups} done` : `builds: round ${round + 1}/${o.runs}`);
  }

  const buildkit = samples.get('docker');
  const rows = [];
  for (const { b } of active) {
    const s = samples.get(b.name);
    for (const kind of KINDS) {
      if (broken.has(b.name)) {
        rows.push({ name: b.name, label: b.label, kind, error: true });
        continue;
      }
      const sum = summarize(s[kind]);
      const base = broken.has('docker') || !buildkit ? NaN : median(buildkit[kind]);
      rows.push({ name: b.name, label: b.label, kind, ...sum, xBuildkit: ratio(sum.median, base) });
    }
  }
  return { rows, steps: stepMedians(active, samples), startup: startup.length ? summarize(startup) : null };
}

/** Per builder and kind: each step's median DONE time over the runs (null when it was cached every time). */
function stepMedians(active, samples) {
  const out = {};
  for (const { b } of active) {
    if (!b.steps) continue;
    const s = samples.get(b.name);
    const names = [];
    const byName = new Map();
    for (const kind of KINDS) {
      for (const runSteps of s.steps[kind]) {
        for (const st of runSteps) {
          if (!byName.has(st.name)) {
            byName.set(st.name, { cold: [], warm: [], edit: [], cached: { cold: 0, warm: 0, edit: 0 } });
            names.push(st.name);
          }
          const e = byName.get(st.name);
          if (st.cached) e.cached[kind]++;
          else if (st.seconds !== null) e[kind].push(st.seconds);
        }
      }
    }
    out[b.name] = names.map((name) => {
      const e = byName.get(name);
      const cell = (kind) => ({ median: median(e[kind]), cached: e.cached[kind], n: e[kind].length });
      return { name, cold: cell('cold'), warm: cell('warm'), edit: cell('edit') };
    });
  }
  return out;
}
