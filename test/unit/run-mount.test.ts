import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseMount, type RunMount } from '../../src/build/run-mount.js';
import { cacheKey } from '../../src/build/cache.js';
import {
  acquireCacheMounts, cacheInstanceKey, cacheMountId, cacheMountRequest, cacheSourcePath, type CacheMountRequest, type HeldCacheMounts,
} from '../../src/build/cache-mounts.js';

// RUN --mount=type=cache: the options BuildKit takes, the cache's id and key, and how its directory is shared
// (flocks on temp files: within one process, as between processes, each acquisition is its own lock holder).

function mount(spec: string): RunMount {
  const m = parseMount(spec);
  assert.equal(typeof m, 'object', String(m));
  return m as RunMount;
}

const work = mkdtempSync(join(tmpdir(), 'berth-run-mount-test-'));
after(() => rmSync(work, { recursive: true, force: true }));
let seq = 0;
const freshDir = () => join(work, `mounts-${++seq}`);

function req(dir: string, spec: string): CacheMountRequest {
  const m = mount(`type=cache,${spec}`);
  return cacheMountRequest(dir, m, m.target!);
}

async function take(r: CacheMountRequest | CacheMountRequest[], signal?: AbortSignal): Promise<HeldCacheMounts> {
  const held = await acquireCacheMounts(Array.isArray(r) ? r : [r], signal);
  assert.ok(held);
  return held;
}

describe('RUN --mount=type=cache options', () => {
  it('parses sharing, id, mode, uid, gid, ro, from and source', () => {
    assert.deepEqual(mount('type=cache,target=/c'), { type: 'cache', target: '/c', readonly: false });
    assert.deepEqual(mount('type=cache,target=/c,id=x,sharing=LOCKED,mode=0700,uid=1000,gid=100,ro,from=s,source=/sub'), {
      type: 'cache', target: '/c', id: 'x', sharing: 'locked', mode: 0o700, uid: 1000, gid: 100, readonly: true, from: 's', source: '/sub',
    });
    assert.equal(mount('type=cache,dst=/c,sharing=private').sharing, 'private');
    assert.equal(mount('type=cache,target=/c,readonly=false').readonly, false);
  });

  it('rejects bad values as BuildKit does', () => {
    assert.equal(parseMount('type=cache,target=/c,sharing=exclusive'), 'unsupported sharing value "exclusive"');
    assert.equal(parseMount('type=cache,target=/c,mode=999'), 'invalid value 999 for mode');
    assert.equal(parseMount('type=cache,target=/c,uid=-1'), 'invalid value -1 for uid');
    assert.equal(parseMount('type=tmpfs,target=/c,sharing=locked'), 'invalid cache sharing set for tmpfs mount');
  });

  it('takes the target as written (cleaned) as the id, and keeps the old key for a plain id', () => {
    assert.equal(cacheMountId(mount('type=cache,target=/var/cache/apt/')), '/var/cache/apt');
    assert.equal(cacheMountId(mount('type=cache,target=rel//dir/./')), 'rel/dir');
    assert.equal(cacheMountId(mount('type=cache,target=/c,id=go')), 'go');
    assert.equal(cacheMountId(mount('type=cache,target=/c,id=')), '/c');
    assert.equal(cacheInstanceKey(mount('type=cache,target=/c,id=go')), cacheKey(['go']));
    assert.equal(cacheInstanceKey(mount('type=cache,target=/c')), cacheKey(['/c']));
    assert.equal(cacheSourcePath(mount('type=cache,target=/c,source=a/b')), '/a/b');
  });

  it('makes a cache its id plus what it starts from: the seed stage and the root permissions', () => {
    const plain = cacheInstanceKey(mount('type=cache,target=/c,id=x'));
    const perms = cacheInstanceKey(mount('type=cache,target=/c,id=x,uid=1000'));
    assert.notEqual(perms, plain);
    assert.notEqual(cacheInstanceKey(mount('type=cache,target=/c,id=x,uid=1001')), perms);
    // Permissions of a subpath do not set up the cache's root: the same cache.
    assert.equal(cacheInstanceKey(mount('type=cache,target=/c,id=x,uid=1000,source=sub')), plain);
    // Where it mounts, its sharing and read-only-ness do not change the cache.
    assert.equal(cacheInstanceKey(mount('type=cache,target=/elsewhere,id=x,sharing=locked,ro')), plain);
    const seeded = cacheInstanceKey(mount('type=cache,target=/c,id=x,from=s'), 'k1');
    assert.notEqual(seeded, plain);
    assert.notEqual(cacheInstanceKey(mount('type=cache,target=/c,id=x,from=s'), 'k2'), seeded);
    assert.notEqual(cacheInstanceKey(mount('type=cache,target=/c,id=x,from=s,source=/a'), 'k1'), seeded);
  });
});

describe('cache mount sharing', () => {
  it('shared: concurrent holders get the same directory, made on first use with mode, uid and gid', async () => {
    const dir = freshDir();
    const a = await take(req(dir, 'target=/c,id=s,mode=0710,uid=1234,gid=4321'));
    const b = await take(req(dir, 'target=/d,id=s,mode=0710,uid=1234,gid=4321,sharing=shared'));
    try {
      assert.equal(a.paths[0], b.paths[0]);
      const st = lstatSync(a.paths[0]!);
      assert.equal(st.mode & 0o7777, 0o710);
      assert.equal(st.uid, 1234);
      assert.equal(st.gid, 4321);
    } finally {
      a.release();
      b.release();
    }
    // Defaults: 0755 root, whatever the umask.
    const old = process.umask(0o077);
    try {
      const c = await take(req(dir, 'target=/c,id=defaults'));
      c.release();
      const st = lstatSync(c.paths[0]!);
      assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o755, 0, 0]);
    } finally {
      process.umask(old);
    }
  });

  it('locked: a second holder waits until the first releases, then gets the same directory', async () => {
    const dir = freshDir();
    const first = await take(req(dir, 'target=/c,id=l,sharing=locked'));
    writeFileSync(join(first.paths[0]!, 'mark'), '1');
    let second: HeldCacheMounts | undefined;
    const pending = take(req(dir, 'target=/c,id=l,sharing=locked')).then((h) => (second = h));
    await sleep(300);
    assert.equal(second, undefined, 'the second locked holder must wait');
    // A shared holder does not wait for it either: it gets another instance.
    const shared = await take(req(dir, 'target=/c,id=l'));
    assert.notEqual(shared.paths[0], first.paths[0]);
    shared.release();
    first.release();
    await pending;
    try {
      assert.equal(second!.paths[0], first.paths[0]);
      assert.ok(existsSync(join(second!.paths[0]!, 'mark')));
    } finally {
      second!.release();
    }
  });

  it('locked: waits for shared holders too, and an abort ends the wait with nothing held', async () => {
    const dir = freshDir();
    const shared = await take(req(dir, 'target=/c,id=l'));
    const ac = new AbortController();
    const waiting = acquireCacheMounts([req(dir, 'target=/c,id=l,sharing=locked')], ac.signal);
    await sleep(150);
    ac.abort();
    assert.equal(await waiting, undefined);
    shared.release();
    const again = await take(req(dir, 'target=/c,id=l,sharing=locked'));
    assert.equal(again.paths[0], shared.paths[0]);
    again.release();
  });

  it('private: a busy cache gives a new instance, kept and reused; a free one is the main one', async () => {
    const dir = freshDir();
    const key = cacheInstanceKey(mount('type=cache,target=/c,id=p'));
    const main = await take(req(dir, 'target=/c,id=p,sharing=private'));
    assert.equal(main.paths[0], join(dir, key));
    const p1 = await take(req(dir, 'target=/c,id=p,sharing=private'));
    const p2 = await take(req(dir, 'target=/c,id=p,sharing=private'));
    assert.equal(p1.paths[0], join(dir, `${key}.private-1`));
    assert.equal(p2.paths[0], join(dir, `${key}.private-2`));
    writeFileSync(join(p1.paths[0]!, 'kept'), '');
    p1.release();
    // private-1 is free again: reused, with its content.
    const p1again = await take(req(dir, 'target=/c,id=p,sharing=private'));
    assert.equal(p1again.paths[0], p1.paths[0]);
    assert.ok(existsSync(join(p1again.paths[0]!, 'kept')));
    // Shared users of a cache in private use share the next instance they can.
    p2.release();
    const s1 = await take(req(dir, 'target=/c,id=p'));
    const s2 = await take(req(dir, 'target=/c,id=p'));
    assert.equal(s1.paths[0], join(dir, `${key}.private-2`));
    assert.equal(s2.paths[0], s1.paths[0]);
    for (const h of [main, p1again, s1, s2]) h.release();
    const free = await take(req(dir, 'target=/c,id=p,sharing=private'));
    assert.equal(free.paths[0], join(dir, key));
    free.release();
  });

  it('releases everything on release (idempotent), so a locked cache is free again at once', async () => {
    const dir = freshDir();
    const h = await take([req(dir, 'target=/a,id=one,sharing=locked'), req(dir, 'target=/b,id=two,sharing=locked')]);
    h.release();
    h.release();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 2000);
    const again = await acquireCacheMounts([req(dir, 'target=/b,id=two,sharing=locked'), req(dir, 'target=/a,id=one,sharing=locked')], ac.signal);
    clearTimeout(timer);
    assert.ok(again, 'the released caches must be free');
    again.release();
  });

  it('mounts one instance for two mounts of the same cache in a step, and a source subpath inside it', async () => {
    const dir = freshDir();
    const h = await take([req(dir, 'target=/a,id=same,sharing=locked'), req(dir, 'target=/b,id=same,sharing=locked,source=sub/dir,uid=7')]);
    try {
      const key = cacheInstanceKey(mount('type=cache,target=/a,id=same'));
      assert.deepEqual(h.paths, [join(dir, key), join(dir, key, 'sub', 'dir')]);
      assert.equal(lstatSync(h.paths[1]!).uid, 7);
      assert.equal(lstatSync(h.paths[0]!).uid, 0);
    } finally {
      h.release();
    }
  });

  it('seeds a new cache from a stage (its source subpath, owners kept), once', async () => {
    const dir = freshDir();
    const stage = join(work, `stage-${++seq}`);
    mkdirSync(join(stage, 'opt', 'data'), { recursive: true });
    writeFileSync(join(stage, 'opt', 'data', 'f'), 'seed');
    chownSync(join(stage, 'opt', 'data', 'f'), 55, 66);
    let opened = 0;
    let closed = 0;
    const seeded = (): CacheMountRequest => {
      const m = mount('type=cache,target=/c,id=seeded,from=s,source=/opt/data');
      return cacheMountRequest(dir, m, '/c', { key: 'stage-key', open: () => (opened++, stage), close: () => void closed++ });
    };
    const h = await take(seeded());
    try {
      const f = join(h.paths[0]!, 'f');
      assert.equal(lstatSync(f).uid, 55);
      assert.equal(lstatSync(f).gid, 66);
      writeFileSync(join(h.paths[0]!, 'added'), '');
    } finally {
      h.release();
    }
    const again = await take(seeded());
    again.release();
    assert.equal(again.paths[0], h.paths[0]);
    assert.ok(existsSync(join(again.paths[0]!, 'added')), 'a seeded cache keeps what steps added');
    assert.deepEqual([opened, closed], [1, 1]);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.tmp-')), []);
    // A source that is not a directory in the stage is an error, and nothing is left held or half-made.
    const bad = cacheMountRequest(dir, mount('type=cache,target=/c,id=bad,from=s,source=/missing'), '/c', { key: 'k', open: () => stage, close: () => undefined });
    await assert.rejects(acquireCacheMounts([bad]), /\/missing is not a directory in s/);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.tmp-')), []);
    // A failing seed leaves the cache free: the next locked step gets it at once.
    let fail = true;
    const flaky = () => cacheMountRequest(dir, mount('type=cache,target=/c,id=flaky,sharing=locked,from=s,source=/opt'), '/c', {
      key: 'k', open: () => { if (fail) throw new Error('cannot mount the stage'); return stage; }, close: () => undefined,
    });
    await assert.rejects(acquireCacheMounts([flaky()]), /cannot mount the stage/);
    fail = false;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 2000);
    const got = await acquireCacheMounts([flaky()], ac.signal);
    clearTimeout(timer);
    assert.ok(got, 'the failed acquisition must not hold the cache');
    assert.ok(existsSync(join(got.paths[0]!, 'data', 'f')));
    got.release();
  });
});
