import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Berth } from '../lib/berth.js';

// `exec -t` and `run -t` when the client has no terminal (the tests' stdio are pipes): as with Docker, the process
// still gets a pseudo-terminal, and what it writes reaches our stdout as a pty gives it (CRLF, stderr merged).
describe('exec -t without a client terminal', () => {
  const b = new Berth();
  let ctr = '';
  before(() => {
    b.importBusybox();
    ctr = b.ok(['run', '-d', '--name', 'ttyhost', 'busybox', 'sleep', '600']);
  });
  after(() => {
    // every relay is gone with its process, and took its socket and pid file along
    assert.equal(spawnSync('pgrep', ['-f', `exec-tty.*${b.root}`]).status, 1, 'no exec-tty relay is left running');
    assert.deepEqual(readdirSync(join(b.root, 'containers', ctr)).filter((f) => f.startsWith('exec-')), [], 'no exec-* files left');
    assert.deepEqual(b.destroy(), [], 'berth left kernel state behind');
  });

  it('gives the process a terminal and relays its output with CRLF, stderr merged into stdout', () => {
    const r = b.run(['exec', '-t', ctr, 'sh', '-c', '[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty; echo out; echo err >&2; tty']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^tty\r\nout\r\nerr\r\n\/dev\/pts\/\d+\r\n$/);
    assert.equal(r.stderr, '');
    // without -t: no terminal, plain line ends, separate streams
    const plain = b.run(['exec', ctr, 'sh', '-c', '[ -t 1 ] || echo notty; echo err >&2']);
    assert.deepEqual([plain.code, plain.stdout, plain.stderr], [0, 'notty\n', 'err\n']);
  });

  it('is a full terminal: termios and window size work inside', () => {
    // (the size starts at 0x0, as Docker leaves it when the client has no terminal to take a size from)
    const r = b.run(['exec', '-t', ctr, 'sh', '-c', 'stty -g >/dev/null && echo termios; stty rows 30 cols 100 && stty size']);
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stdout, 'termios\r\n30 100\r\n');
  });

  it("sets TERM=xterm as Docker does for a tty (-e overrides it)", () => {
    assert.equal(b.run(['exec', '-t', ctr, 'sh', '-c', 'echo $TERM']).stdout, 'xterm\r\n');
    assert.equal(b.run(['exec', '-t', '-e', 'TERM=dumb', ctr, 'sh', '-c', 'echo $TERM']).stdout, 'dumb\r\n');
    assert.equal(b.run(['exec', ctr, 'sh', '-c', 'echo "[$TERM]"']).stdout, '[]\n', 'no TERM without -t');
  });

  it("exits with the process's code, 128+N when a signal killed it", () => {
    assert.equal(b.run(['exec', '-t', ctr, 'sh', '-c', 'exit 3']).code, 3);
    assert.equal(b.run(['exec', '-t', ctr, 'sh', '-c', 'kill -9 $$']).code, 137);
  });

  it('relays large output completely', () => {
    const r = b.run(['exec', '-t', ctr, 'seq', '1', '50000']);
    assert.equal(r.code, 0);
    const lines = r.stdout.split('\r\n');
    assert.equal(lines.length, 50001);
    assert.equal(lines[0], '1');
    assert.equal(lines[49999], '50000');
    assert.equal(lines[50000], '');
  });

  it('fails like Docker: -it needs a terminal on stdin, a missing command is 127, a runtime failure is reported', () => {
    const it = b.run(['exec', '-i', '-t', ctr, 'true']);
    assert.deepEqual([it.code, it.stderr], [1, 'Error: the input device is not a TTY\n']);
    const nf = b.run(['exec', '-t', ctr, 'no-such-command']);
    assert.equal(nf.code, 127);
    assert.match(nf.stderr, /executable file not found/);
    const cwd = b.run(['exec', '-t', '-w', '/no/such/dir', ctr, 'true']);
    assert.equal(cwd.code, 127);
    assert.match(cwd.stderr, /^Error: .*chdir to cwd .*\/no\/such\/dir.* no such file or directory\n$/);
    assert.equal(cwd.stdout, '');
  });

  it('finds commands and users through the container\'s mounts', () => {
    const id = b.ok(['run', '-d', '-v', 'ttybin:/opt/bin', 'busybox', 'sh', '-c', 'cp /bin/busybox /opt/bin/echo; sleep 600']);
    try {
      for (let i = 0; i < 100 && b.run(['exec', id, 'test', '-x', '/opt/bin/echo']).code !== 0; i++) spawnSync('sleep', ['0.05']);
      assert.equal(b.run(['exec', '-t', id, '/opt/bin/echo', 'from the volume']).stdout, 'from the volume\r\n');
    } finally {
      b.ok(['rm', '-f', '-v', id]);
      b.ok(['volume', 'rm', 'ttybin']);
    }
  });

  it('exec -d -t keeps a terminal for the detached process', () => {
    assert.equal(b.run(['exec', '-d', '-t', ctr, 'sh', '-c', '[ -t 1 ] && echo yes > /tmp/detached; sleep 1']).code, 0);
    let out = '';
    for (let i = 0; i < 100 && out !== 'yes'; i++) {
      out = b.run(['exec', ctr, 'cat', '/tmp/detached']).stdout.trim();
      if (out !== 'yes') spawnSync('sleep', ['0.05']);
    }
    assert.equal(out, 'yes');
    // the relay holding its terminal ends with the process
    for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', `exec-tty.*${b.root}`]).status === 0; i++) spawnSync('sleep', ['0.05']);
    assert.equal(spawnSync('pgrep', ['-f', `exec-tty.*${b.root}`]).status, 1);
  });

  it('run -t without a terminal gets a pty too', () => {
    const r = b.run(['run', '--rm', '-t', 'busybox', 'sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo tty; echo err >&2; exit 4']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [4, 'tty\r\nerr\r\n', '']);
  });
});
