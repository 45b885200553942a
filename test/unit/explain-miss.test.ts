import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildCache, type StepRecord } from '../../src/build/cache.js';

// Why a step missed, in the build output's words, from what the last build at its position read.

describe('BuildCache.explainMiss', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-explain-'));
  const cache = new BuildCache(dir);
  const base: StepRecord = { key: 'k1', parentKey: 'p', text: 'RUN make', settings: { env: '[]', user: '', workdir: '/' }, inputs: { 'src/a.c': 'd1' } };
  const explain = (now: Partial<StepRecord>) => cache.explainMiss(base, { ...base, key: 'k2', ...now });

  it('names the first cause: no record, parent, instruction, settings, inputs', () => {
    assert.equal(cache.explainMiss(undefined, base), 'no earlier build of this step');
    assert.equal(explain({ parentKey: 'q' }), 'parent step changed');
    assert.equal(explain({ text: 'RUN make all' }), 'instruction changed');
    assert.equal(explain({ settings: { env: '["A=1"]', user: 'app', workdir: '/' } }), 'ENV, USER changed');
    assert.equal(explain({ settings: { env: '[]', user: '', workdir: '/src' } }), 'WORKDIR changed');
    assert.equal(explain({ inputs: { 'src/a.c': 'd2' } }), '1 file changed: src/a.c');
    assert.equal(explain({ inputs: {} }), '1 file changed: src/a.c');
    assert.equal(explain({}), 'build arguments or environment changed');
    assert.equal(cache.explainMiss(base, base), 'cached result was pruned');
  });

  it('groups files of other stages by stage, folded trees, images, URLs and heredocs', () => {
    const now = {
      inputs: {
        'src/a.c': 'd1', '--from=build:/out/app': 'x2', '--from=build:/out/lib.so': 'y2', '--from=deps:/**': 'z2',
        '--from=tools:latest': 'img2', 'url:https://example.com/f': 'u2', '<<EOF': 'h2',
      },
    };
    const prev = { ...base, inputs: { ...base.inputs, '--from=build:/out/app': 'x1', '--from=build:/out/lib.so': 'y1', '--from=deps:/**': 'z1', '--from=tools:latest': 'img1', 'url:https://example.com/f': 'u1', '<<EOF': 'h1' } };
    assert.equal(
      cache.explainMiss(prev, { ...base, key: 'k2', ...now }),
      '2 files changed in stage build: /out/app, /out/lib.so; files under / changed in stage deps; source tools:latest changed; https://example.com/f, heredoc EOF changed',
    );
    rmSync(dir, { recursive: true, force: true });
  });
});
