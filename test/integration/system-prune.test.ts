import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Berth, runAsync } from '../lib/berth.js';
import { writeBuildContext } from '../lib/build-context.js';

// `berth system prune` through the real CLI, on a root holding one of everything: what the default, -a and
// --volumes remove and keep (never a running container or its image, never a named volume), Docker's prompt and
// output sections, --filter as Docker passes it to each part, and the sweep of what a SIGKILLed build left.

const work = mkdtempSync(join(tmpdir(), 'berth-system-prune-test-'));
after(() => rmSync(work, { recursive: true, force: true }));
let seq = 0;

/** Stage `a`'s RUN is in no image (its record is dangling), nor is the cache mount; the COPY is built:1's. */
const DOCKERFILE = [
  'FROM busybox AS a',
  'RUN --mount=type=cache,target=/cache sh -c "head -c 20000 /dev/urandom > /cache/c"',
  'RUN head -c 30000 /dev/urandom > /tool && echo built > /out',
  'FROM busybox',
  'COPY --from=a /out /out',
  '',
].join('\n');

interface World {
  running: string;
  /** s1 (ran, has the anonymous volume) and s2 (created only, labelled prune=yes). */
  s1: string;
  s2: string;
  anonVolume: string;
  /** Image ids: an untagged commit, app:1 (a commit labelled prune=yes) and built:1. */
  dangling: string;
  app: string;
  built: string;
  busybox: string;
  cacheDangling: string[];
  cacheShared: string[];
}

/** A fresh root with one of everything; checked for kernel leftovers and removed after the test. */
function world(t: { after: (fn: () => void) => void }): { b: Berth; w: World } {
  const b = new Berth();
  t.after(() => assert.deepEqual(b.destroy(), []));
  b.importBusybox();
  const running = b.ok(['run', '-d', 'busybox', 'sleep', '1000']);
  b.ok(['run', '--name', 's1', '-v', '/data', 'busybox', 'sh', '-c', 'echo data > /data/f; head -c 5000 /dev/urandom > /big']);
  const s1 = b.inspect('s1');
  const s2 = b.ok(['create', '--name', 's2', '-l', 'prune=yes', 'busybox', 'true']);
  const dangling = b.ok(['commit', 's1']);
  const app = b.ok(['commit', '-c', 'LABEL prune=yes', 's1', 'app:1']);
  b.ok(['volume', 'create', 'keep']);
  const built = b.ok(['build', '-q', '-t', 'built:1', writeBuildContext(join(work, `ctx-${++seq}`), { Dockerfile: DOCKERFILE })]);
  const cache = records(b);
  const w: World = {
    running, s1: s1.Id, s2, anonVolume: s1.Mounts[0].Name, dangling, app, built, busybox: b.inspect('busybox').Id,
    cacheDangling: cache.filter((r) => !r.shared).map((r) => r.id).sort(),
    cacheShared: cache.filter((r) => r.shared).map((r) => r.id).sort(),
  };
  assert.equal(w.cacheDangling.length, 2, JSON.stringify(cache));
  assert.ok(w.cacheShared.length >= 1, JSON.stringify(cache));
  return { b, w };
}

function records(b: Berth): { id: string; shared: boolean }[] {
  const out = b.ok(['system', 'df', '-v', '--format', '{{range .BuildCache}}{{.ID}}|{{.Shared}}{{"\\n"}}{{end}}']);
  return out.split('\n').filter(Boolean).map((l) => {
    const [id, shared] = l.split('|');
    return { id: id!.replace(/\*$/, ''), shared: shared === 'true' };
  });
}

const lines = (text: string): string[] => text.split('\n').filter(Boolean).sort();

/** What the root holds: container ids, image "id name:tag" rows, volume names, build cache ids. */
function state(b: Berth) {
  return {
    containers: lines(b.ok(['ps', '-aq', '--no-trunc'])),
    images: lines(b.ok(['images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])),
    volumes: lines(b.ok(['volume', 'ls', '-q'])),
    cache: records(b).map((r) => r.id).sort(),
  };
}

const SECTIONS = ['Deleted Containers:', 'Deleted Volumes:', 'Deleted Images:', 'Deleted build cache objects:'];

interface Report {
  /** The prompt, when one was answered. */
  prompt?: string;
  sections: Record<string, string[]>;
  total: string;
}

/** Runs `system prune ARGS` (answering `input` when given), checks Docker's output shape, and splits it. */
function prune(b: Berth, args: string[], input?: string): Report {
  const r = b.run(['system', 'prune', ...args], input === undefined ? {} : { input });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  let out = r.stdout;
  let prompt: string | undefined;
  if (input !== undefined) {
    const at = out.indexOf(' [y/N] ');
    assert.ok(at > 0, `no prompt in:\n${out}`);
    prompt = out.slice(0, at + ' [y/N] '.length);
    out = out.slice(prompt.length);
  }
  const m = /^((?:[^\n]+:\n(?:[^\n]+\n)+\n)*)Total reclaimed space: (\d+(?:\.\d+)?[kMGT]?B)\n$/.exec(out);
  assert.ok(m, `unexpected output:\n${r.stdout}`);
  const sections: Record<string, string[]> = {};
  let last = -1;
  for (const block of m[1]!.split('\n\n').filter(Boolean)) {
    const [title, ...items] = block.split('\n');
    const at = SECTIONS.indexOf(title!);
    assert.ok(at > last, `section "${title}" unknown or out of Docker's order:\n${r.stdout}`);
    last = at;
    sections[title!] = items;
  }
  return { ...(prompt === undefined ? {} : { prompt }), sections, total: m[2]! };
}

/** The "deleted: ..." and "untagged: ..." lines of the images section. */
function imageLines(r: Report): { deleted: string[]; untagged: string[] } {
  const items = r.sections['Deleted Images:'] ?? [];
  for (const l of items) assert.match(l, /^(untagged: \S+|deleted: sha256:[0-9a-f]{64})$/);
  // Docker lists what an image loses, names first.
  const firstDeleted = items.findIndex((l) => l.startsWith('deleted: '));
  assert.ok(firstDeleted < 0 || items.slice(firstDeleted).every((l) => l.startsWith('deleted: ')), items.join('\n'));
  return {
    deleted: items.filter((l) => l.startsWith('deleted: ')).map((l) => l.slice('deleted: '.length)),
    untagged: items.filter((l) => l.startsWith('untagged: ')).map((l) => l.slice('untagged: '.length)).sort(),
  };
}

function assertRunning(b: Berth, w: World): void {
  const c = b.inspect(w.running);
  assert.equal(c.State.Running, true);
  assert.equal(c.Image, w.busybox);
  assert.equal(b.ok(['exec', w.running, 'echo', 'alive']), 'alive');
}

const bytesOf = (text: string): number => {
  const m = /^([\d.]+)([kMG]?)B$/.exec(text)!;
  return Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 } as Record<string, number>)[m[2]!]!;
};

describe('berth system prune', { concurrency: false }, () => {
  it('by default removes stopped containers, dangling images and the cache no image shares; keeps the rest', (t) => {
    const { b, w } = world(t);
    const r = prune(b, ['-f']);
    assert.deepEqual(lines(r.sections['Deleted Containers:']!.join('\n')), [w.s1, w.s2].sort());
    assert.equal(r.sections['Deleted Volumes:'], undefined, 'volumes only with --volumes');
    const img = imageLines(r);
    assert.deepEqual(img.untagged, []);
    assert.ok(img.deleted.includes(w.dangling), img.deleted.join('\n'));
    for (const kept of [w.app, w.built, w.busybox]) assert.ok(!img.deleted.includes(kept), kept);
    assert.deepEqual(lines(r.sections['Deleted build cache objects:']!.join('\n')), w.cacheDangling);
    // The stopped containers' writable layers, the dangling image's layer and stage a's cache (> 20 kB + 30 kB).
    assert.ok(bytesOf(r.total) > 55_000, r.total);

    const after = state(b);
    assert.deepEqual(after.containers, [w.running]);
    assert.deepEqual(after.images, [`${w.app} app:1`, `${w.built} built:1`, `${w.busybox} busybox:latest`].sort());
    assert.deepEqual(after.volumes, [w.anonVolume, 'keep'].sort());
    assert.deepEqual(after.cache, w.cacheShared);
    assertRunning(b, w);

    // Nothing left to remove.
    assert.equal(b.ok(['system', 'prune', '-f']), 'Total reclaimed space: 0B');
  });

  it('-a --volumes also removes every unused image, all build cache and unused anonymous volumes', (t) => {
    const { b, w } = world(t);
    const r = prune(b, ['-a', '--volumes', '-f']);
    assert.deepEqual(lines(r.sections['Deleted Containers:']!.join('\n')), [w.s1, w.s2].sort());
    assert.deepEqual(r.sections['Deleted Volumes:'], [w.anonVolume], 'freed by the container prune before it');
    const img = imageLines(r);
    assert.deepEqual(img.untagged, ['app:1', 'built:1']);
    for (const gone of [w.dangling, w.app, w.built]) assert.ok(img.deleted.includes(gone), gone);
    assert.ok(!img.deleted.includes(w.busybox));
    assert.deepEqual(lines(r.sections['Deleted build cache objects:']!.join('\n')), [...w.cacheDangling, ...w.cacheShared].sort());

    const after = state(b);
    assert.deepEqual(after.containers, [w.running]);
    assert.deepEqual(after.images, [`${w.busybox} busybox:latest`]);
    assert.deepEqual(after.volumes, ['keep'], 'a named volume is never pruned');
    assert.deepEqual(after.cache, []);
    assertRunning(b, w);
  });

  it("asks first with Docker's warning: n or no answer keeps everything, y and Y go ahead", (t) => {
    const { b, w } = world(t);
    const before = state(b);
    for (const input of ['n\n', '', 'yes\n']) {
      const r = b.run(['system', 'prune'], { input });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal(r.stdout, [
        'WARNING! This will remove:',
        '  - all stopped containers',
        '  - all dangling images',
        '  - unused build cache',
        '',
        'Are you sure you want to continue? [y/N] ',
      ].join('\n'));
      assert.deepEqual(state(b), before, `answer ${JSON.stringify(input)} removed something`);
    }

    const r = prune(b, ['-a'], 'Y\n');
    assert.equal(r.prompt, [
      'WARNING! This will remove:',
      '  - all stopped containers',
      '  - all images without at least one container associated to them',
      '  - all build cache',
      '',
      'Are you sure you want to continue? [y/N] ',
    ].join('\n'));
    assert.deepEqual(lines(r.sections['Deleted Containers:']!.join('\n')), [w.s1, w.s2].sort());
    assert.deepEqual(state(b).volumes, [w.anonVolume, 'keep'].sort(), 'volumes only with --volumes, also with -a');

    const v = prune(b, ['--volumes', '--filter', 'label!=keep'], 'y\n');
    assert.equal(v.prompt, [
      'WARNING! This will remove:',
      '  - all stopped containers',
      '  - all anonymous volumes not used by at least one container',
      '  - all dangling images',
      '  - unused build cache',
      '',
      '  Items to be pruned will be filtered with:',
      '  - label!=keep',
      '',
      'Are you sure you want to continue? [y/N] ',
    ].join('\n'));
    assert.deepEqual(v.sections['Deleted Volumes:'], [w.anonVolume]);
    assert.deepEqual(state(b).volumes, ['keep']);
  });

  it('passes label filters to containers, images and volumes, and until to containers, images and the cache', async (t) => {
    const { b, w } = world(t);
    // label=: only what carries it; the build cache accepts label filters and ignores them, as Docker's does.
    let r = prune(b, ['-a', '--volumes', '-f', '--filter', 'label=prune=yes']);
    assert.deepEqual(r.sections['Deleted Containers:'], [w.s2]);
    assert.equal(r.sections['Deleted Volumes:'], undefined, 'the anonymous volume has no labels');
    assert.deepEqual(imageLines(r).untagged, ['app:1']);
    assert.deepEqual(lines(r.sections['Deleted build cache objects:']!.join('\n')), [...w.cacheDangling, ...w.cacheShared].sort());
    let now = state(b);
    assert.deepEqual(now.containers, [w.running, w.s1].sort());
    assert.deepEqual(now.images, [`${w.dangling} <none>:<none>`, `${w.built} built:1`, `${w.busybox} busybox:latest`].sort());

    // label!=: what does not carry it.
    r = prune(b, ['-f', '--filter', 'label!=prune']);
    assert.deepEqual(r.sections['Deleted Containers:'], [w.s1]);
    assert.ok(imageLines(r).deleted.includes(w.dangling));

    // until: only what was created (containers, images) or last used (cache) before that time.
    const { b: b2, w: w2 } = world(t);
    const before = state(b2);
    r = prune(b2, ['-a', '-f', '--filter', 'until=1h']);
    assert.equal(r.sections['Deleted Containers:'], undefined);
    assert.equal(r.sections['Deleted build cache objects:'], undefined);
    now = state(b2);
    assert.deepEqual([now.containers, now.images, now.cache], [before.containers, before.images, before.cache]);
    await sleep(1100);
    const cut = new Date().toISOString();
    await sleep(1100);
    const s3 = b2.ok(['create', 'busybox', 'true']);
    r = prune(b2, ['-f', '--filter', `until=${cut}`]);
    assert.deepEqual(lines(r.sections['Deleted Containers:']!.join('\n')), [w2.s1, w2.s2].sort());
    assert.deepEqual(state(b2).containers, [w2.running, s3].sort());
  });

  it("refuses bad filters before asking, in Docker's words", (t) => {
    const { b } = world(t);
    const before = state(b);
    const cases: [string[], number, string][] = [
      [['--volumes', '--filter', 'until=1h'], 1, 'ERROR: The "until" filter is not supported with "--volumes"\n'],
      [['--filter', 'dangling=true'], 1, "Error: invalid filter 'dangling'\n"],
      [['--filter', 'until=1h', '--filter', 'until=2h'], 1, 'Error: more than one until filter specified\n'],
      [['--filter', 'until=soon'], 1, 'Error: failed to parse value as time or duration: "soon"\n'],
      [['--filter', 'label'], 125, 'invalid argument "label" for "--filter" flag: bad format of filter (expected name=value)\nSee \'berth system prune --help\'.\n'],
    ];
    for (const [args, code, stderr] of cases) {
      const r = b.run(['system', 'prune', ...args], { input: 'y\n' });
      assert.equal(r.code, code, args.join(' '));
      assert.equal(r.stderr, stderr);
      assert.equal(r.stdout, '', 'no prompt');
    }
    assert.deepEqual(state(b), before);
  });

  it("container, image and volume prune ask Docker's questions, take --filter, and refuse bad filters before asking", (t) => {
    const { b, w } = world(t);
    const before = state(b);
    const question = (warning: string) => `WARNING! This will remove ${warning}\nAre you sure you want to continue? [y/N] `;
    const asks: [string[], string][] = [
      [['container', 'prune'], question('all stopped containers.')],
      [['image', 'prune'], question('all dangling images.')],
      [['image', 'prune', '-a'], question('all images without at least one container associated to them.')],
      [['volume', 'prune'], question('anonymous local volumes not used by at least one container.')],
      [['volume', 'prune', '-a'], question('all local volumes not used by at least one container.')],
      // docker/cli words its question after the flag alone.
      [['volume', 'prune', '--filter', 'all=true'], question('anonymous local volumes not used by at least one container.')],
      [['image', 'prune', '--filter', 'dangling=true'], question('all dangling images.')],
    ];
    for (const [args, prompt] of asks) {
      for (const input of ['n\n', '']) {
        const r = b.run(args, { input });
        assert.deepEqual([r.code, r.stdout, r.stderr], [0, prompt, ''], args.join(' '));
      }
    }
    assert.deepEqual(state(b), before, 'a declined prune removed something');

    const bad: [string[], number, string][] = [
      [['container', 'prune', '--filter', 'dangling=true'], 1, "Error: invalid filter 'dangling'\n"],
      [['image', 'prune', '--filter', 'until=soon'], 1, 'Error: failed to parse value as time or duration: "soon"\n'],
      [['volume', 'prune', '--filter', 'until=1h'], 1, "Error: invalid filter 'until'\n"],
      [['volume', 'prune', '-a', '--filter', 'all=1'], 1, 'Error: conflicting options: cannot specify both --all and --filter all=1\n'],
      [['image', 'prune', '-a', '--filter', 'dangling=true'], 1, "Error: invalid filter 'dangling=false,true'\n"],
    ];
    for (const [args, code, stderr] of bad) {
      const r = b.run(args, { input: 'y\n' });
      assert.deepEqual([r.code, r.stdout, r.stderr], [code, '', stderr], args.join(' '));
    }

    // Confirmed, with filters: only what carries the label goes.
    let r = b.run(['container', 'prune', '--filter', 'label=prune=yes'], { input: 'y\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${question('all stopped containers.')}Deleted Containers:\n${w.s2}\n\nTotal reclaimed space: 0B\n`);
    r = b.run(['image', 'prune', '-a', '--filter', 'label=prune=yes'], { input: 'y\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[y\/N\] Deleted Images:\nuntagged: app:1\ndeleted: sha256:/);
    const now = state(b);
    assert.deepEqual(now.containers, [w.running, w.s1].sort());
    assert.ok(!now.images.some((i) => i.endsWith(' app:1')) && now.images.includes(`${w.built} built:1`), now.images.join('\n'));
    r = b.run(['volume', 'prune', '-f', '--filter', 'label!=keep']);
    assert.equal(r.stdout, 'Total reclaimed space: 0B\n', 's1 still uses its anonymous volume');
  });

  it('sweeps what a SIGKILLed build left: its RUN container, mounts, cgroups and temp dirs', async (t) => {
    const b = new Berth();
    let pid = '';
    t.after(() => {
      // Should the sweep fail, the killed build's RUN container and bundle would outlive the root.
      const runc = join(b.root, 'run', 'runc');
      if (existsSync(runc)) for (const id of readdirSync(runc)) spawnSync('runc', ['--root', runc, 'delete', '-f', id]);
      if (pid) for (const n of readdirSync('/dev/shm')) if (n.startsWith(`berth-build-${pid}-`)) rmSync(join('/dev/shm', n), { recursive: true, force: true });
      assert.deepEqual(b.destroy(), []);
    });
    b.importBusybox();
    const dir = writeBuildContext(join(work, `ctx-${++seq}`), { Dockerfile: `FROM busybox\nRUN echo started-${Date.now()}; sleep 60\n` });
    const k = runAsync(b, ['build', '--progress', 'plain', dir]);
    pid = String(k.child.pid);
    for (let i = 0; i < 200 && !/^#\d+ started-/m.test(k.stderr()); i++) await sleep(50);
    assert.match(k.stderr(), /^#\d+ started-/m);
    k.child.kill('SIGKILL');
    await k.done;
    const left = (): string[] => {
      const out: string[] = [];
      const tmp = join(b.root, 'tmp');
      if (existsSync(tmp)) out.push(...readdirSync(tmp).filter((n) => n.includes(pid)).map((n) => `tmp ${n}`));
      const runc = join(b.root, 'run', 'runc');
      if (existsSync(runc)) out.push(...readdirSync(runc).map((n) => `runc state ${n}`));
      out.push(...b.leftovers().filter((l) => l.startsWith('mount ')));
      out.push(...readdirSync('/dev/shm').filter((n) => n.startsWith(`berth-build-${pid}-`)).map((n) => `/dev/shm/${n}`));
      for (const ctl of readdirSync('/sys/fs/cgroup')) {
        try {
          out.push(...readdirSync(join('/sys/fs/cgroup', ctl)).filter((d) => d.startsWith('berth-build-') && d.includes(pid)).map((d) => `cgroup ${ctl}/${d}`));
        } catch {
          // not a directory
        }
      }
      return out;
    };
    assert.notDeepEqual(left(), [], 'the killed build left nothing to sweep');
    assert.equal(prune(b, ['-f']).sections['Deleted Containers:'], undefined, 'a build container is not a container');
    assert.deepEqual(left(), []);
  });
});
