import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FOLD_LIMIT, SourceMissing, parseStageInputName, stageInputs } from '../../src/build/source-digest.js';

// What a step reads of another stage, as cache inputs: per entry by content, type, mode and owner; big trees folded.

function tree(): string {
  const d = mkdtempSync(join(tmpdir(), 'berth-srcdigest-'));
  mkdirSync(join(d, 'out'));
  writeFileSync(join(d, 'out', 'app'), 'app\n');
  symlinkSync('app', join(d, 'out', 'link'));
  return d;
}

describe('stageInputs', () => {
  it('names each entry by stage and path, and changes with content, mode and owner only', () => {
    const d = tree();
    try {
      const a = stageInputs(d, 'build', ['/out']);
      assert.deepEqual([...a.keys()], ['--from=build:/out', '--from=build:/out/app', '--from=build:/out/link']);
      assert.deepEqual(parseStageInputName('--from=build:/out/app'), { from: 'build', path: '/out/app' });
      assert.equal(parseStageInputName('--from=busybox:latest'), undefined);
      writeFileSync(join(d, 'out', 'app'), 'app\n'); // rewritten alike: a new mtime is no change
      assert.deepEqual(stageInputs(d, 'build', ['/out']), a);
      chmodSync(join(d, 'out', 'app'), 0o700);
      const moded = stageInputs(d, 'build', ['/out']);
      assert.notEqual(moded.get('--from=build:/out/app'), a.get('--from=build:/out/app'));
      lchownSync(join(d, 'out', 'app'), 1000, 1000);
      assert.notEqual(stageInputs(d, 'build', ['/out']).get('--from=build:/out/app'), moded.get('--from=build:/out/app'));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('throws SourceMissing for a source that names nothing, unless optional', () => {
    const d = tree();
    try {
      assert.throws(() => stageInputs(d, 'build', ['/nope']), (e: unknown) => e instanceof SourceMissing && /"\/nope" not found/.test(e.message));
      assert.throws(() => stageInputs(d, 'build', ['/out/*.so']), /no source files match/);
      assert.deepEqual([...stageInputs(d, 'build', ['/nope'], { optional: true })], [['--from=build:/nope', 'missing']]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it(`folds a tree of more than ${FOLD_LIMIT} entries into one input that still changes with any file`, () => {
    const d = tree();
    try {
      mkdirSync(join(d, 'big'));
      for (let i = 0; i < FOLD_LIMIT; i++) writeFileSync(join(d, 'big', `f${i}`), String(i));
      const a = stageInputs(d, 'base', ['/']);
      assert.deepEqual([...a.keys()], ['--from=base:/**']);
      writeFileSync(join(d, 'big', 'f7'), 'changed');
      assert.notEqual(stageInputs(d, 'base', ['/']).get('--from=base:/**'), a.get('--from=base:/**'));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
