import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Berth, BERTH } from '../lib/berth.js';
import { until } from '../lib/until.js';

// Detach keys and `attach`, driven through a real pseudo-terminal: util-linux `script` gives berth a terminal on
// all of its stdio and copies what the test writes to its stdin onto that terminal, as a user typing.

const CTRL_P = '\x10';
const CTRL_Q = '\x11';
const CTRL_A = '\x01';

/**
 * A container program that shows what reaches it: each line it reads, as hex bytes. `stty -ixon` so ctrl-q is not
 * flow control in the container's own terminal, `-echo` so only the program's output shows.
 */
const SHOW_INPUT = 'stty -ixon -echo; echo ready; while read -r l; do printf %s "$l" | od -An -tx1; done';

interface Step {
  /** Wait until everything printed so far contains this (or it matches) ... */
  expect?: string | RegExp;
  /** ... then type this (a delay in ms first, if given). */
  send: string;
  delay?: number;
}

const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

/** Runs berth on a new pseudo-terminal, typing the steps; resolves with the exit code and everything printed. */
async function onTerminal(b: Berth, args: string[], steps: Step[], timeoutMs = 20_000): Promise<{ code: number | null; out: string }> {
  const cmd = [BERTH, '--root', b.root, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const deadline = Date.now() + timeoutMs;
  try {
    for (const s of steps) {
      const seen = () => s.expect === undefined || (typeof s.expect === 'string' ? out.includes(s.expect) : s.expect.test(out));
      while (!seen()) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`never saw ${String(s.expect)} from berth ${args.join(' ')}: ${JSON.stringify(out)}`);
        await sleep(20);
      }
      if (s.delay) await sleep(s.delay);
      child.stdin.write(Buffer.from(s.send, 'latin1'));
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(1000, deadline - Date.now()));
    const code = await closed;
    clearTimeout(timer);
    return { code, out };
  } finally {
    child.stdin.end();
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

const relays = (b: Berth) => spawnSync('pgrep', ['-f', `exec-tty.*${b.root}`], { encoding: 'utf8' }).stdout.trim();

describe('detach keys and attach', () => {
  const b = new Berth();
  before(() => {
    b.importBusybox();
  });
  after(() => {
    const left = relays(b);
    const leftovers = b.destroy(); // first, so that a failed check below still cleans up
    assert.equal(left, '', 'no exec relay is left running');
    assert.deepEqual(leftovers, [], 'berth left kernel state behind');
  });
  const running = (ref: string) => b.inspect(ref).State.Running as boolean;

  it('run -it: ctrl-p ctrl-q detaches quietly (exit 0), the container runs on; attach again and exit 3', async () => {
    const r = await onTerminal(b, ['run', '-it', '--name', 'dk', 'busybox', 'sh'], [
      { expect: '# ', send: 'echo one-$((1+1))\r' },
      { expect: 'one-2', send: CTRL_P + CTRL_Q },
    ]);
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /read escape sequence/, 'run prints nothing when detaching');
    assert.equal(running('dk'), true);
    // the shell is still there, with its state: attach, use it, leave it with exit 3
    const a = await onTerminal(b, ['attach', 'dk'], [
      { delay: 300, send: 'echo back-$((2+2))\r' },
      { expect: 'back-4', send: 'exit 3\r' },
    ]);
    assert.equal(a.code, 3, a.out);
    const c = b.inspect('dk');
    assert.deepEqual([c.State.Running, c.State.ExitCode], [false, 3]);
    b.ok(['rm', 'dk']);
  });

  it('--detach-keys replaces the sequence; a started sequence that does not go on reaches the container', async () => {
    const r = await onTerminal(b, ['run', '-it', '--detach-keys', 'ctrl-a,x', '--name', 'dk2', 'busybox', 'sh', '-c', SHOW_INPUT], [
      { expect: 'ready', send: `a${CTRL_P}${CTRL_Q}b\r` }, // the default keys are plain input now
      { expect: '61 10 11 62', send: CTRL_A },
      { delay: 200, send: 'x' },
    ]);
    assert.equal(r.code, 0, r.out);
    assert.equal(running('dk2'), true);
    // attach with the default keys: ctrl-p then "a" (in separate reads) is passed on as typed, then detach
    const a = await onTerminal(b, ['attach', 'dk2'], [
      { delay: 300, send: `p${CTRL_P}` },
      { delay: 200, send: 'a\r' },
      { expect: '70 10 61', send: CTRL_P },
      { delay: 200, send: CTRL_Q },
    ]);
    assert.equal(a.code, 1, a.out);
    assert.match(a.out, /read escape sequence\r?\n$/, "attach reports the detach as Docker's does");
    assert.equal(running('dk2'), true);
    // ctrl-a x is input for a session that uses the default keys
    const again = await onTerminal(b, ['attach', '--detach-keys', 'ctrl-a,x', 'dk2'], [
      { delay: 300, send: `${CTRL_A}y\r` },
      { expect: '01 79', send: `${CTRL_A}x` },
    ]);
    assert.equal(again.code, 1, again.out);
    assert.equal(running('dk2'), true);
    b.ok(['rm', '-f', 'dk2']);
  });

  it('start -ai detaches quietly too', async () => {
    b.ok(['create', '-it', '--name', 'dk3', 'busybox', 'sh', '-c', SHOW_INPUT]);
    const r = await onTerminal(b, ['start', '-ai', 'dk3'], [
      { expect: 'ready', send: 'hi\r' },
      { expect: '68 69', send: CTRL_P + CTRL_Q },
    ]);
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /read escape sequence/);
    assert.equal(running('dk3'), true);
    // start -ai on the running container attaches to it, with its own keys
    const again = await onTerminal(b, ['start', '-ai', '--detach-keys', 'ctrl-x', 'dk3'], [
      { delay: 300, send: 'yo\r' },
      { expect: '79 6f', send: '\x18' },
    ]);
    assert.equal(again.code, 0, again.out);
    assert.equal(running('dk3'), true);
    b.ok(['rm', '-f', 'dk3']);
  });

  it('exec -it: detaching leaves the exec process running with its terminal', async () => {
    b.ok(['run', '-d', '--name', 'dk4', 'busybox', 'sleep', '600']);
    const r = await onTerminal(b, ['exec', '-it', 'dk4', 'sh', '-c', `echo $$ > /tmp/pid; ${SHOW_INPUT}`], [
      { expect: 'ready', send: 'q\r' },
      { expect: '71', send: CTRL_P + CTRL_Q },
    ]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /read escape sequence\r?\n$/);
    const alive = b.run(['exec', 'dk4', 'sh', '-c', 'kill -0 $(cat /tmp/pid) && readlink /proc/$(cat /tmp/pid)/fd/0']);
    assert.equal(alive.code, 0, alive.stderr);
    assert.match(alive.stdout, /^\/dev\/pts\/\d+$/m, 'the process still has its terminal');
    assert.notEqual(relays(b), '', 'a relay holds the terminal meanwhile');
    b.ok(['exec', 'dk4', 'sh', '-c', 'kill -9 $(cat /tmp/pid)']);
    await until('the relay to end with its process', () => relays(b) === '');
    // --detach-keys, and an exec that is not detached ends with its code
    const k = await onTerminal(b, ['exec', '-it', '--detach-keys', 'ctrl-a,x', 'dk4', 'sh', '-c', 'echo $$ > /tmp/pid2; exec sh'], [
      { expect: '# ', send: `${CTRL_A}x` },
    ]);
    assert.equal(k.code, 1, k.out);
    assert.match(k.out, /read escape sequence/);
    assert.equal(b.run(['exec', 'dk4', 'sh', '-c', 'kill -0 $(cat /tmp/pid2)']).code, 0, 'the detached shell runs on');
    const e = await onTerminal(b, ['exec', '-it', 'dk4', 'sh'], [{ expect: '# ', send: 'exit 5\r' }]);
    assert.equal(e.code, 5, e.out);
    b.ok(['rm', '-f', 'dk4']);
    await until('the relays to end with the container', () => relays(b) === '');
  });

  it('without a tty, the keys are plain input', () => {
    const r = b.run(['run', '-i', '--rm', 'busybox', 'od', '-An', '-tx1'], { input: Buffer.from([0x10, 0x11, 0x0a]) });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '10 11 0a');
  });

  it('attach to a container without a tty: its output, its stdin, its exit code; signals are proxied', async () => {
    b.ok(['run', '-di', '--name', 'ni', 'busybox', 'sh', '-c', 'read l; echo got-$l; echo err >&2; exit 2']);
    const r = b.run(['attach', 'ni'], { input: 'hello\n' });
    assert.deepEqual([r.code, r.stdout, r.stderr], [2, 'got-hello\n', 'err\n']);
    b.ok(['rm', 'ni']);

    b.ok(['run', '-d', '--name', 'sig', 'busybox', 'sh', '-c', 'trap "echo got TERM; exit 9" TERM; while :; do echo tick; sleep 0.1; done']);
    const child = b.spawn(['attach', 'sig']);
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const code = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    await until('attach output', () => out.includes('tick'));
    child.kill('SIGTERM');
    assert.equal(await code, 9, out);
    assert.match(out, /got TERM/);
    b.ok(['rm', 'sig']);
  });

  it("refuses like Docker: stopped, paused, unknown, no terminal for a tty's stdin, bad keys", () => {
    b.ok(['create', '-it', '--name', 'stopped', 'busybox', 'sh']);
    const stopped = b.run(['attach', 'stopped']);
    assert.deepEqual([stopped.code, stopped.stderr], [1, 'Error: You cannot attach to a stopped container, start it first\n']);
    b.ok(['rm', 'stopped']);
    const unknown = b.run(['attach', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No such container: nope/);
    const args = b.run(['attach']);
    assert.equal(args.code, 1);
    assert.match(args.stderr, /requires exactly 1 argument/);

    b.ok(['run', '-dit', '--name', 'tt', 'busybox', 'sh']);
    const notty = b.run(['attach', 'tt'], { input: '' });
    assert.deepEqual([notty.code, notty.stderr], [1, 'Error: the input device is not a TTY\n']);
    const keys = b.run(['attach', '--no-stdin', '--detach-keys', 'ctrl-p,ctrl-', 'tt']);
    assert.deepEqual([keys.code, keys.stderr], [1, 'Error: Invalid detach keys (ctrl-p,ctrl-) provided\n']);
    const execKeys = b.run(['exec', '-it', '--detach-keys', 'shift-z', 'tt', 'sh']);
    assert.deepEqual([execKeys.code, execKeys.stderr], [1, 'Error: the input device is not a TTY\n'], 'the terminal is checked first');
    const execKeysD = b.run(['exec', '-d', '--detach-keys', 'shift-z', 'tt', 'true']);
    assert.deepEqual([execKeysD.code, execKeysD.stderr], [1, 'Error: Invalid escape keys (shift-z) provided\n']);
    b.ok(['pause', 'tt']);
    const paused = b.run(['attach', '--no-stdin', 'tt']);
    assert.deepEqual([paused.code, paused.stderr], [1, 'Error: You cannot attach to a paused container, unpause it first\n']);
    b.ok(['unpause', 'tt']);
    b.ok(['rm', '-f', 'tt']);

    const run = b.run(['run', '-it', '--detach-keys', 'bogus', '--name', 'badkeys', 'busybox', 'true']);
    assert.deepEqual([run.code, run.stderr], [1, 'Error: the input device is not a TTY\n']);
    const runT = b.run(['run', '--detach-keys', 'bogus', '--name', 'badkeys', 'busybox', 'true']);
    assert.deepEqual([runT.code, runT.stderr], [1, 'Error: Invalid detach keys (bogus) provided\n']);
    assert.equal(b.run(['inspect', 'badkeys']).code, 1, 'nothing was created');
    b.ok(['create', '--name', 'sk', 'busybox', 'true']);
    const start = b.run(['start', '-a', '--detach-keys', 'bogus', 'sk']);
    assert.deepEqual([start.code, start.stderr], [1, 'Error: Invalid detach keys (bogus) provided\n']);
    assert.equal(b.inspect('sk').State.Status, 'created', 'not started');
    b.ok(['rm', 'sk']);
  });
});
