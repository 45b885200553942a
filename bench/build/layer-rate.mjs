// Layer commit rate: berth's layer writer (writeLayerTar + the store's ingest, as a build step commits) against GNU
// tar on the same generated tree, in MB/s of file content.
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, which } from '../lib/host.mjs';
import { firstLine } from '../peers/peer.mjs';
import { summarize } from '../lib/stats.mjs';
import { writeTree } from './layer-tree.mjs';

const WRITER = fileURLToPath(new URL('./layer-writer.mjs', import.meta.url));
const TSX = import.meta.resolve('tsx');

/**
 * @typedef {object} RateRow
 * @property {string} label
 * @property {boolean} [part]   a share of the row above it (berth's two phases)
 * @property {number} n
 * @property {number} median    ms
 * @property {number} p90
 * @property {number} min
 * @property {number} outBytes  size of what it wrote
 * @property {number} mbps      tree content MB (10^6 bytes) per second, at the median
 * @property {boolean} [error]
 */

/**
 * Generates a tree of `mb` MB under `work`/layer, then runs `warmups` + `runs` rounds, each committing it once with
 * every writer (order rotated per round). Everything is written under `work`/layer and removed after each run.
 * @returns {Promise<{tree: object, rows: RateRow[], versions: Record<string, string>, failures: string[]}>}
 */
export async function layerRate({ work, mb, runs, warmups, log, interrupted }) {
  const dir = join(work, 'layer');
  const tree = join(dir, 'tree');
  log(`layer commit: generating a ${mb} MB tree`);
  mkdirSync(dir, { recursive: true });
  const stats = writeTree(tree, Math.round(mb * 1e6));
  const failures = [];
  const bash = which('bash');
  const writers = [
    {
      label: 'berth layer commit (writeLayerTar + store ingest)',
      once(i) {
        const r = run(process.execPath, ['--import', TSX, WRITER, tree, join(dir, `store-${i}`)], { timeout: 600_000 });
        if (r.code !== 0) return { error: (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ') };
        const j = JSON.parse(r.stdout.trim().split('\n').pop());
        return { ms: j.totalMs, outBytes: j.tarBytes, parts: { tar: j.tarMs, ingest: j.ingestMs } };
      },
    },
    {
      label: 'GNU tar c | gzip (level 6)',
      once(i) {
        const out = join(dir, `out-${i}.tar.gz`);
        const r = run(bash, ['-c', 'set -o pipefail; tar -C "$1" -cf - . | gzip > "$2"', 'bash', tree, out], { timeout: 600_000 });
        const outBytes = r.code === 0 ? statSync(out).size : 0;
        rmSync(out, { force: true });
        return r.code === 0 ? { ms: r.ms, outBytes } : { error: r.stderr.trim() };
      },
    },
    {
      label: 'GNU tar c (no compression)',
      once(i) {
        const out = join(dir, `out-${i}.tar`);
        const r = run('tar', ['-C', tree, '-cf', out, '.'], { timeout: 600_000 });
        const outBytes = r.code === 0 ? statSync(out).size : 0;
        rmSync(out, { force: true });
        return r.code === 0 ? { ms: r.ms, outBytes } : { error: r.stderr.trim() };
      },
    },
  ];
  const samples = writers.map(() => ({ ms: [], tar: [], ingest: [], outBytes: 0, broken: false }));
  let invocation = 0;
  for (let round = -warmups; round < runs && !interrupted(); round++) {
    for (let k = 0; k < writers.length; k++) {
      const w = (k + Math.max(round, 0)) % writers.length;
      const s = samples[w];
      if (s.broken) continue;
      const r = writers[w].once(invocation++);
      if (r.error !== undefined) {
        s.broken = true;
        failures.push(`layer commit, ${writers[w].label}: ${r.error}`);
        log(`  ${writers[w].label} FAILED: ${r.error}`);
        continue;
      }
      if (round < 0) continue;
      s.ms.push(r.ms);
      s.outBytes = r.outBytes;
      if (r.parts) {
        s.tar.push(r.parts.tar);
        s.ingest.push(r.parts.ingest);
      }
      await new Promise((res) => setImmediate(res));
    }
    log(round < 0 ? 'layer commit: warm-up round done' : `layer commit: round ${round + 1}/${runs}`);
  }
  rmSync(dir, { recursive: true, force: true });

  const mbps = (ms) => (Number.isFinite(ms) && ms > 0 ? stats.bytes / 1e6 / (ms / 1000) : NaN);
  const rows = [];
  writers.forEach((w, i) => {
    const s = samples[i];
    if (s.broken) {
      rows.push({ label: w.label, error: true });
      return;
    }
    const sum = summarize(s.ms);
    rows.push({ label: w.label, ...sum, outBytes: s.outBytes, mbps: mbps(sum.median) });
    if (s.tar.length) {
      const t = summarize(s.tar);
      const g = summarize(s.ingest);
      rows.push({ label: 'writeLayerTar to a temp file (tar + sha256)', part: true, ...t, outBytes: s.outBytes, mbps: mbps(t.median) });
      rows.push({ label: 'store ingest (read back, sha256, write, fsync)', part: true, ...g, outBytes: s.outBytes, mbps: mbps(g.median) });
    }
  });
  const versions = {
    'GNU tar': firstLine(run('tar', ['--version']).stdout),
    gzip: firstLine(run('gzip', ['--version']).stdout),
  };
  return { tree: { mb, ...stats }, rows, versions, failures };
}
