import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

// berth starts from a V8 startup snapshot of its bundle (scripts/build.mjs). Inside a snapshot, dynamic import()
// fails at run time, and module-level reads of the environment are frozen at build time.
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('no dynamic import() in src (unsupported in the startup snapshot)', () => {
  const offenders = sources('src').filter((f) => /[^\w.]import\(\s*['"`]/.test(readFileSync(f, 'utf8').replace(/import\(['"][^'"]+['"]\)\./g, '')));
  assert.deepEqual(offenders, []);
});

test('no module-level process.env or process.argv reads in src (frozen into the snapshot)', () => {
  const offenders = sources('src').filter((f) => readFileSync(f, 'utf8').split('\n').some((l) => /^(export )?(const|let|var) .*process\.(env|argv|cwd)/.test(l)));
  assert.deepEqual(offenders, []);
});
