import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { BuildEvent } from '../../src/build/builder.js';
import { ProgressState, TtyProgress, cleanLine, fit, progressMode, renderFrame, LOG_LINES } from '../../src/cli/progress-tty.js';

const SGR = /\x1b\[[0-9;]*m/g;
const plain = (s: string) => s.replace(SGR, '');
const IMAGE = `sha256:${'ab'.repeat(32)}` as BuildEvent & { type: 'image' } extends { id: infer D } ? D : never;

/** A state fed with [time, event] pairs, starting at t=0. */
function feed(events: [number, BuildEvent][]): ProgressState {
  const s = new ProgressState(0);
  for (const [t, e] of events) s.apply(e, t);
  return s;
}

const from: [number, BuildEvent][] = [
  [0, { type: 'step', id: 1, name: '[build 1/4] FROM busybox' }],
  [0, { type: 'done', id: 1, ms: 0 }],
];

describe('renderFrame', () => {
  it('draws a header with elapsed time and completed/total steps, then one line per step with its timer at the right', () => {
    const s = feed([...from, [1000, { type: 'step', id: 2, name: '[build 2/4] RUN make' }]]);
    const lines = renderFrame(s, { now: 1400, columns: 60, color: false });
    assert.deepEqual(lines, [
      '[+] Building 1.4s (1/2)',
      ` => [build 1/4] FROM busybox${' '.repeat(55 - 28)}0.0s`,
      ` => [build 2/4] RUN make${' '.repeat(55 - 24)}0.4s`,
    ]);
    for (const l of lines.slice(1)) assert.equal(l.length, 59);
  });

  it('marks cache hits CACHED, keeps the miss reason as a line under its step, and uses the reported duration', () => {
    const s = feed([
      ...from,
      [10, { type: 'step', id: 2, name: '[build 2/4] COPY a /a' }],
      [10, { type: 'cached', id: 2 }],
      [12, { type: 'done', id: 2, ms: 2 }],
      [20, { type: 'step', id: 3, name: '[build 3/4] RUN make' }],
      [21, { type: 'miss', id: 3, text: 'COPY src/ /src/', reason: '1 file changed: src/app.js' }],
      [2300, { type: 'done', id: 3, ms: 2250 }],
    ]);
    const lines = renderFrame(s, { now: 5000, columns: 80, color: false });
    assert.equal(lines[0], '[+] Building 5.0s (3/3)');
    assert.match(lines[2]!, /^ => CACHED \[build 2\/4\] COPY a \/a +0\.0s$/);
    assert.match(lines[3]!, /^ => \[build 3\/4\] RUN make +2\.3s$/);
    assert.equal(lines[4], ' => => cache miss: 1 file changed: src/app.js');
    assert.equal(lines.length, 5);
  });

  it('shows the last lines of a running step\'s output, the unfinished line too, and hides them once it is done', () => {
    const out = Array.from({ length: 9 }, (_, i) => `line-${i + 1}`).join('\n');
    const s = feed([...from, [0, { type: 'step', id: 2, name: '[2/2] RUN x' }], [5, { type: 'output', id: 2, stream: 'stdout', text: `${out}\npart` }]]);
    const lines = renderFrame(s, { now: 100, columns: 80, color: false });
    assert.deepEqual(lines.slice(3), ['line-5', 'line-6', 'line-7', 'line-8', 'line-9', 'part'].map((l) => ` => => # ${l}`));
    assert.equal(lines.length, 3 + LOG_LINES);
    s.apply({ type: 'output', id: 2, stream: 'stdout', text: 'ial\n' }, 6);
    assert.equal(renderFrame(s, { now: 100, columns: 80, color: false }).at(-1), ' => => # partial');
    s.apply({ type: 'done', id: 2, ms: 200 }, 200);
    assert.equal(renderFrame(s, { now: 300, columns: 80, color: false }).length, 3);
  });

  it('keeps every line within the terminal width, with or without color', () => {
    const long = 'x'.repeat(300);
    const s = feed([
      ...from,
      [0, { type: 'step', id: 2, name: `[2/3] RUN echo ${long}` }],
      [0, { type: 'miss', id: 2, text: 'COPY . .', reason: `1 file changed: ${long}` }],
      [1, { type: 'output', id: 2, stream: 'stderr', text: `${long}\n` }],
    ]);
    for (const columns of [20, 40, 80]) {
      for (const color of [false, true]) {
        const lines = renderFrame(s, { now: 50, columns, color });
        assert.equal(lines.length, 5);
        for (const l of lines) assert.ok(plain(l).length <= columns - 1, `${JSON.stringify(l)} wider than ${columns}`);
      }
    }
    // The timer survives truncation.
    assert.match(renderFrame(s, { now: 50, columns: 40, color: false })[2]!, /^ => \[2\/3\] RUN echo x+ 0\.1s$/);
  });

  it('ends with FINISHED and the exported image, or ERROR with the failed step and the canceled ones', () => {
    const ok = feed([...from, [50, { type: 'image', id: IMAGE, names: ['docker.io/library/app:1'] }]]);
    ok.finish(true, 80);
    const done = renderFrame(ok, { now: 9999, columns: 120, color: false, final: true });
    assert.equal(done[0], '[+] Building 0.1s (2/2) FINISHED');
    assert.match(done[2]!, /^ => exporting to image +0\.0s$/);
    assert.deepEqual(done.slice(3), [` => => writing image ${IMAGE}`, ' => => naming to docker.io/library/app:1']);

    const bad = feed([
      ...from,
      [0, { type: 'step', id: 2, name: '[a 2/2] RUN exit 3' }],
      [0, { type: 'step', id: 3, name: '[b 2/2] RUN sleep 9' }],
      [300, { type: 'error', id: 2, message: 'Dockerfile:2: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3\n  > x' }],
    ]);
    bad.finish(false, 400);
    const failed = renderFrame(bad, { now: 9999, columns: 80, color: false, final: true });
    assert.equal(failed[0], '[+] Building 0.4s (3/3) ERROR');
    assert.match(failed[2]!, /^ => ERROR \[a 2\/2\] RUN exit 3 +0\.3s$/);
    assert.match(failed[3]!, /^ => CANCELED \[b 2\/2\] RUN sleep 9 +0\.4s$/);
    assert.equal(bad.running, false);
  });

  it('colors finished steps blue, errors red, canceled yellow and output dim, and not at all without color', () => {
    const s = feed([
      ...from,
      [0, { type: 'step', id: 2, name: '[2/4] RUN ok' }],
      [0, { type: 'output', id: 2, stream: 'stdout', text: 'hello\n' }],
      [0, { type: 'step', id: 3, name: '[3/4] RUN bad' }],
      [0, { type: 'error', id: 3, message: 'boom' }],
    ]);
    const lines = renderFrame(s, { now: 10, columns: 80, color: true });
    assert.ok(lines[1]!.startsWith('\x1b[34m') && lines[1]!.endsWith('\x1b[0m'), lines[1]);
    assert.ok(!lines[2]!.includes('\x1b['), 'a running step is not colored');
    assert.equal(lines[3], '\x1b[2m => => # hello\x1b[0m');
    assert.ok(lines[4]!.startsWith('\x1b[31m => ERROR'), lines[4]);
    s.finish(false, 20);
    assert.ok(renderFrame(s, { now: 20, columns: 80, color: true })[2]!.startsWith('\x1b[33m => CANCELED'));
    assert.ok(renderFrame(s, { now: 20, columns: 80, color: false }).every((l) => !l.includes('\x1b')));
  });

  it('keeps a live frame within the terminal height by letting finished steps go first, but the final frame has all', () => {
    const events: [number, BuildEvent][] = [];
    for (let id = 1; id <= 10; id++) {
      events.push([id, { type: 'step', id, name: `[${id}/12] RUN s${id}` }], [id, { type: 'done', id, ms: 1 }]);
    }
    events.push([20, { type: 'step', id: 11, name: '[11/12] RUN running' }], [21, { type: 'output', id: 11, stream: 'stdout', text: 'a\nb\n' }]);
    const s = feed(events);
    const live = renderFrame(s, { now: 30, columns: 80, rows: 8, color: false });
    assert.equal(live.length, 7);
    assert.deepEqual(live.slice(-3).map((l) => l.trim().replace(/ +\S+$/, '')), ['=> [11/12] RUN running', '=> => #', '=> => #']);
    assert.match(live[1]!, /RUN s8 /);
    assert.equal(renderFrame(s, { now: 30, columns: 80, rows: 8, color: false, final: true }).length, 14);
    assert.equal(renderFrame(s, { now: 30, columns: 80, color: false }).length, 14);
  });

  it('shows names on one line and ignores events of unknown steps', () => {
    const s = feed([[0, { type: 'step', id: 1, name: '[1/2] RUN <<EOF\necho\tx\nEOF' }], [0, { type: 'output', id: 7, stream: 'stdout', text: 'stray\n' }]]);
    const lines = renderFrame(s, { now: 0, columns: 80, color: false });
    assert.match(lines[1]!, /^ => \[1\/2\] RUN <<EOF echo x EOF +0\.0s$/);
    assert.equal(lines.length, 2);
  });
});

describe('cleanLine', () => {
  it('keeps what a terminal would show after carriage returns, expands tabs, and drops escapes and controls', () => {
    assert.equal(cleanLine('10%\r50%\r100%'), '100%');
    assert.equal(cleanLine('crlf line\r'), 'crlf line');
    assert.equal(cleanLine('a\tb'), 'a       b');
    assert.equal(cleanLine('\x1b[1;31mred\x1b[0m \x1b[2K\x1b]0;title\x07ok\x07\x08'), 'red ok');
  });

  it('fit cuts by code points', () => {
    assert.equal(fit('héllo wörld', 5), 'héllo');
    assert.equal(fit('short', 10), 'short');
  });
});

describe('progressMode', () => {
  it('picks tty for auto on a terminal unless TERM=dumb, plain otherwise, and leaves explicit modes alone', () => {
    assert.equal(progressMode('auto', true, 'xterm-256color'), 'tty');
    assert.equal(progressMode('auto', true, undefined), 'tty');
    assert.equal(progressMode('auto', true, 'dumb'), 'plain');
    assert.equal(progressMode('auto', false, 'xterm'), 'plain');
    assert.equal(progressMode('tty', false, 'dumb'), 'tty');
    assert.equal(progressMode('json', true, 'xterm'), 'json');
  });
});

describe('TtyProgress', () => {
  it('redraws in place while a step runs, stops when idle, and ends with the final frame and the warnings', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      let now = 0;
      const writes: string[] = [];
      const p = new TtyProgress({ write: (t: string) => writes.push(t), columns: 80 }, { color: false, interval: 100, clock: () => now });
      p.onEvent({ type: 'warning', message: 'FROM is lowercase' });
      p.onEvent({ type: 'step', id: 1, name: '[1/2] FROM busybox' });
      p.onEvent({ type: 'done', id: 1, ms: 0 });
      p.onEvent({ type: 'step', id: 2, name: '[2/2] RUN sleep 1' });
      assert.equal(writes.length, 0, 'no frame before the first tick');
      now = 100;
      mock.timers.tick(100);
      assert.equal(writes.length, 1);
      assert.ok(!writes[0]!.includes('\x1b[3A'), 'the first frame does not move up');
      assert.match(writes[0]!, /\[\+\] Building 0\.1s \(1\/2\)/);
      now = 200;
      mock.timers.tick(100);
      assert.equal(writes.length, 2, 'a running step keeps the timer going');
      assert.ok(writes[1]!.includes('\x1b[3A\r'), 'moves up over the 3 lines drawn');
      assert.match(writes[1]!, /RUN sleep 1 +0\.2s\x1b\[K\n/);
      p.onEvent({ type: 'done', id: 2, ms: 150 });
      now = 300;
      mock.timers.tick(100);
      assert.equal(writes.length, 3);
      mock.timers.tick(500);
      assert.equal(writes.length, 3, 'nothing changed and nothing runs: no redraw');
      p.finish(true);
      p.finish(false);
      assert.equal(writes.length, 5);
      assert.match(writes[3]!, /^\x1b\[\?25l\x1b\[3A\r\[\+\] Building 0\.3s \(2\/2\) FINISHED\x1b\[K\n/);
      assert.ok(writes[3]!.endsWith('\x1b[J\x1b[?25h'));
      assert.equal(writes[4], 'WARNING: FROM is lowercase\n');
      p.onEvent({ type: 'step', id: 3, name: 'late' });
      mock.timers.tick(1000);
      assert.equal(writes.length, 5, 'no frames after finish');
    } finally {
      mock.timers.reset();
    }
  });

  it('draws the final ERROR frame even when the build failed before any event', () => {
    const writes: string[] = [];
    new TtyProgress({ write: (t: string) => writes.push(t) }, { color: true }).finish(false);
    assert.equal(writes.length, 1);
    assert.match(writes[0]!, /\[\+\] Building \d+\.\ds \(0\/0\) ERROR/);
  });
});
