import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../../src/base/errors.js';
import {
  parseCachePruneFilters, selectForPrune, sharedChains, ownBytes, type PruneCandidate,
} from '../../src/build/cache-prune.js';
import { splitFilterFlags } from '../../src/cli/filter-flag.js';
import { BuildCache, cacheKey, type CacheEntry } from '../../src/build/cache.js';
import type { Digest } from '../../src/base/digest.js';
import { native, LOCK_SH } from '../../src/sys/native.js';

const NOW = new Date('2024-05-01T12:00:00.250Z');

function throwsInvalid(fn: () => unknown, message: string | RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isBerthError(e, 'invalid-argument'), String(e));
    if (typeof message === 'string') assert.equal((e as Error).message, message);
    else assert.match((e as Error).message, message);
    return true;
  });
}

describe('builder prune filters', () => {
  it('splits name=value like Docker (name lowercased, both trimmed, empty values ignored)', () => {
    assert.deepEqual(splitFilterFlags(['Until= 24h ', '', 'id=a=b']), { pairs: [['until', '24h'], ['id', 'a=b']] });
    assert.equal(splitFilterFlags(['until=1h', 'dangling']).bad, 'dangling');
  });

  it('reads until as a Go duration before now, truncated to whole seconds', () => {
    const sec = Math.floor(NOW.getTime() / 1000) * 1000;
    assert.equal(parseCachePruneFilters([['until', '24h']], NOW).usedUntil, sec - 24 * 3600_000);
    assert.equal(parseCachePruneFilters([['until', '90m']], NOW).usedUntil, sec - 90 * 60_000);
    assert.equal(parseCachePruneFilters([['until', '1h30m']], NOW).usedUntil, sec - 90 * 60_000);
    assert.equal(parseCachePruneFilters([['unused-for', '10s']], NOW).usedUntil, sec - 10_000);
  });

  it('reads until as a timestamp', () => {
    assert.equal(parseCachePruneFilters([['until', '2024-04-30T10:00:00.5Z']], NOW).usedUntil, Date.parse('2024-04-30T10:00:00.5Z'));
    assert.equal(parseCachePruneFilters([['until', '1700000000']], NOW).usedUntil, 1700000000_000);
  });

  it('rejects what Docker rejects, in its words', () => {
    throwsInvalid(() => parseCachePruneFilters([['dangling', 'true']], NOW), "invalid filter 'dangling'");
    throwsInvalid(() => parseCachePruneFilters([['until', '1h'], ['until', '2h']], NOW), 'filters expect only one value');
    throwsInvalid(() => parseCachePruneFilters([['type', 'regular'], ['type', 'exec.cachemount']], NOW), 'filters expect only one value');
    throwsInvalid(() => parseCachePruneFilters([['until', '1h'], ['unused-for', '1h']], NOW), 'conflicting filters: "until" and "unused-for"');
    throwsInvalid(() => parseCachePruneFilters([['until', 'soon']], NOW), /^"until" filter expects a duration \(e\.g\., '24h'\) or a timestamp: /);
    throwsInvalid(() => parseCachePruneFilters([['id', '(']], NOW), /^invalid filter 'id=\(': /);
  });

  it('the same value twice is one value (a set, as in Docker)', () => {
    assert.equal(parseCachePruneFilters([['type', 'regular'], ['type', 'regular']], NOW).type, 'regular');
  });

  it('id is a regular expression on the record id; type an exact type', () => {
    const o = parseCachePruneFilters([['id', '^ab'], ['type', 'exec.cachemount']], NOW);
    assert.ok(o.id!.test('abcdef') && !o.id!.test('cabdef'));
    assert.equal(o.type, 'exec.cachemount');
  });
});

describe('builder prune selection', () => {
  const rec = (id: string, o: Partial<PruneCandidate> = {}): PruneCandidate => ({
    id, type: 'regular', size: 100, createdAt: 0, lastUsedAt: 1000, shared: false, inUse: false, ...o,
  });
  const ids = (rs: PruneCandidate[]) => rs.map((r) => r.id);

  it('without --all keeps what images share; with --all takes everything; least recently used first', () => {
    const rs = [rec('a', { lastUsedAt: 30 }), rec('b', { shared: true, lastUsedAt: 10 }), rec('c', { type: 'exec.cachemount', lastUsedAt: 20 })];
    assert.deepEqual(ids(selectForPrune(rs, { all: false })), ['c', 'a']);
    assert.deepEqual(ids(selectForPrune(rs, { all: true })), ['b', 'c', 'a']);
  });

  it('never takes a record a running build holds', () => {
    const rs = [rec('busy', { inUse: true, lastUsedAt: 1 }), rec('idle', { lastUsedAt: 2 })];
    assert.deepEqual(ids(selectForPrune(rs, { all: true })), ['idle']);
    assert.deepEqual(ids(selectForPrune(rs, { all: true, keepBytes: 1 })), ['idle']);
  });

  it('until keeps records used after the cutoff (used exactly at it go)', () => {
    const rs = [rec('old', { lastUsedAt: 100 }), rec('edge', { lastUsedAt: 200 }), rec('new', { lastUsedAt: 201 })];
    assert.deepEqual(ids(selectForPrune(rs, { all: true, usedUntil: 200 })), ['old', 'edge']);
  });

  it('id and type narrow the selection', () => {
    const rs = [rec('abc1'), rec('abd2', { type: 'exec.cachemount' }), rec('xyz3')];
    assert.deepEqual(ids(selectForPrune(rs, { all: true, id: /^ab/ })), ['abc1', 'abd2']);
    assert.deepEqual(ids(selectForPrune(rs, { all: true, type: 'exec.cachemount' })), ['abd2']);
    assert.deepEqual(ids(selectForPrune(rs, { all: true, id: /^ab/, type: 'regular' })), ['abc1']);
    assert.deepEqual(ids(selectForPrune(rs, { all: true, type: 'source.local' })), []);
  });

  it('keep-storage removes least recently used records until the cache is below the size', () => {
    const rs = [
      rec('newest', { size: 400, lastUsedAt: 50 }),
      rec('oldest', { size: 300, lastUsedAt: 10 }),
      rec('middle', { size: 200, lastUsedAt: 30 }),
      rec('same-time-older', { size: 100, lastUsedAt: 30, createdAt: -5 }),
    ];
    assert.equal(ownBytes(rs), 1000);
    assert.deepEqual(ids(selectForPrune(rs, { all: false, keepBytes: 1001 })), [], 'already below');
    assert.deepEqual(ids(selectForPrune(rs, { all: false, keepBytes: 1000 })), ['oldest'], 'not below: one goes');
    assert.deepEqual(ids(selectForPrune(rs, { all: false, keepBytes: 600 })), ['oldest', 'same-time-older', 'middle']);
    assert.deepEqual(ids(selectForPrune(rs, { all: false, keepBytes: 1 })), ['oldest', 'same-time-older', 'middle', 'newest']);
  });

  it('keep-storage counts only the cache\'s own bytes and never removes shared records for it', () => {
    const rs = [rec('shared', { size: 5000, shared: true, lastUsedAt: 1 }), rec('own', { size: 300, lastUsedAt: 2 })];
    assert.equal(ownBytes(rs), 300);
    assert.deepEqual(ids(selectForPrune(rs, { all: true, keepBytes: 400 })), []);
    assert.deepEqual(ids(selectForPrune(rs, { all: true, keepBytes: 200 })), ['own']);
  });

  it('keep-storage applies after the filters', () => {
    const rs = [rec('a', { size: 500, lastUsedAt: 1, type: 'exec.cachemount' }), rec('b', { size: 500, lastUsedAt: 2 })];
    assert.deepEqual(ids(selectForPrune(rs, { all: false, keepBytes: 100, type: 'regular' })), ['b']);
  });

  it('a record is shared when its layer chain is a prefix of an image\'s layers', () => {
    const shared = sharedChains([['l1', 'l2', 'l3'], ['l1', 'l4']]);
    assert.ok(shared(['l1']));
    assert.ok(shared(['l1', 'l2']));
    assert.ok(shared(['l1', 'l2', 'l3']));
    assert.ok(shared(['l1', 'l4']));
    assert.ok(!shared(['l1', 'l2', 'l3', 'l5']), 'longer than any image');
    assert.ok(!shared(['l2']), 'not at the bottom');
    assert.ok(!shared(['l1', 'l3']));
    assert.ok(!shared(undefined), 'mounts and unreadable entries');
    assert.ok(!sharedChains([])(['l1']), 'no images');
  });
});

describe('BuildCache records', () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-cache-unit-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}` as Digest;
  const entry = (key: string, layers: Digest[], layer?: Digest): CacheEntry => ({
    key,
    state: {
      config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, history: [{ created_by: `RUN step ${key.slice(0, 4)}` }] },
      layers: layers.map((d) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d, size: 1 })),
    },
    ...(layer ? { layer: { digest: layer, diffId: layer } } : {}),
    created: '2024-01-01T00:00:00.000Z',
  });
  const rec = { key: 'k', parentKey: 'p', text: 't', inputs: {} };

  it('lists entries and mounts with sizes, uses and chains; counts a shared blob once; frees only unlinked blobs', () => {
    const dir = join(root, 'build-cache');
    const store = join(root, 'store');
    mkdirSync(store);
    const blobA = join(store, 'a');
    const blobB = join(store, 'b');
    writeFileSync(blobA, Buffer.alloc(1000));
    writeFileSync(blobB, Buffer.alloc(3000));
    const cache = new BuildCache(dir);
    const k1 = cacheKey(['one']);
    const k2 = cacheKey(['two']);
    const k3 = cacheKey(['three']);
    cache.put(entry(k1, [digest(1)], digest(1)), blobA, 'about1', rec);
    cache.put(entry(k2, [digest(1), digest(2)], digest(2)), blobB, 'about2', rec);
    // Same layer made by another step: one blob, counted on the older entry.
    cache.put({ ...entry(k3, [digest(2)], digest(2)), created: '2024-02-01T00:00:00.000Z' }, blobB, 'about3', rec);
    const mount = join(cache.mountsDir, cacheKey(['my-cache']));
    mkdirSync(mount, { recursive: true });
    cache.noteMountUse(cacheKey(['my-cache']));
    writeFileSync(join(mount, 'data'), Buffer.alloc(500));

    assert.ok(cache.get(k1));
    assert.ok(cache.get(k1));
    assert.equal(cache.get(cacheKey(['missing'])), undefined);
    // Make the last use of k2 old, to see it read from the entry file.
    utimesSync(join(dir, 'entries', `${k2}.json`), new Date(1000), new Date(1000));

    const rs = cache.records();
    const byName = new Map(rs.map((r) => [r.name, r]));
    assert.equal(rs.length, 4);
    const r1 = byName.get(k1)!;
    assert.equal(r1.id, k1.slice(0, 25));
    assert.equal(r1.type, 'regular');
    assert.equal(r1.size, 1000);
    assert.equal(r1.usageCount, 3, 'made once, found twice');
    assert.deepEqual(r1.chain, [digest(1)]);
    assert.equal(r1.description, `RUN step ${k1.slice(0, 4)}`);
    assert.equal(byName.get(k2)!.size + byName.get(k3)!.size, 3000);
    assert.equal(byName.get(k2)!.size, 3000, 'older entry carries the blob');
    assert.equal(byName.get(k2)!.lastUsedAt, 1000);
    assert.equal(byName.get(k2)!.usageCount, 1);
    const m = rs.find((r) => r.type === 'exec.cachemount')!;
    assert.equal(m.size, 500);
    assert.equal(m.usageCount, 1);
    assert.equal(m.name, cacheKey(['my-cache']));

    // k2's blob is still needed by k3: removing k2 frees nothing and keeps the blob.
    assert.deepEqual(cache.remove([byName.get(k2)!]), { removed: [byName.get(k2)], freed: 0, stillLinked: [] });
    assert.ok(readdirSync(join(dir, 'blobs')).includes(digest(2).slice(7)));
    // k1's blob is still linked from the "image store": removing it frees nothing yet, and says so.
    assert.deepEqual(cache.remove([r1]), { removed: [r1], freed: 0, stillLinked: [{ digest: digest(1), size: 1000 }] });
    assert.ok(!readdirSync(join(dir, 'blobs')).includes(digest(1).slice(7)));
    // Once the store lets go of blob b, removing k3 frees its bytes; the mount frees its files.
    rmSync(blobB);
    assert.deepEqual(cache.remove([byName.get(k3)!, m]), { removed: [byName.get(k3), m], freed: 3500, stillLinked: [] });
    assert.deepEqual(cache.records(), []);
    assert.deepEqual(readdirSync(join(dir, 'uses')), []);
    assert.deepEqual(readdirSync(join(dir, 'blobs')), []);
    // The step records stay, so the next build can say its miss comes from a prune.
    assert.equal(cache.explainMiss(cache.previous('about1'), rec), 'cached result was pruned');
  });

  it('sees which cache mounts a RUN holds (their flock) and leaves those; private instances have ids of their own', () => {
    const cache = new BuildCache(join(root, 'mounts-cache'));
    const key = cacheKey(['m']);
    for (const name of [key, `${key}.private-1`, `.tmp-${key}-abc`]) {
      mkdirSync(join(cache.mountsDir, name), { recursive: true });
      writeFileSync(join(cache.mountsDir, name, 'f'), 'data');
    }
    writeFileSync(join(cache.mountsDir, `${key}.lock`), '');
    writeFileSync(join(cache.mountsDir, `${key}.init.lock`), '');
    const fd = openSync(join(cache.mountsDir, `${key}.lock`), 'r');
    try {
      native().flock(fd, LOCK_SH); // as a `sharing=shared` RUN holds it
      const rs = cache.records();
      assert.deepEqual(rs.map((r) => [r.name, r.inUse]).sort(), [[key, true], [`${key}.private-1`, false]]);
      assert.notEqual(rs[0]!.id, rs[1]!.id);
      assert.equal(rs.find((r) => r.name === key)!.id, key.slice(0, 25));
      const r = cache.remove(rs);
      assert.deepEqual(r.removed.map((x) => x.name), [`${key}.private-1`]);
      assert.equal(r.freed, 4);
      assert.ok(readdirSync(join(cache.mountsDir, key)).includes('f'), 'the held one keeps its files');
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(cache.records().map((r) => [r.name, r.inUse]), [[key, false]]);
    assert.equal(cache.remove(cache.records()).removed.length, 1);
    assert.ok(readdirSync(cache.mountsDir).includes(`${key}.lock`), 'lock files stay for RUNs waiting on them');
  });
});
