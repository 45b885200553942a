import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Berth, runAsync } from '../lib/berth.js';
import { writeBuildContext } from '../lib/build-context.js';
import { until } from '../lib/until.js';

// RUN --mount=type=cache through real builds: sharing=locked steps never overlap (parallel stages of one build, and
// two `berth build` processes on one root), shared ones do, private ones get their own directory when the cache is
// busy; content persists across builds; mode/uid/gid set up a new cache; ro, source and from are honoured; locks go
// with failed, interrupted and waiting builds.

const work = mkdtempSync(join(tmpdir(), 'berth-cache-mounts-test-'));
let seq = 0;

const context = (dockerfile: string): string => writeBuildContext(join(work, `ctx-${++seq}`), { Dockerfile: dockerfile });

/** Builds and returns the image's file at `path` (read with `berth run`). */
function buildAndRead(b: Berth, dockerfile: string, path: string, extra: string[] = []): string {
  const tag = `cm-${++seq}`;
  const r = b.run(['build', '--progress', 'plain', ...extra, '-t', tag, context(dockerfile)], { timeout: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  return b.ok(['run', '--rm', tag, 'cat', path]);
}

/**
 * A RUN that logs "<me>-start", waits up to `waitS` seconds for the other step to have started (its marker in the
 * cache), then logs "<me>-end". Steps sharing the directory at once log start, start, end, end; steps taking turns
 * log one start-end pair after the other.
 */
function meetRun(mount: string, me: string, other: string, waitS: number): string {
  return `RUN --mount=${mount} echo ${me}-start >> /c/log; touch /c/${me}-began; i=0; ` +
    `while [ ! -e /c/${other}-began ] && [ $i -lt ${waitS * 10} ]; do sleep 0.1; i=$((i+1)); done; echo ${me}-end >> /c/log; ls /c > /seen-${me}`;
}

/** Two parallel stages a and b with the same cache mount, and a final stage that reads the cache's log. */
function parallelStages(id: string, sharing: string, waitS: number): string {
  const m = `type=cache,id=${id},target=/c,sharing=${sharing}`;
  return [
    'FROM busybox AS a', meetRun(m, 'a', 'b', waitS),
    'FROM busybox AS b', meetRun(m, 'b', 'a', waitS),
    'FROM busybox', 'COPY --from=a /seen-a /', 'COPY --from=b /seen-b /',
    `RUN --mount=type=cache,id=${id},target=/c cp /c/log /log`, '',
  ].join('\n');
}

const lines = (s: string) => s.split('\n').filter(Boolean);

/** Whether a log of start/end markers shows the two steps one after the other. */
function serial(log: string[]): boolean {
  assert.equal(log.length, 4, log.join(' '));
  return log[0]!.replace('-start', '') === log[1]!.replace('-end', '') && log[2]!.replace('-start', '') === log[3]!.replace('-end', '');
}

describe('RUN --mount=type=cache', { concurrency: false }, () => {
  const b = new Berth();
  const mountsDir = () => join(b.root, 'build-cache', 'mounts');
  before(() => {
    b.importBusybox();
  });
  after(() => {
    const left = b.leftovers();
    const tmp = join(b.root, 'tmp');
    if (existsSync(tmp)) for (const n of readdirSync(tmp)) if (/^(build-|berth-build-|from-)/.test(n)) left.push(`tmp ${n}`);
    if (existsSync(mountsDir())) for (const n of readdirSync(mountsDir())) if (n.startsWith('.tmp-')) left.push(`half-made cache ${n}`);
    const destroyed = b.destroy();
    rmSync(work, { recursive: true, force: true });
    assert.deepEqual(left, []);
    assert.deepEqual(destroyed, []);
  });

  it('shared (the default): parallel stages use the same directory at once', () => {
    const log = lines(buildAndRead(b, parallelStages('shared-1', 'shared', 15), '/log'));
    assert.deepEqual(log.slice(0, 2).sort(), ['a-start', 'b-start'], log.join(' '));
    assert.ok(!serial(log), log.join(' '));
  });

  it('locked: parallel stages take turns', () => {
    const log = lines(buildAndRead(b, parallelStages('locked-1', 'locked', 2), '/log'));
    assert.ok(serial(log), log.join(' '));
  });

  it('private: a step finding the cache busy gets its own directory, kept for the next build', () => {
    // The handshake goes through a second, shared cache: both steps are surely inside their RUN together.
    const run = (me: string, other: string) =>
      `RUN --mount=type=cache,id=private-1,target=/c,sharing=private --mount=type=cache,id=hs-1,target=/hs ` +
      `touch /c/${me}-was-here /hs/${me}; i=0; while [ ! -e /hs/${other} ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; ` +
      `[ -e /hs/${other} ] || exit 7; ls /c > /seen-${me}`;
    const df = ['FROM busybox AS a', run('a', 'b'), 'FROM busybox AS b', run('b', 'a'),
      'FROM busybox', 'COPY --from=a /seen-a /', 'COPY --from=b /seen-b /', 'RUN cat /seen-a /seen-b > /seen', ''].join('\n');
    const seen = lines(buildAndRead(b, df, '/seen'));
    assert.deepEqual(seen.sort(), ['a-was-here', 'b-was-here'], 'each step sees only its own directory');
    const instances = readdirSync(mountsDir()).filter((n) => !n.endsWith('.lock'));
    assert.equal(instances.filter((n) => n.endsWith('.private-1')).length, 1, instances.join(' '));
    // Alone, a private step gets the first instance again, with what it kept.
    const again = lines(buildAndRead(b, 'FROM busybox\nRUN --mount=type=cache,id=private-1,target=/c,sharing=private ls /c > /again\n', '/again'));
    assert.equal(again.length, 1);
    assert.match(again[0]!, /^[ab]-was-here$/);
  });

  it('locked: two `berth build` processes on one root take turns; shared ones overlap', async () => {
    const df = (sharing: string) =>
      `FROM busybox\nARG ME\nRUN --mount=type=cache,id=xproc-${sharing},target=/c,sharing=${sharing} echo $ME-start; echo $ME-start >> /c/log; sleep 3; echo $ME-end >> /c/log\n`;
    for (const sharing of ['locked', 'shared']) {
      const dir = context(df(sharing));
      const first = runAsync(b, ['build', '--progress', 'plain', '--build-arg', 'ME=one', dir]);
      await until('the first build to start its RUN', () => /one-start/.test(first.stderr()), 20_000);
      const second = runAsync(b, ['build', '--progress', 'plain', '--build-arg', 'ME=two', dir]);
      const [r1, r2] = await Promise.all([first.done, second.done]);
      assert.equal(r1.code, 0, r1.stderr);
      assert.equal(r2.code, 0, r2.stderr);
      const log = lines(buildAndRead(b, `FROM busybox\nRUN --mount=type=cache,id=xproc-${sharing},target=/c cp /c/log /log\n`, '/log'));
      if (sharing === 'locked') assert.deepEqual(log, ['one-start', 'one-end', 'two-start', 'two-end']);
      else assert.deepEqual(log, ['one-start', 'two-start', 'one-end', 'two-end']);
    }
  });

  it('keeps content across builds, and sets up a new cache with mode, uid and gid', () => {
    const m = 'type=cache,id=perm-1,target=/var/c,mode=0750,uid=123,gid=456';
    const first = buildAndRead(b, `FROM busybox\nRUN --mount=${m} stat -c '%a %u %g' /var/c > /perm && echo kept > /var/c/file && cat /perm\n`, '/perm');
    assert.equal(first, '750 123 456');
    // Another build (another step), same cache: the file is there.
    assert.equal(buildAndRead(b, `FROM busybox\nRUN --mount=${m} cat /var/c/file > /got\n`, '/got'), 'kept');
    // The id defaults to the target; relative targets are under the working directory.
    assert.equal(buildAndRead(b, 'FROM busybox\nWORKDIR /w\nRUN --mount=type=cache,target=rel echo x > rel/f\nRUN --mount=type=cache,target=rel ls /w/rel > /got\n', '/got'), 'f');
    // As in BuildKit, other permissions make another cache: new, with them.
    assert.equal(buildAndRead(b, "FROM busybox\nRUN --mount=type=cache,id=perm-1,target=/c,uid=9 stat -c '%a %u %g' /c > /got; ls /c >> /got\n", '/got'), '755 9 0');
    // A subpath of the cache (source=) is made on first use (mode/uid/gid then apply to it).
    const sub = 'type=cache,id=sub-1,target=/var/c';
    assert.equal(buildAndRead(b, `FROM busybox\nRUN --mount=${sub},source=sub/dir,target=/s,uid=5 touch /s/in-sub\nRUN --mount=${sub} { stat -c %u /var/c/sub/dir; ls /var/c/sub/dir; } > /got\n`, '/got'), '5\nin-sub');
  });

  it('mounts read-only with ro, and seeds a new cache from a stage (from=, source=)', () => {
    const ro = b.run(['build', context('FROM busybox\nRUN --mount=type=cache,id=ro-1,target=/c,ro touch /c/x\n')]);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    const df = (cmd: string) => [
      'FROM busybox AS seed', 'RUN mkdir -p /opt/seed && echo seeded > /opt/seed/s && chown 7:8 /opt/seed/s && echo outside > /opt/other',
      'FROM busybox', `RUN --mount=type=cache,id=seeded-1,target=/c,from=seed,source=/opt/seed ${cmd}`, '',
    ].join('\n');
    assert.equal(buildAndRead(b, df("{ ls /c; cat /c/s; stat -c '%u %g' /c/s; } > /got; echo added > /c/added"), '/got'), 's\nseeded\n7 8');
    // The seeded cache keeps what steps add.
    assert.equal(buildAndRead(b, df('cat /c/added > /got'), '/got'), 'added');
  });

  it('frees a locked cache when a build fails or is interrupted, also while waiting for it', async () => {
    const fail = b.run(['build', context('FROM busybox\nRUN --mount=type=cache,id=lk-1,target=/c,sharing=locked touch /c/x; exit 3\n')]);
    assert.equal(fail.code, 1, fail.stderr);
    // The step prints "held-<name>" once inside (a progress line "#N held-a"; the step's title has "held-$N").
    const holder = (name: string) => context(`FROM busybox\nARG N=${name}\nRUN --mount=type=cache,id=lk-1,target=/c,sharing=locked echo held-$N; sleep 60\n`);
    const held = (p: { stderr: () => string }, name: string) => new RegExp(`^#\\d+ held-${name}$`, 'm').test(p.stderr());
    const a = runAsync(b, ['build', '--progress', 'plain', holder('a')]);
    let w: ReturnType<typeof runAsync> | undefined;
    try {
      await until('the first build to hold the cache', () => held(a, 'a'), 20_000);
      w = runAsync(b, ['build', '--progress', 'plain', holder('w')]);
      await until('the second build to reach the step', () => /RUN --mount=type=cache,id=lk-1/.test(w!.stderr()), 20_000);
      await sleep(1500);
      assert.ok(!held(w, 'w'), `the second build must wait for the locked cache:\n${w.stderr()}`);
      // Interrupted while waiting: it stops at once.
      let t0 = Date.now();
      w.child.kill('SIGINT');
      const rw = await w.done;
      assert.equal(rw.code, 130, rw.stderr);
      assert.ok(Date.now() - t0 < 10_000);
      // Interrupted while holding: nobody holds the cache's locks any more, and the next build gets it at once.
      t0 = Date.now();
      a.child.kill('SIGINT');
      assert.equal((await a.done).code, 130);
      for (const n of readdirSync(mountsDir()).filter((f) => f.endsWith('.lock'))) {
        assert.equal(spawnSync('flock', ['-n', '-x', join(mountsDir(), n), 'true']).status, 0, `${n} is still held`);
      }
      const next = b.run(['build', '-q', context('FROM busybox\nRUN --mount=type=cache,id=lk-1,target=/c,sharing=locked ls /c\n')], { timeout: 20_000 });
      assert.equal(next.code, 0, next.stderr);
      assert.ok(Date.now() - t0 < 20_000);
    } finally {
      for (const p of [a, w]) {
        if (p && p.child.exitCode === null && p.child.signalCode === null) {
          p.child.kill('SIGINT');
          await p.done;
        }
      }
    }
  });
});
