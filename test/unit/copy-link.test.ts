import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { linkDeferred, placeItems, type CopyItem, type LinkSource } from '../../src/build/copy.js';

// The incremental COPY: placeItems records what it wrote and, given the last layer's record, leaves the files that
// layer already holds alike to linkDeferred. Plain directories stand in for the overlay: here the root is its own
// upper dir.

const work = mkdtempSync(join(tmpdir(), 'berth-copy-link-'));
after(() => rmSync(work, { recursive: true, force: true }));
let seq = 0;
const fresh = (name: string) => {
  const d = join(work, `${name}-${++seq}`);
  mkdirSync(d);
  return d;
};

/** Source files (name -> content) with one mtime, and COPY items placing them under /app with made-up digests. */
function sources(files: Record<string, string>): { dir: string; items: () => CopyItem[] } {
  const dir = fresh('src');
  const t = new Date('2024-05-06T07:08:09.123Z');
  for (const [n, c] of Object.entries(files)) {
    writeFileSync(join(dir, n), c);
    utimesSync(join(dir, n), t, t);
  }
  const items = (): CopyItem[] => [
    { kind: 'entry', src: dir, stat: lstatSync(dir), dest: '/app', root: true },
    ...Object.keys(files).sort().map((n): CopyItem => ({
      kind: 'entry', src: join(dir, n), stat: lstatSync(join(dir, n)), dest: `/app/${n}`, digest: `d-${readFileSync(join(dir, n), 'utf8')}`,
    })),
  ];
  return { dir, items };
}

const root = { uid: 0, gid: 0, chownParents: false };

describe('placeItems with an earlier layer to link from', () => {
  it('records each file it writes by content digest', () => {
    const { items } = sources({ 'a.txt': 'A', 'b.txt': 'B' });
    const layer = fresh('layer');
    const p = placeItems(layer, items(), root);
    assert.deepEqual(p.placed, { 'app/a.txt': 'd-A', 'app/b.txt': 'd-B' });
    assert.deepEqual(p.links, []);
    assert.equal(readFileSync(join(layer, 'app/b.txt'), 'utf8'), 'B');
  });

  it('links the files the earlier layer holds alike, and writes the changed ones', () => {
    const s = sources({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' });
    const earlier = fresh('layer');
    const from: LinkSource = { dir: earlier, placed: placeItems(earlier, s.items(), root).placed };

    writeFileSync(join(s.dir, 'b.txt'), 'B2'); // content changed
    const t = new Date('2024-05-06T07:08:09.123Z');
    utimesSync(join(s.dir, 'b.txt'), t, t);
    utimesSync(join(s.dir, 'c.txt'), t, new Date('2024-05-06T07:08:10.000Z')); // mtime changed only
    const upper = fresh('upper');
    const p = placeItems(upper, s.items(), root, { from, upper });
    assert.deepEqual(p.links.map((l) => l.rel), ['app/a.txt']);
    assert.deepEqual(p.placed, { 'app/a.txt': 'd-A', 'app/b.txt': 'd-B2', 'app/c.txt': 'd-C' });
    assert.deepEqual(linkDeferred(from, upper, p.links), []);
    assert.equal(lstatSync(join(upper, 'app/a.txt')).ino, lstatSync(join(earlier, 'app/a.txt')).ino);
    assert.equal(readFileSync(join(upper, 'app/b.txt'), 'utf8'), 'B2');
    assert.notEqual(lstatSync(join(upper, 'app/c.txt')).ino, lstatSync(join(earlier, 'app/c.txt')).ino);
    assert.equal(lstatSync(join(upper, 'app/c.txt')).mtime.toISOString(), '2024-05-06T07:08:10.000Z');
  });

  it('writes a file whose owner or mode would differ, or whose destination is written twice', () => {
    const s = sources({ 'a.txt': 'A', 'b.txt': 'B' });
    const earlier = fresh('layer');
    const from: LinkSource = { dir: earlier, placed: placeItems(earlier, s.items(), root).placed };

    chmodSync(join(s.dir, 'a.txt'), 0o600);
    const twice = [...s.items(), s.items()[2]!];
    const upper = fresh('upper');
    const p = placeItems(upper, twice, root, { from, upper });
    assert.deepEqual(p.links, []);
    assert.equal(lstatSync(join(upper, 'app/a.txt')).mode & 0o777, 0o600);

    const chowned = fresh('upper');
    assert.deepEqual(placeItems(chowned, s.items(), { uid: 1000, gid: 1000, chownParents: false }, { from, upper: chowned }).links, []);
  });

  it('keeps the last write when two destinations reach one path through a symlink', () => {
    const s = sources({ 'a.txt': 'A', 'b.txt': 'B' });
    const entry = (n: string, dest: string): CopyItem => ({ kind: 'entry', src: join(s.dir, n), stat: lstatSync(join(s.dir, n)), dest, digest: `d-${readFileSync(join(s.dir, n), 'utf8')}` });
    const real = (): CopyItem => ({ kind: 'entry', src: s.dir, stat: lstatSync(s.dir), dest: '/real', root: true });
    const earlier = fresh('layer');
    const from: LinkSource = { dir: earlier, placed: placeItems(earlier, [real(), entry('a.txt', '/real/x')], root).placed };
    assert.deepEqual(from.placed, { 'real/x': 'd-A' });

    const upper = fresh('upper');
    symlinkSync('real', join(upper, 'alias'));
    const p = placeItems(upper, [real(), entry('a.txt', '/real/x'), entry('b.txt', '/alias/x')], root, { from, upper });
    assert.deepEqual(p.links, [], 'the link was written before the second file replaced it');
    assert.equal(readFileSync(join(upper, 'real/x'), 'utf8'), 'B');
    assert.deepEqual(p.placed, { 'real/x': 'd-B' });
  });

  it('does not record a file that changed after it was hashed', () => {
    const s = sources({ 'a.txt': 'A', 'b.txt': 'B' });
    const items = s.items();
    writeFileSync(join(s.dir, 'b.txt'), 'B, edited meanwhile');
    const layer = fresh('layer');
    const p = placeItems(layer, items, root);
    assert.deepEqual(p.placed, { 'app/a.txt': 'd-A' });
    assert.equal(readFileSync(join(layer, 'app/b.txt'), 'utf8'), 'B, edited meanwhile');
  });

  it('leaves to write what can no longer be linked (the earlier layer went away)', () => {
    const s = sources({ 'a.txt': 'A' });
    const earlier = fresh('layer');
    const from: LinkSource = { dir: earlier, placed: placeItems(earlier, s.items(), root).placed };
    const upper = fresh('upper');
    const p = placeItems(upper, s.items(), root, { from, upper });
    assert.equal(p.links.length, 1);
    rmSync(earlier, { recursive: true });
    const failed = linkDeferred(from, upper, p.links);
    assert.deepEqual(failed.map((i) => i.dest), ['/app/a.txt']);
    placeItems(upper, failed, root);
    assert.equal(readFileSync(join(upper, 'app/a.txt'), 'utf8'), 'A');
  });
});
