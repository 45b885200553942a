import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Berth, BERTH } from '../lib/berth.js';

// `berth build --progress tty|auto` through the real CLI: BuildKit's TTY display (header, step lines, CACHED,
// running output, in-place redraws, FINISHED/ERROR), forced onto a pipe or chosen by auto on a terminal.

const CURSOR_UP = /\x1b\[\d+A/;
const SGR = /\x1b\[[0-9;]*m/;

/** The last frame drawn, as plain text lines (cursor moves, erases and colors removed), and what followed it. */
function finalFrame(stderr: string): { lines: string[]; after: string } {
  const last = stderr.slice(stderr.lastIndexOf('\x1b[?25l'));
  const end = last.indexOf('\x1b[?25h');
  assert.ok(end > 0, `no complete frame in ${JSON.stringify(stderr)}`);
  const frame = last.slice(0, end).replace(/\x1b\[(\?25l|\d+A|K|J|[0-9;]*m)|\r/g, '');
  return { lines: frame.split('\n').filter(Boolean), after: last.slice(end + '\x1b[?25h'.length) };
}

/** Runs berth under a pseudo-terminal (util-linux script), so stderr is a TTY; returns the terminal's output. */
function onTerminal(b: Berth, args: string[], env: NodeJS.ProcessEnv = {}, stty = ''): { code: number; out: string } {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = `${stty ? `stty ${stty}; ` : ''}${[BERTH, '--root', b.root, ...args].map(q).join(' ')}`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  return { code: r.status ?? 128, out: r.stdout.replace(/\r\n/g, '\n') };
}

const hasScript = spawnSync('script', ['--version']).status === 0;

describe('berth build --progress tty', () => {
  let b: Berth;
  let work: string;
  let ctx: string;

  before(() => {
    b = new Berth();
    b.importBusybox();
    work = mkdtempSync(join(tmpdir(), 'berth-progress-test-'));
    ctx = join(work, 'ctx');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'f.txt'), 'data\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo hello-tty; sleep 0.6; echo bye-tty\nCOPY f.txt /f.txt\n');
  });

  after(() => {
    rmSync(work, { recursive: true, force: true });
    assert.deepEqual(b.destroy(), []);
  });

  it('draws frames in place while a step runs, with its output, and ends with FINISHED; then CACHED on a rebuild', () => {
    const first = b.run(['build', '--progress', 'tty', '-t', 'progress:1', ctx], { env: { NO_COLOR: '' } });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, '');
    const err = first.stderr;
    assert.match(err, /\[\+\] Building \d+\.\ds \(1\/2\)/, 'a live header while the RUN step runs');
    assert.match(err, CURSOR_UP, 'redraws move the cursor up');
    assert.match(err, /\x1b\[K/);
    assert.match(err, / => => # hello-tty/, 'running output under its step');
    assert.match(err, SGR, 'colored by default');
    assert.doesNotMatch(err, /^#\d+ /m, 'no plain progress lines');
    const { lines, after: rest } = finalFrame(err);
    assert.match(lines[0]!, /^\[\+\] Building \d+\.\ds \(4\/4\) FINISHED$/);
    assert.match(lines[1]!, /^ => \[stage-0 1\/3\] FROM busybox +0\.0s$/);
    const run = /^ => \[stage-0 2\/3\] RUN echo hello-tty; sleep 0\.6; echo bye-tty +(\d+\.\d)s$/.exec(lines[2]!);
    assert.ok(run && Number(run[1]) >= 0.5, lines[2]);
    assert.equal(lines[3], ' => => cache miss: no earlier build of this step');
    assert.ok(!lines.some((l) => l.includes(' => => # ')), 'a finished step\'s output is gone from the final frame');
    assert.ok(lines.includes(' => => naming to progress:1'), lines.join('\n'));
    assert.ok(lines.every((l) => l.length <= 79), 'lines fit the default 80 columns');
    assert.equal(rest, '');

    const second = b.run(['build', '--progress', 'tty', '-t', 'progress:2', ctx]);
    assert.equal(second.code, 0, second.stderr);
    const cached = finalFrame(second.stderr).lines;
    assert.match(cached[0]!, /FINISHED$/);
    assert.match(cached[2]!, /^ => CACHED \[stage-0 2\/3\] RUN echo hello-tty/);
    assert.match(cached[3]!, /^ => CACHED \[stage-0 3\/3\] COPY f\.txt \/f\.txt/);
    assert.equal(b.inspect('progress:2').Id, b.inspect('progress:1').Id);
  });

  it('still redraws without color under NO_COLOR', () => {
    const r = b.run(['build', '--progress', 'tty', '--no-cache', ctx], { env: { NO_COLOR: '1' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, CURSOR_UP);
    assert.doesNotMatch(r.stderr, SGR);
    assert.ok(finalFrame(r.stderr).lines.includes(' => => cache miss: disabled by --no-cache'));
  });

  it('ends a failed build with an ERROR frame, then the error as plain mode prints it', () => {
    const bad = join(work, 'Dockerfile.bad');
    writeFileSync(bad, 'FROM busybox\nRUN echo about-to-fail; exit 3\n');
    const r = b.run(['build', '--progress', 'tty', '-f', bad, ctx]);
    assert.equal(r.code, 1);
    const { lines, after: rest } = finalFrame(r.stderr);
    assert.match(lines[0]!, /^\[\+\] Building \d+\.\ds \(2\/2\) ERROR$/);
    assert.match(lines[2]!, /^ => ERROR \[stage-0 2\/2\] RUN echo about-to-fail; exit 3 +\d+\.\ds$/);
    assert.match(rest, /^ERROR: .*Dockerfile\.bad:2: process "\/bin\/sh -c echo about-to-fail; exit 3" did not complete successfully: exit code: 3\n  > about-to-fail\n$/);
  });

  it('keeps --progress auto plain on a pipe', () => {
    const r = b.run(['build', '--progress', 'auto', ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /\x1b/);
    assert.match(r.stderr, /^#2 \[stage-0 2\/3\] RUN echo hello-tty/m);
    assert.match(r.stderr, /^#2 CACHED$/m);
    const dflt = b.run(['build', ctx]);
    assert.equal(dflt.code, 0, dflt.stderr);
    assert.doesNotMatch(dflt.stderr, /\x1b/);
  });

  it('picks the TTY display for auto on a terminal, sized to it, but not for TERM=dumb', { skip: !hasScript && 'needs util-linux script for a pseudo-terminal' }, () => {
    const tty = onTerminal(b, ['build', ctx], {}, 'cols 50 rows 20');
    assert.equal(tty.code, 0, tty.out);
    const { lines } = finalFrame(tty.out);
    assert.match(lines[0]!, /FINISHED$/);
    assert.match(lines[2]!, /^ => CACHED \[stage-0 2\/3\] RUN echo hello-tty.* 0\.\ds$/);
    assert.ok(lines.every((l) => l.length <= 49), lines.join('\n'));
    const dumb = onTerminal(b, ['build', '--progress', 'auto', ctx], { TERM: 'dumb' });
    assert.equal(dumb.code, 0, dumb.out);
    assert.doesNotMatch(dumb.out, /\x1b/);
    assert.match(dumb.out, /^#2 CACHED$/m);
  });
});
