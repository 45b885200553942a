import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDetachKeys, DetachMatcher, DEFAULT_DETACH_KEYS } from '../../src/cli/detach-keys.js';
import { isBerthError } from '../../src/base/errors.js';

const bytes = (b: Buffer) => [...b];

/** Feeds the chunks in order; returns everything forwarded and whether (and after which chunk) it detached. */
function feed(keys: string, chunks: (string | number[])[]): { forwarded: string; detachedAt: number } {
  const m = new DetachMatcher(parseDetachKeys(keys));
  let forwarded = '';
  for (const [i, c] of chunks.entries()) {
    const r = m.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : Buffer.from(c));
    forwarded += r.forward.toString('latin1');
    if (r.detach) return { forwarded, detachedAt: i };
  }
  return { forwarded: forwarded + m.flush().toString('latin1'), detachedAt: -1 };
}

describe('parseDetachKeys', () => {
  it('reads ctrl-<value> names and single characters as Docker does', () => {
    assert.deepEqual(bytes(parseDetachKeys('ctrl-p,ctrl-q')), [16, 17]);
    assert.deepEqual(bytes(parseDetachKeys('ctrl-a,x')), [1, 120]);
    assert.deepEqual(bytes(parseDetachKeys('ctrl-@,ctrl-[,~,ctrl-o')), [0, 27, 126, 15]);
    assert.deepEqual(bytes(parseDetachKeys('ctrl-\\,ctrl-],ctrl-^,ctrl-_,ctrl-z')), [28, 29, 30, 31, 26]);
    assert.deepEqual(bytes(parseDetachKeys('DEL,+')), [127, 43]);
    assert.deepEqual(bytes(parseDetachKeys('a')), [97]);
  });

  it('takes an empty value as the default ctrl-p,ctrl-q', () => {
    assert.equal(DEFAULT_DETACH_KEYS, 'ctrl-p,ctrl-q');
    assert.deepEqual(bytes(parseDetachKeys('')), [16, 17]);
  });

  it("refuses anything else with Docker's message", () => {
    for (const bad of ['shift-z', 'ctrl-P', 'ctrl-1', 'ctrl-', 'ctrl-ab', 'ctrl-p, ctrl-q', 'ctrl-p,', ',', 'ab', 'é', 'del']) {
      assert.throws(() => parseDetachKeys(bad), (e: unknown) => isBerthError(e, 'invalid-argument') && e.message === `Invalid detach keys (${bad}) provided`, bad);
    }
    assert.throws(() => parseDetachKeys('nope', 'escape'), /^BerthError: Invalid escape keys \(nope\) provided$/);
  });
});

describe('DetachMatcher', () => {
  it('passes input without the sequence through unchanged', () => {
    assert.deepEqual(feed('ctrl-p,ctrl-q', ['ls -l\r', 'exit\r']), { forwarded: 'ls -l\rexit\r', detachedAt: -1 });
  });

  it('detaches on the whole sequence, forwarding what came before it and nothing of it', () => {
    assert.deepEqual(feed('ctrl-p,ctrl-q', ['echo hi\r', '\x10', '\x11', 'never']), { forwarded: 'echo hi\r', detachedAt: 2 });
    // both keys in one read (a pty may deliver them together), with input before them in the same chunk
    assert.deepEqual(feed('ctrl-p,ctrl-q', ['ab\x10\x11cd']), { forwarded: 'ab', detachedAt: 0 });
    assert.deepEqual(feed('ctrl-a,x', ['\x01', 'x']), { forwarded: '', detachedAt: 1 });
  });

  it('holds a started sequence until the next key, then forwards both as typed', () => {
    const m = new DetachMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
    assert.deepEqual(bytes(m.push(Buffer.from([0x10])).forward), [], 'ctrl-p is held');
    const r = m.push(Buffer.from('a'));
    assert.deepEqual([bytes(r.forward), r.detach], [[0x10, 0x61], false], 'ctrl-p a reaches the container');
    assert.deepEqual(feed('ctrl-p,ctrl-q', ['x\x10', 'y\x10', 'z']), { forwarded: 'x\x10y\x10z', detachedAt: -1 });
  });

  it('starts over on a key that begins the sequence again', () => {
    // ctrl-p ctrl-p ctrl-q: the first ctrl-p is forwarded, the next two detach
    assert.deepEqual(feed('ctrl-p,ctrl-q', [[0x10], [0x10], [0x11]]), { forwarded: '\x10', detachedAt: 2 });
    // a self-overlapping sequence: "a,a,b" typed as "aaab"
    assert.deepEqual(feed('a,a,b', ['aaab']), { forwarded: 'a', detachedAt: 0 });
    assert.deepEqual(feed('a,b,a,c', ['ababac']), { forwarded: 'ab', detachedAt: 0 });
  });

  it('other keys of the sequence alone are plain input', () => {
    assert.deepEqual(feed('ctrl-p,ctrl-q', [[0x11], 'q', [0x11, 0x10, 0x61]]), { forwarded: '\x11q\x11\x10a', detachedAt: -1 });
  });

  it('releases held bytes when the input ends', () => {
    assert.deepEqual(feed('ctrl-p,ctrl-q', ['abc\x10']), { forwarded: 'abc\x10', detachedAt: -1 });
    assert.deepEqual(feed('a,b,c', ['xab']), { forwarded: 'xab', detachedAt: -1 });
  });

  it('a one-key sequence detaches at once', () => {
    assert.deepEqual(feed('ctrl-c', ['abc', '\x03']), { forwarded: 'abc', detachedAt: 1 });
  });
});
