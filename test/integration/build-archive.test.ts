import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Berth } from '../lib/berth.js';
import { writeBuildContext } from '../lib/build-context.js';

// A step's layer tar is written while later steps run (docs/design.md, "Build steps"). When writing it fails (here:
// the state root is a small tmpfs that holds the step's files but not their tar as well), the build must fail with
// the cause and the step, and leave nothing: no mount, no temp dir, no half-written blob, no image, no cache record.
describe('berth build, when a layer cannot be archived', { concurrency: false }, () => {
  const b = new Berth();
  let ctx = '';

  before(() => {
    mkdirSync(b.root, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', b.root]);
    b.importBusybox();
    ctx = writeBuildContext(join(b.root, '..', 'ctx'), {
      Dockerfile: 'FROM busybox\nRUN dd if=/dev/urandom of=/big bs=1M count=12 2>/dev/null\nRUN echo after > /after\n',
    });
  });

  after(() => {
    spawnSync('umount', ['-l', b.root]);
    assert.deepEqual(b.destroy(), []);
  });

  it('fails naming the step and the cause, and leaves nothing behind', () => {
    const r = b.run(['build', '--progress', 'plain', '-t', 'toobig', ctx]);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /Dockerfile:2: RUN dd .*archiving the layer: .*(ENOSPC|no space left)/i);
    // Only the tmpfs itself is mounted there.
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(b.root) && m !== b.root);
    assert.deepEqual(mounts, []);
    const tmp = join(b.root, 'tmp');
    assert.deepEqual(existsSync(tmp) ? readdirSync(tmp).filter((n) => n.startsWith('build-')) : [], []);
    const blobs = join(b.root, 'images');
    const stray = existsSync(blobs) ? readdirSync(blobs).filter((n) => n.startsWith('.tmp')) : [];
    assert.deepEqual(stray, []);
    assert.equal(b.run(['image', 'inspect', 'toobig']).code, 1);
    // The next build of the same input misses at that step again: no cache record points at a missing layer.
    const again = b.run(['build', '--progress', 'plain', '-t', 'toobig', ctx]);
    assert.doesNotMatch(again.stderr, /#\d+ CACHED\n(#\d+ )?.*RUN dd/);
    assert.deepEqual(b.leftovers().filter((l) => l !== `mount ${b.root}`), []);
  });
});
