import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Berth } from '../lib/berth.js';
import { writeBuildContext } from '../lib/build-context.js';

// `berth builder prune` through the real CLI, against real builds: what each mode and flag removes (seen by
// rebuilding: CACHED or "cache miss"), Docker's prompt and output, invalid flags; and `system df -v`'s build
// cache section.

const work = mkdtempSync(join(tmpdir(), 'berth-prune-test-'));
after(() => rmSync(work, { recursive: true, force: true }));
let seq = 0;

const context = (dockerfile: string): string => writeBuildContext(join(work, `ctx-${++seq}`), { Dockerfile: dockerfile });

/** A fresh root with busybox; checked for kernel leftovers and removed after the test. */
function berth(t: { after: (fn: () => void) => void }): Berth {
  const b = new Berth();
  t.after(() => assert.deepEqual(b.destroy(), []));
  b.importBusybox();
  return b;
}

/** Builds and returns, per step text, whether it was cached or why it missed. */
function build(b: Berth, dir: string, tag?: string): Map<string, string> {
  const r = b.run(['build', '--progress', 'plain', ...(tag ? ['-t', tag] : []), dir]);
  assert.equal(r.code, 0, r.stderr);
  const names = new Map<string, string>();
  const out = new Map<string, string>();
  for (const line of r.stderr.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const name = names.get(m[1]!);
    if (name === undefined) names.set(m[1]!, m[2]!.replace(/^\[[^\]]*\] /, ''));
    else if (m[2] === 'CACHED') out.set(name, 'CACHED');
    else if (m[2]!.includes(': cache miss: ')) out.set(name, m[2]!.slice(m[2]!.indexOf(': cache miss: ') + ': cache miss: '.length));
  }
  return out;
}

interface Row { id: string; type: string; size: string; usage: string; shared: boolean; inUse: boolean; description: string }

/** The build cache records, full ids, through `system df -v --format`. */
function records(b: Berth): Row[] {
  const out = b.ok(['system', 'df', '-v', '--format', '{{range .BuildCache}}{{.ID}}|{{.CacheType}}|{{.Size}}|{{.UsageCount}}|{{.Shared}}|{{.InUse}}|{{.Description}}{{"\\n"}}{{end}}']);
  return out.split('\n').filter(Boolean).map((l) => {
    const [id, type, size, usage, shared, inUse, ...d] = l.split('|');
    return { id: id!.replace(/\*$/, ''), type: type!, size: size!, usage: usage!, shared: shared === 'true', inUse: inUse === 'true', description: d.join('|') };
  });
}

/** Runs a prune; returns the ids it lists and the reclaimed text, checking Docker's output shape. */
function prune(b: Berth, args: string[], input?: string): { deleted: string[]; reclaimed: string; stdout: string } {
  const r = b.run(['builder', 'prune', ...args], input === undefined ? {} : { input });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const m = /^(?:Deleted build cache objects:\n((?:[0-9a-f]{25}\n)+)\n)?Total reclaimed space: (\d+(?:\.\d+)?[kMGT]?B)\n$/.exec(r.stdout.replace(/^WARNING![^\n]*\[y\/N\] /, ''));
  assert.ok(m, `unexpected output:\n${r.stdout}`);
  return { deleted: (m[1] ?? '').split('\n').filter(Boolean), reclaimed: m[2]!, stdout: r.stdout };
}

/** go-units HumanSize text back to bytes (approximately). */
function bytesOf(text: string): number {
  const m = /^([\d.]+)([kMG]?)B$/.exec(text)!;
  return Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 } as Record<string, number>)[m[2]!]!;
}

const MULTI_STAGE = [
  'FROM busybox AS builder',
  'RUN head -c 200000 /dev/urandom > /tool && echo built > /out',
  'RUN --mount=type=cache,target=/cache sh -c "head -c 50000 /dev/urandom > /cache/data"',
  'FROM busybox',
  'COPY --from=builder /out /out',
  'RUN head -c 100000 /dev/urandom > /final',
  '',
].join('\n');
const BUILDER_STEPS = ['RUN head -c 200000 /dev/urandom > /tool && echo built > /out', 'RUN --mount=type=cache,target=/cache sh -c "head -c 50000 /dev/urandom > /cache/data"'];
const FINAL_STEPS = ['COPY --from=builder /out /out', 'RUN head -c 100000 /dev/urandom > /final'];

describe('berth builder prune', { concurrency: false }, () => {
  it('system df -v lists the records: type, size, uses, and whether an image shares them', (t) => {
    const b = berth(t);
    const dir = context(MULTI_STAGE);
    build(b, dir, 'app');
    const again = build(b, dir, 'app');
    for (const s of [...BUILDER_STEPS, ...FINAL_STEPS]) assert.equal(again.get(s), 'CACHED', s);

    const rows = records(b);
    assert.equal(rows.length, 5, JSON.stringify(rows));
    for (const r of rows) assert.match(r.id, /^[0-9a-f]{25}$/);
    const mounts = rows.filter((r) => r.type === 'exec.cachemount');
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0]!.shared, false);
    assert.ok(bytesOf(mounts[0]!.size) >= 50_000, mounts[0]!.size);
    const regular = rows.filter((r) => r.type === 'regular');
    const byStep = (text: string) => regular.find((r) => r.description.includes(text.replace(/^RUN /, '')))!;
    assert.equal(byStep('head -c 200000').shared, false, 'an earlier stage is in no image');
    assert.ok(bytesOf(byStep('head -c 200000').size) > 200_000);
    assert.equal(byStep('head -c 100000').shared, true, 'the final stage is in app');
    for (const r of regular) assert.equal(r.usage, '2', `made once, reused once: ${r.description}`);

    // Docker's table: the other sections, then the cache least recently used first, ids truncated to 12.
    const out = b.ok(['system', 'df', '-v']);
    const lines = out.split('\n');
    assert.equal(lines[0], 'Images space usage:');
    assert.match(lines[2]!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s+SHARED SIZE\s+UNIQUE SIZE\s+CONTAINERS$/);
    assert.ok(lines.includes('Containers space usage:') && lines.includes('Local Volumes space usage:'));
    const at = lines.findIndex((l) => l.startsWith('Build cache usage: '));
    const own = regular.filter((r) => !r.shared).reduce((n, r) => n + bytesOf(r.size), bytesOf(mounts[0]!.size));
    assert.ok(Math.abs(bytesOf(lines[at]!.slice('Build cache usage: '.length)) - own) < 2000, lines[at]);
    assert.match(lines[at + 2]!, /^CACHE ID\s+CACHE TYPE\s+SIZE\s+CREATED\s+LAST USED\s+USAGE\s+SHARED$/);
    const table = lines.slice(at + 3).filter(Boolean);
    assert.equal(table.length, 5);
    for (const l of table) assert.match(l, /^[0-9a-f]{12}\s+(regular|exec\.cachemount)\s+\d[\d.]*[kMG]?B\s+.+ ago\s+.+ ago\s+\d+\s+(true|false)$/);

    // The summary counts only what no image shares as the cache's size.
    const summary = b.ok(['system', 'df']).split('\n').find((l) => l.startsWith('Build Cache'))!.split(/\s{2,}/);
    assert.equal(summary[1], '5');
    assert.equal(summary[3], lines[at]!.slice('Build cache usage: '.length));
  });

  it('system df -v counts every RUN that used a cache mount (USAGE)', (t) => {
    const b = berth(t);
    build(b, context('FROM busybox\nRUN --mount=type=cache,id=shared-c,target=/c sh -c "echo one >> /c/log"\n'));
    assert.equal(records(b).find((r) => r.type === 'exec.cachemount')!.usage, '1');
    // Another step (not a cache hit) with the same cache id: the same mount, used again.
    build(b, context('FROM busybox\nRUN --mount=type=cache,id=shared-c,target=/d sh -c "cat /d/log"\n'));
    const mounts = records(b).filter((r) => r.type === 'exec.cachemount');
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0]!.usage, '2');
    const row = b.ok(['system', 'df', '-v']).split('\n').find((l) => l.startsWith(mounts[0]!.id.slice(0, 12)))!;
    assert.match(row, /exec\.cachemount\s+\S+\s+.+ ago\s+.+ ago\s+2\s+false$/);
  });

  it('without -a removes what no image shares (earlier stages, cache mounts); -a removes the rest', (t) => {
    const b = berth(t);
    const dir = context(MULTI_STAGE);
    build(b, dir, 'app');
    const rows = records(b);
    const dangling = rows.filter((r) => !r.shared);
    assert.equal(dangling.length, 3);

    const first = prune(b, ['-f']);
    assert.deepEqual(new Set(first.deleted), new Set(dangling.map((r) => r.id)));
    // The bytes the cache alone held: the earlier stage's layer and the mount's files.
    assert.ok(bytesOf(first.reclaimed) > 240_000, first.reclaimed);
    assert.deepEqual(records(b).map((r) => r.id).sort(), rows.filter((r) => r.shared).map((r) => r.id).sort());
    assert.match(b.ok(['system', 'df']).split('\n').find((l) => l.startsWith('Build Cache'))!, /^Build Cache\s+2\s+0\s+0B\s+0B$/);
    assert.equal(prune(b, ['-f']).stdout, 'Total reclaimed space: 0B\n', 'nothing dangling is left');

    const rebuilt = build(b, dir, 'app');
    for (const s of BUILDER_STEPS) assert.equal(rebuilt.get(s), 'cached result was pruned', s);
    for (const s of FINAL_STEPS) assert.equal(rebuilt.get(s), 'CACHED', s);

    const all = prune(b, ['--all', '--force']);
    assert.equal(all.deleted.length, 5);
    assert.deepEqual(records(b), []);
    assert.match(b.ok(['system', 'df']).split('\n').find((l) => l.startsWith('Build Cache'))!, /^Build Cache\s+0\s+0\s+0B\s+0B$/);
    const cold = build(b, dir, 'app');
    for (const s of [...BUILDER_STEPS, ...FINAL_STEPS]) assert.equal(cold.get(s), 'cached result was pruned', s);
    // The image itself is untouched.
    assert.equal(b.ok(['run', '--rm', 'app', 'cat', '/out']), 'built');
  });

  it('asks first, reading the answer from stdin; only "y" confirms', (t) => {
    const b = berth(t);
    const dir = context('FROM busybox\nRUN echo one > /one\n');
    build(b, dir, 'one');
    b.ok(['rmi', 'one']);
    assert.equal(records(b).length, 1);
    const dangling = 'WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ';
    for (const input of ['n\n', '\n', '', 'yes\n', 'no']) {
      const r = b.run(['builder', 'prune'], { input });
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, dangling, ''], JSON.stringify(input));
    }
    const r = b.run(['builder', 'prune', '-a'], { input: 'N\n' });
    assert.equal(r.stdout, 'WARNING! This will remove all build cache. Are you sure you want to continue? [y/N] ');
    assert.equal(records(b).length, 1, 'nothing removed without a yes');

    const yes = prune(b, [], 'Y\n');
    assert.ok(yes.stdout.startsWith(`${dangling}Deleted build cache objects:\n`), yes.stdout);
    assert.equal(yes.deleted.length, 1);
    assert.deepEqual(records(b), []);
  });

  it('--filter until keeps what was used after the time; type and id pick records', async (t) => {
    const b = berth(t);
    const older = context('FROM busybox\nRUN echo older > /older\n');
    const newer = context('FROM busybox\nRUN echo newer > /newer\n');
    build(b, older, 'older');
    await sleep(50);
    const cutoff = new Date().toISOString();
    await sleep(50);
    build(b, newer, 'newer');

    assert.equal(prune(b, ['-af', '--filter', 'until=24h']).stdout, 'Total reclaimed space: 0B\n', 'all used within a day');
    assert.equal(prune(b, ['-af', '--filter', 'unused-for=90m']).stdout, 'Total reclaimed space: 0B\n');
    const before = records(b);
    assert.equal(before.length, 2);
    const r = prune(b, ['-af', '--filter', `until=${cutoff}`]);
    assert.deepEqual(r.deleted, [before.find((x) => x.description.includes('/older'))!.id]);
    assert.equal(build(b, older).get('RUN echo older > /older'), 'cached result was pruned');
    assert.equal(build(b, newer).get('RUN echo newer > /newer'), 'CACHED');

    // A cache mount and two steps: type picks the mount, an id prefix (as df -v shows it) one step.
    build(b, context('FROM busybox\nRUN --mount=type=cache,target=/c sh -c "echo x > /c/x"\n'));
    const now = records(b);
    const mount = now.find((x) => x.type === 'exec.cachemount')!;
    assert.deepEqual(prune(b, ['-af', '--filter', 'type=exec.cachemount']).deleted, [mount.id]);
    assert.deepEqual(prune(b, ['-af', '--filter', 'type=source.local']).deleted, []);
    const step = now.find((x) => x.description.includes('/newer'))!;
    assert.deepEqual(prune(b, ['-af', '--filter', `id=${step.id.slice(0, 12)}`]).deleted, [step.id]);
    assert.deepEqual(records(b).map((x) => x.id).sort(), now.filter((x) => x !== mount && x !== step).map((x) => x.id).sort());
    // Without -a, a filter still spares what images share.
    const shared = records(b).find((x) => x.shared)!;
    assert.deepEqual(prune(b, ['-f', '--filter', `id=${shared.id}`]).deleted, []);
  });

  it('--keep-storage removes the least recently used records until the cache is below the size', (t) => {
    const b = berth(t);
    const x = context('FROM busybox\nRUN head -c 300000 /dev/urandom > /x\n');
    const y = context('FROM busybox\nRUN head -c 300000 /dev/urandom > /y\n');
    build(b, x, 'x');
    build(b, y, 'y');
    assert.equal(build(b, x, 'x').get('RUN head -c 300000 /dev/urandom > /x'), 'CACHED', 'x is now the more recently used');
    b.ok(['rmi', 'x', 'y']);
    const rows = records(b);
    assert.ok(rows.every((r) => !r.shared && bytesOf(r.size) > 300_000), JSON.stringify(rows));

    assert.equal(prune(b, ['-f', '--keep-storage', '1m']).stdout, 'Total reclaimed space: 0B\n', 'already below 1MiB');
    const r = prune(b, ['-f', '--keep-storage', '400k']);
    assert.deepEqual(r.deleted, [rows.find((row) => row.description.includes('/y'))!.id]);
    assert.ok(bytesOf(r.reclaimed) > 300_000 && bytesOf(r.reclaimed) < 320_000, r.reclaimed);
    assert.equal(build(b, x).get('RUN head -c 300000 /dev/urandom > /x'), 'CACHED');
    assert.equal(build(b, y).get('RUN head -c 300000 /dev/urandom > /y'), 'cached result was pruned');
  });

  it('leaves a cache mount a running build holds, and shows it in use', async (t) => {
    const b = berth(t);
    const dir = context('FROM busybox\nRUN --mount=type=cache,target=/c sh -c "echo x > /c/x; echo started; sleep 5"\n');
    const child = b.spawn(['build', '--progress', 'plain', dir]);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.resume();
    const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 128)));
    t.after(async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      await done;
    });
    for (let i = 0; i < 300 && !/started/.test(stderr); i++) await sleep(50);
    assert.match(stderr, /started/);

    const busy = records(b).filter((r) => r.inUse);
    assert.equal(busy.length, 1);
    assert.equal(busy[0]!.type, 'exec.cachemount');
    const table = b.ok(['system', 'df', '-v']).split('\n');
    assert.ok(table.some((l) => l.startsWith(`${busy[0]!.id.slice(0, 12)}*`) && /exec\.cachemount/.test(l)), table.join('\n'));
    assert.match(b.ok(['system', 'df']).split('\n').find((l) => l.startsWith('Build Cache'))!, /^Build Cache\s+\d+\s+1\s/);
    assert.ok(!prune(b, ['-af']).deleted.includes(busy[0]!.id), 'in use: kept');
    assert.ok(records(b).some((r) => r.id === busy[0]!.id));

    assert.equal(await done, 0, stderr);
    assert.ok(prune(b, ['-af']).deleted.includes(busy[0]!.id), 'free again: removed');
  });

  it('rejects bad filters and sizes before asking, in Docker\'s words and exit codes', (t) => {
    const b = berth(t);
    const cases: [string[], number, string][] = [
      [['--filter', 'foo=bar'], 1, "Error: invalid filter 'foo'"],
      [['--filter', 'until=soon'], 1, 'Error: "until" filter expects a duration (e.g., \'24h\') or a timestamp: failed to parse value as time or duration: "soon"'],
      [['--filter', 'until=1h', '--filter', 'until=2h'], 1, 'Error: filters expect only one value'],
      [['--filter', 'until=1h', '--filter', 'unused-for=2h'], 1, 'Error: conflicting filters: "until" and "unused-for"'],
      [['--filter', 'nonsense'], 125, 'invalid argument "nonsense" for "--filter" flag: bad format of filter (expected name=value)'],
      [['--keep-storage', 'lots'], 125, 'invalid argument "lots" for "--keep-storage" flag: invalid size: \'lots\''],
    ];
    for (const [args, code, message] of cases) {
      for (const force of [[], ['-f']]) {
        const r = b.run(['builder', 'prune', ...force, ...args], { input: 'y\n' });
        assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '', 'no prompt before the error');
        assert.equal(r.stderr.split('\n')[0], message);
        if (code === 1) assert.equal(r.stderr, `${message}\n`, 'one line');
        else assert.equal(r.stderr, `${message}\nSee 'berth builder prune --help'.\n`);
      }
    }
  });
});
