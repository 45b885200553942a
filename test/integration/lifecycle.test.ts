import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Berth, BERTH } from '../lib/berth.js';
import { until } from '../lib/until.js';

// The container lifecycle through the real berth CLI: PID 1 and --init, run -it under a real pseudo-terminal,
// stop/kill/restart/start/wait/rm, detached containers that outlive the CLI, logs, exec and signal proxying.
// Durations are asserted with margins that hold on a loaded 2-core machine.

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * Runs a command on a new pseudo-terminal (its controlling tty, sized ROWSxCOLS before it starts) and drives it:
 * each step waits until `expect` has appeared in the output, then types `send`. Returns all output and the
 * exit code once the command exits (or -1 after the timeout, the command then killed).
 */
const PTY_DRIVER = String.raw`
import json, os, select, signal, struct, sys, time, fcntl, termios
spec = json.loads(sys.argv[1])
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', spec['rows'], spec['cols'], 0, 0))
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    os.execv(spec['argv'][0], spec['argv'])
os.close(slave)
out = b''
deadline = time.time() + spec['timeout']
def read_until(pattern):
    global out
    while time.time() < deadline:
        if pattern is not None and pattern in out:
            return True
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                d = os.read(master, 65536)
            except OSError:
                d = b''
            if not d:
                return pattern is None
            out += d
    return False
ok = True
for step in spec['steps']:
    if not read_until(step['expect'].encode()):
        ok = False
        break
    os.write(master, step['send'].encode())
if ok:
    ok = read_until(None)
if not ok:
    os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
print(json.dumps({'out': out.decode('utf-8', 'replace'), 'code': os.waitstatus_to_exitcode(status) if ok else -1}))
`;

interface PtyResult {
  out: string;
  code: number;
}

function onPty(b: Berth, args: string[], steps: { expect: string; send: string }[], o: { rows?: number; cols?: number } = {}): PtyResult {
  const spec = { argv: [BERTH, '--root', b.root, ...args], steps, rows: o.rows ?? 30, cols: o.cols ?? 100, timeout: 20 };
  const r = spawnSync(PYTHON, ['-c', PTY_DRIVER, JSON.stringify(spec)], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`pty driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as PtyResult;
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Collects a spawned berth's output until it exits. */
function finished(child: ChildProcess): Promise<Finished> {
  const t0 = performance.now();
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 })));
}

/** Resolves once the child has printed `text` on stdout. */
function printed(child: ChildProcess, text: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms (got ${JSON.stringify(seen)})`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function timed<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, performance.now() - t0];
}

describe('container lifecycle', () => {
  const b = new Berth();
  const containerDir = (id: string) => join(b.root, 'containers', id);
  /** Runs fn with the containers named, removing them (forcefully) afterwards, also when fn fails. */
  const using = async (refs: string[], fn: () => unknown) => {
    try {
      await fn();
    } finally {
      b.run(['rm', '-f', '-v', ...refs]); // those already gone are reported and skipped
    }
  };

  before(() => {
    b.importBusybox();
  });
  after(() => {
    assert.deepEqual(b.destroy(), [], 'berth left kernel state behind');
  });

  describe('PID 1 and --init', () => {
    it('without --init a shell-form command ignores SIGTERM and is killed after the grace period (137)', () =>
      using(['noinit'], () => {
        b.ok(['run', '-d', '--name', 'noinit', 'busybox', 'sh', '-c', 'sleep 600']);
        const [out, ms] = timed(() => b.ok(['stop', '-t', '2', 'noinit']));
        assert.equal(out, 'noinit');
        assert.ok(ms >= 1900, `stop -t 2 returned after ${ms.toFixed(0)} ms: the signal was not ignored`);
        assert.ok(ms < 8000, `stop -t 2 took ${ms.toFixed(0)} ms`);
        const st = b.inspect('noinit').State;
        assert.equal(st.Status, 'exited');
        assert.equal(st.ExitCode, 137);
      }));

    it('with --init tini is PID 1, forwards SIGTERM and the container stops at once (143)', () =>
      using(['init'], () => {
        b.ok(['run', '-d', '--init', '--name', 'init', 'busybox', 'sh', '-c', 'sleep 600']);
        assert.equal(b.inspect('init').HostConfig.Init, true);
        const pid1 = b.ok(['exec', 'init', 'cat', '/proc/1/cmdline']).split('\0');
        assert.deepEqual(pid1.slice(0, 2), ['/dev/init', '--']);
        assert.match(b.ok(['exec', 'init', 'grep', ' /dev/init ', '/proc/self/mounts']), / ro[, ]/, 'tini is bind-mounted read-only');
        const [, ms] = timed(() => b.ok(['stop', '-t', '2', 'init']));
        assert.ok(ms < 1500, `stop with --init took ${ms.toFixed(0)} ms`);
        assert.equal(b.inspect('init').State.ExitCode, 143);
      }));

    it('with --init orphaned children are reaped; without it, a non-reaping PID 1 keeps zombies', async () => {
      const ps = b.ok(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'sh -c "sleep 0.1 &"; sleep 1; ps -o stat,args']);
      assert.doesNotMatch(ps, /^\s*Z/m, ps);
      // PID 1 is `sleep` (exec'd by the shell), which never waits: the orphan stays a zombie. With tini it is reaped.
      const orphan = ['sh', '-c', 'sh -c "sleep 0.1 &"; exec sleep 30'];
      await using(['zomb', 'nozomb'], async () => {
        b.ok(['run', '-d', '--name', 'zomb', 'busybox', ...orphan]);
        b.ok(['run', '-d', '--init', '--name', 'nozomb', 'busybox', ...orphan]);
        // The orphan's own line: "S    sleep 0.1" while it runs, "Z    [sleep]" once it is a zombie.
        const orphanLine = /^(\S+)\s+(sleep 0\.1|\[sleep\])$/m;
        await until('a zombie without --init', () => orphanLine.exec(b.ok(['exec', 'zomb', 'ps', '-o', 'stat,args']))?.[1]?.startsWith('Z'));
        await until('the orphan gone with --init', () => !orphanLine.test(b.ok(['exec', 'nozomb', 'ps', '-o', 'stat,args'])));
        assert.doesNotMatch(b.ok(['exec', 'nozomb', 'ps', '-o', 'stat']), /Z/);
      });
    });
  });

  describe('a real terminal (Scenario B)', () => {
    it('run -it --entrypoint /bin/sh: type a command, read its output, exit with a code', () =>
      using(['tty'], () => {
        const r = onPty(b, ['run', '-it', '--name', 'tty', '--entrypoint', '/bin/sh', 'busybox'], [
          { expect: '# ', send: 'echo hel""lo; tty; stty size; exit 7\r' },
        ]);
        assert.equal(r.code, 7, r.out);
        assert.match(r.out, /^hello\r?\r\n/m, 'the command ran in the shell (echoed input has the quotes)');
        assert.match(r.out, /^\/dev\/pts\/\d+\r?\r\n/m, 'the shell has a terminal');
        assert.match(r.out, /^30 100\r?\r\n/m, 'the terminal has the size of berth\'s');
        // logs and inspect work on the exited container
        assert.match(b.ok(['logs', 'tty']), /hello/);
        const c = b.inspect('tty');
        assert.equal(c.Path, '/bin/sh');
        assert.deepEqual(c.Args, []);
        assert.deepEqual(c.Config.Entrypoint, ['/bin/sh']);
        assert.equal(c.Config.Cmd, null);
        assert.equal(c.Config.Tty, true);
        assert.equal(c.Config.OpenStdin, true);
        assert.equal(c.State.Status, 'exited');
        assert.equal(c.State.ExitCode, 7);
      }));

    it('run -it needs a terminal on stdin (exit 1, nothing created)', () => {
      const r = b.run(['run', '-it', 'busybox', 'sh'], { input: 'exit 0\n' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the input device is not a TTY/);
      assert.equal(b.ok(['ps', '-aq']), '');
    });

    it('exec -it and exec -t run under a terminal', () =>
      using(['ttyx'], () => {
        b.ok(['run', '-d', '--name', 'ttyx', 'busybox', 'sleep', '600']);
        const it1 = onPty(b, ['exec', '-it', 'ttyx', 'sh'], [{ expect: '# ', send: 'tty; exit 5\r' }]);
        assert.equal(it1.code, 5, it1.out);
        assert.match(it1.out, /\/dev\/pts\/\d+/);
        const t = onPty(b, ['exec', '-t', 'ttyx', 'sh', '-c', 'tty; stty size'], [], { rows: 40, cols: 120 });
        assert.equal(t.code, 0, t.out);
        assert.match(t.out, /\/dev\/pts\/\d+\r?\n40 120/);
        const notty = b.run(['exec', '-it', 'ttyx', 'sh'], { input: '' });
        assert.equal(notty.code, 1);
        assert.match(notty.stderr, /the input device is not a TTY/);
      }));
  });

  describe('stop, kill, restart', () => {
    it('--stop-signal is what stop sends; stop -s overrides it', () =>
      using(['sigs'], () => {
        const trap = 'trap "echo got USR1; exit 5" USR1; trap "echo got USR2; exit 6" USR2; echo ready; while true; do sleep 0.05; done';
        b.ok(['run', '-d', '--name', 'sigs', '--stop-signal', 'USR1', 'busybox', 'sh', '-c', trap]);
        assert.equal(b.inspect('sigs').Config.StopSignal, 'USR1');
        const [, ms] = timed(() => b.ok(['stop', 'sigs']));
        assert.ok(ms < 5000, `stop took ${ms.toFixed(0)} ms: the stop signal did not end it`);
        assert.equal(b.inspect('sigs').State.ExitCode, 5);
        assert.match(b.ok(['logs', 'sigs']), /got USR1/);
        b.ok(['start', 'sigs']);
        b.ok(['stop', '-s', 'SIGUSR2', 'sigs']);
        assert.equal(b.inspect('sigs').State.ExitCode, 6);
      }));

    it('--stop-timeout sets the grace period of a plain stop', () =>
      using(['grace'], () => {
        b.ok(['run', '-d', '--name', 'grace', '--stop-timeout', '1', 'busybox', 'sh', '-c', 'sleep 600']);
        assert.equal(b.inspect('grace').Config.StopTimeout, 1);
        const [, ms] = timed(() => b.ok(['stop', 'grace']));
        assert.ok(ms >= 900 && ms < 6000, `stop took ${ms.toFixed(0)} ms, want about 1 s (the default is 10 s)`);
        assert.equal(b.inspect('grace').State.ExitCode, 137);
      }));

    it('kill -s takes signal names and numbers; kill defaults to SIGKILL', () =>
      using(['kk'], async () => {
        const trap = 'trap "echo got HUP" HUP; trap "echo got USR1" USR1; trap "echo got USR2" USR2; echo ready; while true; do sleep 0.05; done';
        b.ok(['run', '-d', '--name', 'kk', 'busybox', 'sh', '-c', trap]);
        await until('the traps set', () => b.ok(['logs', 'kk']).includes('ready'));
        assert.equal(b.ok(['kill', '-s', 'HUP', 'kk']), 'kk');
        await until('HUP', () => b.ok(['logs', 'kk']).includes('got HUP'));
        b.ok(['kill', '--signal', 'SIGUSR1', 'kk']);
        await until('USR1', () => b.ok(['logs', 'kk']).includes('got USR1'));
        b.ok(['kill', '-s', '12', 'kk']);
        await until('USR2 (12)', () => b.ok(['logs', 'kk']).includes('got USR2'));
        const bad = b.run(['kill', '-s', 'BOGUS', 'kk']);
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /Invalid signal: BOGUS/);
        assert.equal(b.inspect('kk').State.Running, true);
        b.ok(['kill', 'kk']);
        assert.equal(b.ok(['wait', 'kk']), '137');
        const again = b.run(['kill', 'kk']);
        assert.equal(again.code, 1);
        assert.match(again.stderr, /is not running/);
      }));

    it('restart stops and starts again (running or exited)', () =>
      using(['rs'], () => {
        b.ok(['run', '-d', '--name', 'rs', 'busybox', 'sh', '-c', 'echo started; sleep 600']);
        const before1 = b.inspect('rs').State;
        assert.equal(b.ok(['restart', '-t', '0', 'rs']), 'rs');
        const after1 = b.inspect('rs').State;
        assert.equal(after1.Running, true);
        assert.notEqual(after1.Pid, before1.Pid);
        assert.ok(Date.parse(after1.StartedAt) > Date.parse(before1.StartedAt));
        b.ok(['kill', 'rs']);
        b.ok(['wait', 'rs']);
        b.ok(['restart', 'rs']);
        assert.equal(b.inspect('rs').State.Running, true);
        assert.equal(b.ok(['logs', 'rs']), 'started\nstarted\nstarted');
      }));

    it('restart keeps an auto-remove (--rm) container, as Docker does', () =>
      using(['rmrs'], () => {
        b.ok(['run', '-d', '--rm', '--name', 'rmrs', 'busybox', 'sleep', '600']);
        b.ok(['restart', '-t', '0', 'rmrs']);
        assert.equal(b.inspect('rmrs').State.Running, true);
      }));
  });

  describe('start, wait, rm', () => {
    it('start -a attaches stdout and stderr and exits with the container\'s code', () =>
      using(['sa'], () => {
        b.ok(['create', '--name', 'sa', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 4']);
        const r = b.run(['start', '-a', 'sa']);
        assert.equal(r.code, 4);
        assert.equal(r.stdout, 'out\n');
        assert.equal(r.stderr, 'err\n');
      }));

    it('start -a -i attaches stdin; start -a of a running container attaches to it', () =>
      using(['sai', 'sar'], () => {
        b.ok(['create', '-i', '--name', 'sai', 'busybox', 'sh', '-c', 'read x; echo "got $x"; tr a-z A-Z']);
        const r = b.run(['start', '-a', '-i', 'sai'], { input: 'one\ntwo three\n' });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'got one\nTWO THREE\n');
        b.ok(['run', '-d', '--name', 'sar', 'busybox', 'sh', '-c', 'sleep 1; echo late; exit 6']);
        const a = b.run(['start', '-a', 'sar']);
        assert.equal(a.code, 6);
        assert.equal(a.stdout, 'late\n');
        const multi = b.run(['start', '-a', 'sai', 'sar']);
        assert.equal(multi.code, 1);
        assert.match(multi.stderr, /cannot start and attach multiple containers/);
      }));

    it('start reports the containers that failed', () =>
      using(['okc'], () => {
        b.ok(['create', '--name', 'okc', 'busybox', 'true']);
        const r = b.run(['start', 'nosuch1', 'okc', 'nosuch2']);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, 'okc\n');
        assert.match(r.stderr, /No such container: nosuch1/);
        assert.match(r.stderr, /failed to start containers: nosuch1, nosuch2$/m);
      }));

    it('wait blocks for several containers and prints each exit code', () =>
      using(['w1', 'w2'], () => {
        b.ok(['run', '-d', '--name', 'w1', 'busybox', 'sh', '-c', 'sleep 0.3; exit 2']);
        b.ok(['run', '-d', '--name', 'w2', 'busybox', 'sh', '-c', 'sleep 0.6; exit 3']);
        assert.equal(b.ok(['wait', 'w1', 'w2']), '2\n3');
        const r = b.run(['wait', 'w1', 'nosuch']);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, '2\n');
        assert.match(r.stderr, /No such container: nosuch/);
      }));

    it('rm refuses a running container; rm -f kills and removes it with everything it held', () =>
      using(['rmf'], () => {
        const id = b.ok(['run', '-d', '--name', 'rmf', 'busybox', 'sleep', '600']);
        const r = b.run(['rm', 'rmf']);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /cannot remove container "\/rmf": container is running: stop the container before removing or force remove/);
        const [out, ms] = timed(() => b.ok(['rm', '-f', 'rmf']));
        assert.equal(out, 'rmf');
        assert.ok(ms < 5000, `rm -f took ${ms.toFixed(0)} ms`);
        assert.equal(existsSync(containerDir(id)), false);
        assert.deepEqual(b.leftovers(), []);
        assert.equal(b.run(['inspect', 'rmf']).code, 1);
      }));

    it('rm -v removes anonymous volumes, never named ones; rm alone keeps them', () =>
      using(['rmv', 'rmnov'], () => {
        b.ok(['create', '--name', 'rmv', '-v', '/anon', '-v', 'keepme:/named', 'busybox', 'true']);
        const anon = b.inspect('rmv').Mounts.find((m: { Destination: string }) => m.Destination === '/anon').Name as string;
        assert.deepEqual(b.ok(['volume', 'ls', '-q']).split('\n').sort(), [anon, 'keepme'].sort());
        b.ok(['rm', '-v', 'rmv']);
        assert.deepEqual(b.ok(['volume', 'ls', '-q']).split('\n'), ['keepme']);
        b.ok(['create', '--name', 'rmnov', '-v', '/anon2', 'busybox', 'true']);
        b.ok(['rm', 'rmnov']);
        assert.equal(b.ok(['volume', 'ls', '-q']).split('\n').length, 2, 'rm without -v keeps the anonymous volume');
        b.ok(['volume', 'prune', '-f']);
        b.ok(['volume', 'rm', 'keepme']);
      }));
  });

  describe('detached containers outlive the CLI', () => {
    it('records exit code, finish time and logs with no berth process running when it exits', () =>
      using(['det'], async () => {
        const id = b.ok(['run', '-d', '--name', 'det', 'busybox', 'sh', '-c', 'echo hi; echo oops >&2; sleep 1; exit 3']);
        // No berth command runs until the monitor alone has recorded the exit and cleaned up.
        const exitFile = join(containerDir(id), 'exit.json');
        await until('exit.json', () => existsSync(exitFile));
        await until('the monitor to clean up', () => b.leftovers().length === 0);
        const exit = JSON.parse(readFileSync(exitFile, 'utf8'));
        assert.equal(exit.exitCode, 3);
        const st = b.inspect('det').State;
        assert.equal(st.Status, 'exited');
        assert.equal(st.Running, false);
        assert.equal(st.ExitCode, 3);
        const ran = Date.parse(st.FinishedAt) - Date.parse(st.StartedAt);
        assert.ok(ran >= 900 && ran < 5000, `ran for ${ran} ms, want about 1 s`);
        const logs = b.run(['logs', 'det']);
        assert.equal(logs.stdout, 'hi\n');
        assert.equal(logs.stderr, 'oops\n');
      }));

    it('run -d --rm and create --rm + start remove the container on exit (and its anonymous volumes), with no berth process running', async () => {
      const ids = [
        b.ok(['run', '-d', '--rm', 'busybox', 'sh', '-c', 'sleep 0.3']),
        b.ok(['run', '-d', '--rm', '-v', '/scratch', 'busybox', 'sh', '-c', 'sleep 0.3']),
        b.ok(['create', '--rm', 'busybox', 'sh', '-c', 'sleep 0.3']),
        b.ok(['create', '--rm', '-v', '/scratch', 'busybox', 'sh', '-c', 'sleep 0.3']),
      ];
      try {
        b.ok(['start', ids[2]!, ids[3]!]);
        await until('all removed', () => ids.every((id) => !existsSync(containerDir(id))), 10_000);
        await until('nothing left in the kernel', () => b.leftovers().length === 0);
        assert.equal(b.ok(['ps', '-aq']), '');
        assert.equal(b.ok(['volume', 'ls', '-q']), '', 'the anonymous volumes went with them');
      } finally {
        b.run(['rm', '-f', '-v', ...ids]);
      }
    });

    it('run --rm in the foreground removes the container and exits with its code', () => {
      assert.equal(b.run(['run', '--rm', '--name', 'fg', 'busybox', 'sh', '-c', 'exit 3']).code, 3);
      assert.equal(b.run(['inspect', 'fg']).code, 1);
    });
  });

  describe('logs', () => {
    it('logs -f follows until the container exits', () =>
      using(['lf'], async () => {
        b.ok(['run', '-d', '--name', 'lf', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.4; done; echo bye >&2']);
        const r = await finished(b.spawn(['logs', '-f', 'lf']));
        assert.equal(r.code, 0);
        assert.equal(r.stdout, 'line1\nline2\nline3\n');
        assert.equal(r.stderr, 'bye\n');
        assert.ok(r.ms >= 400, `logs -f returned after ${r.ms.toFixed(0)} ms, before the container exited`);
        const again = await finished(b.spawn(['logs', '-f', '--tail', '1', 'lf']));
        assert.equal(again.stderr, 'bye\n', 'on an exited container logs -f returns at once');
      }));

    it('--tail, -t, --since and --until select and stamp entries', () =>
      using(['lt'], () => {
        b.ok(['run', '-d', '--name', 'lt', 'busybox', 'sh', '-c', 'echo first; sleep 0.2; echo second; sleep 0.2; echo third']);
        b.ok(['wait', 'lt']);
        assert.equal(b.ok(['logs', '--tail', '2', 'lt']), 'second\nthird');
        assert.equal(b.ok(['logs', '-n', '0', 'lt']), '');
        assert.equal(b.ok(['logs', '--tail', 'all', 'lt']), 'first\nsecond\nthird');
        const stamped = b.ok(['logs', '-t', 'lt']).split('\n');
        assert.equal(stamped.length, 3);
        const times = stamped.map((l) => {
          const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z) (\S+)$/.exec(l);
          assert.ok(m, `not "TIME entry": ${l}`);
          return m[1]!;
        });
        // Boundaries are inclusive and exact to the nanosecond.
        assert.equal(b.ok(['logs', '--since', times[2]!, 'lt']), 'third');
        assert.equal(b.ok(['logs', '--since', times[1]!, 'lt']), 'second\nthird');
        assert.equal(b.ok(['logs', '--until', times[1]!, 'lt']), 'first\nsecond');
        assert.equal(b.ok(['logs', '--since', times[1]!, '--until', times[1]!, 'lt']), 'second');
        assert.equal(b.ok(['logs', '--since', '1h', 'lt']), 'first\nsecond\nthird');
        assert.equal(b.ok(['logs', '--since', '2099-01-01T00:00:00Z', 'lt']), '');
        const unix = (Date.parse(times[2]!) / 1000 - 0.0005).toFixed(4);
        assert.equal(b.ok(['logs', '--since', unix, 'lt']), 'third', `--since ${unix} (Unix seconds)`);
      }));

    it('rotates by default and with --log-opt max-size; logs and logs -f read across files', () =>
      using(['rot', 'rotd'], async () => {
        b.ok(['create', '--name', 'rotd', 'busybox', 'true']);
        assert.deepEqual(b.inspect('rotd').HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } });
        const loop = 'i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); usleep 3000; done';
        b.ok(['run', '-d', '--name', 'rot', '--log-opt', 'max-size=1k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c', loop]);
        const followed = await finished(b.spawn(['logs', '-f', 'rot']));
        const lines = followed.stdout.trim().split('\n').map((l) => Number(l.slice(4)));
        assert.equal(lines.at(-1), 199);
        for (let i = 1; i < lines.length; i++) assert.equal(lines[i], lines[i - 1]! + 1, `logs -f lost or repeated lines at ${lines[i - 1]}`);
        const logPath = b.inspect('rot').LogPath as string;
        const files = readdirSync(dirname(logPath)).filter((f) => f.includes('-json.log')).sort();
        const base = logPath.split('/').pop()!;
        assert.deepEqual(files, [base, `${base}.1`, `${base}.2`]);
        for (const f of files) assert.ok(statSync(join(dirname(logPath), f)).size < 1200, `${f} is over max-size`);
        const all = b.ok(['logs', 'rot']).split('\n');
        assert.ok(all.length > 20 && all.length < 200, `${all.length} lines kept`);
        assert.equal(all.at(-1), 'line199');
        for (let i = 1; i < all.length; i++) assert.equal(Number(all[i]!.slice(4)), Number(all[i - 1]!.slice(4)) + 1);
      }));

    it('a reader that goes away ends logs quietly', () =>
      using(['lp'], () => {
        b.ok(['run', '-d', '--name', 'lp', 'busybox', 'sh', '-c', 'seq 1 20000']);
        b.ok(['wait', 'lp']);
        const r = spawnSync('sh', ['-c', `'${BERTH}' --root '${b.root}' logs lp | head -1`], { encoding: 'utf8' });
        assert.equal(r.stdout, '1\n');
        assert.equal(r.stderr, '', 'no EPIPE stack trace');
      }));
  });

  it('the monitor of a running container stays below 2 MB resident', () =>
    using(['mem', 'memt'], () => {
      for (const [name, flags] of [['mem', []], ['memt', ['-t', '-i']]] as const) {
        const id = b.ok(['run', '-d', '--name', name, ...flags, 'busybox', 'sleep', '600']);
        const pid = readFileSync(join(containerDir(id), 'monitor.pid'), 'utf8').trim();
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /berth-monitor/);
        const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
        assert.ok(rss > 0 && rss < 2048, `monitor VmRSS ${rss} kB`);
      }
    }));

  describe('exec', () => {
    it('exec -i passes stdin; without -i the command gets none; its exit code is exec\'s', () =>
      using(['ex'], () => {
        b.ok(['run', '-d', '--name', 'ex', 'busybox', 'sleep', '600']);
        const r = b.run(['exec', '-i', 'ex', 'sh', '-c', 'tr a-z A-Z; echo done'], { input: 'abc\ndef\n' });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'ABC\nDEF\ndone\n');
        assert.equal(b.run(['exec', 'ex', 'cat'], { input: 'ignored\n' }).stdout, '');
        assert.equal(b.run(['exec', 'ex', 'sh', '-c', 'echo err >&2; exit 9']).code, 9);
        const env = join(b.root, '..', 'exec.env');
        writeFileSync(env, '# comment\nFROMFILE=yes\n');
        assert.equal(b.ok(['exec', '-u', 'app', '-w', '/tmp', '-e', 'FOO=bar', '--env-file', env, 'ex', 'sh', '-c', 'id -u; pwd; echo $FOO $FROMFILE']), '1000\n/tmp\nbar yes');
        const hostCaps = /CapBnd:\s*(\w+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1];
        assert.equal(b.ok(['exec', '--privileged', 'ex', 'grep', 'CapEff', '/proc/self/status']).split(/\s+/)[1], hostCaps);
        assert.notEqual(b.ok(['exec', 'ex', 'grep', 'CapEff', '/proc/self/status']).split(/\s+/)[1], hostCaps);
      }));

    it('exec -d returns at once and the command goes on', () =>
      using(['exd'], async () => {
        b.ok(['run', '-d', '--name', 'exd', 'busybox', 'sleep', '600']);
        const upper = b.inspect('exd').GraphDriver.Data.UpperDir as string;
        const [r, ms] = timed(() => b.run(['exec', '-d', 'exd', 'sh', '-c', 'echo $$ > /tmp/bg; exec sleep 500']));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, '');
        assert.ok(ms < 5000, `exec -d took ${ms.toFixed(0)} ms`);
        await until('the detached command to start', () => existsSync(join(upper, 'tmp', 'bg')));
        assert.match(b.ok(['exec', 'exd', 'ps', '-o', 'args']), /^sleep 500$/m, 'still running after exec -d returned');
        const bad = b.run(['exec', '-d', 'exd', 'nosuchcmd']);
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /executable file not found/);
      }));

    it('exec errors: 127 not found, 126 not executable, 1 when the container is missing or not running', () =>
      using(['exe'], () => {
        b.ok(['run', '-d', '--name', 'exe', 'busybox', 'sleep', '600']);
        const nf = b.run(['exec', 'exe', 'nosuchcmd']);
        assert.equal(nf.code, 127);
        assert.match(nf.stderr, /exec: "nosuchcmd": executable file not found in \$PATH/);
        const ni = b.run(['exec', 'exe', '/etc/passwd']);
        assert.equal(ni.code, 126);
        assert.match(ni.stderr, /permission denied/);
        assert.equal(b.run(['exec', 'exe', '/no/such/file']).code, 127);
        const missing = b.run(['exec', 'nosuch', 'true']);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /No such container: nosuch/);
        b.ok(['stop', '-t', '0', 'exe']);
        const stopped = b.run(['exec', 'exe', 'true']);
        assert.equal(stopped.code, 1);
        assert.match(stopped.stderr, /is not running/);
        assert.deepEqual(readdirSync(containerDir(b.inspect('exe').Id)).filter((f) => f.startsWith('exec-')), [], 'no exec process files left');
      }));
  });

  describe('signals to an attached run (no tty)', () => {
    const trap = 'trap "echo got TERM; exit 7" TERM; trap "echo got INT; exit 8" INT; trap "echo got HUP; exit 9" HUP; echo ready; while true; do sleep 0.05; done';

    for (const [sig, code, word] of [['SIGTERM', 7, 'TERM'], ['SIGINT', 8, 'INT'], ['SIGHUP', 9, 'HUP']] as const) {
      it(`${sig} to berth run goes to the container, and berth exits with its code`, () =>
        using([`sp${word}`], async () => {
          const child = b.spawn(['run', '--name', `sp${word}`, 'busybox', 'sh', '-c', trap]);
          const done = finished(child);
          await printed(child, 'ready');
          child.kill(sig);
          const r = await done;
          assert.equal(r.code, code, r.stderr);
          assert.equal(r.stdout, `ready\ngot ${word}\n`);
        }));
    }

    it('--sig-proxy=false leaves the container alone', () =>
      using(['nosp'], async () => {
        const child = b.spawn(['run', '--sig-proxy=false', '--name', 'nosp', 'busybox', 'sh', '-c', trap]);
        const done = finished(child);
        await printed(child, 'ready');
        child.kill('SIGTERM');
        const r = await done;
        assert.equal(r.signal, 'SIGTERM');
        assert.equal(b.inspect('nosp').State.Running, true);
      }));
  });
});
