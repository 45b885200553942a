import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../../src/base/errors.js';
import { NO_FILTER, parsePruneFilter, pruneFilterMatches } from '../../src/engine/prune-filter.js';

const NOW = new Date('2024-05-01T12:00:00Z');

function throwsInvalid(fn: () => unknown, message: string) {
  assert.throws(fn, (e: unknown) => isBerthError(e, 'invalid-argument') && (e as Error).message === message);
}

describe('prune filters (container, image, volume and system prune)', () => {
  it('reads label, label! and until; duplicates collapse', () => {
    const f = parsePruneFilter([['label', 'a'], ['label', 'b=1'], ['label', 'a'], ['label!', 'keep'], ['until', '1h'], ['until', '1h']], NOW);
    assert.deepEqual(f.labels, ['a', 'b=1']);
    assert.deepEqual(f.notLabels, ['keep']);
    assert.equal(f.until?.value, '1h');
    assert.equal(f.until?.ns, BigInt(Date.parse('2024-05-01T11:00:00Z')) * 1_000_000n);
    assert.deepEqual(parsePruneFilter([], NOW), { labels: [], notLabels: [] });
  });

  it("refuses what the daemon refuses, in its words", () => {
    throwsInvalid(() => parsePruneFilter([['dangling', 'true']], NOW), "invalid filter 'dangling'");
    throwsInvalid(() => parsePruneFilter([['until', '1h'], ['until', '2h']], NOW), 'more than one until filter specified');
    throwsInvalid(() => parsePruneFilter([['until', 'soon']], NOW), 'failed to parse value as time or duration: "soon"');
    assert.deepEqual(parsePruneFilter([['dangling', 'true']], NOW, ['dangling']).labels, []);
  });

  it('until: created at or before the time goes; later, or unknown, stays', () => {
    const f = parsePruneFilter([['until', '2024-05-01T10:00:00Z']], NOW);
    assert.equal(pruneFilterMatches(f, '2024-05-01T09:59:59.999999999Z', {}), true);
    assert.equal(pruneFilterMatches(f, '2024-05-01T10:00:00Z', {}), true);
    assert.equal(pruneFilterMatches(f, '2024-05-01T10:00:00.000000001Z', {}), false);
    assert.equal(pruneFilterMatches(f, undefined, {}), false);
    assert.equal(pruneFilterMatches(f, 'not a time', {}), false);
    assert.equal(pruneFilterMatches(NO_FILTER, undefined, undefined), true);
  });

  it('label: every term must match (K, or K=V); label!: an item matching every term stays', () => {
    const labels = { app: 'web', tier: 'front' };
    const f = (pairs: [string, string][]) => parsePruneFilter(pairs, NOW);
    assert.equal(pruneFilterMatches(f([['label', 'app']]), undefined, labels), true);
    assert.equal(pruneFilterMatches(f([['label', 'app=web']]), undefined, labels), true);
    assert.equal(pruneFilterMatches(f([['label', 'app=db']]), undefined, labels), false);
    assert.equal(pruneFilterMatches(f([['label', 'app'], ['label', 'other']]), undefined, labels), false);
    assert.equal(pruneFilterMatches(f([['label', 'app']]), undefined, null), false);
    assert.equal(pruneFilterMatches(f([['label', 'toString']]), undefined, {}), false, 'only own labels');
    assert.equal(pruneFilterMatches(f([['label!', 'app']]), undefined, labels), false);
    assert.equal(pruneFilterMatches(f([['label!', 'app=db']]), undefined, labels), true);
    assert.equal(pruneFilterMatches(f([['label!', 'app'], ['label!', 'other']]), undefined, labels), true, 'not every label! term matches');
    assert.equal(pruneFilterMatches(f([['label!', 'app']]), undefined, {}), true);
    assert.equal(pruneFilterMatches(f([['label', 'tier'], ['label!', 'app=web']]), undefined, labels), false);
  });
});
