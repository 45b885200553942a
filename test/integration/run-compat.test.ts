import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Berth } from '../lib/berth.js';

// Docker compatibility of `run` through the real CLI: the command is looked up in the container's own view (its
// bind mounts and volumes, tmpfs mounts empty) with Docker's 126/127; a tty gets TERM=xterm as Docker gives it.

describe('berth run: Docker compatibility', { concurrency: false }, () => {
  let b: Berth;
  let host: string;
  before(() => {
    b = new Berth();
    b.importBusybox();
    host = mkdtempSync(join(tmpdir(), 'berth-run-compat-'));
    // busybox runs the applet its name says: a copy named echo is an echo.
    mkdirSync(join(host, 'bin', 'sub'), { recursive: true });
    copyFileSync('/usr/bin/busybox', join(host, 'bin', 'echo'));
    chmodSync(join(host, 'bin', 'echo'), 0o755);
    writeFileSync(join(host, 'bin', 'plain'), '#!/bin/sh\necho never\n', { mode: 0o644 });
  });
  after(() => {
    try {
      assert.deepEqual(b.destroy(), []);
    } finally {
      rmSync(host, { recursive: true, force: true });
    }
  });

  /** Runs a --rm container; its exit code, output and error. */
  const run = (args: string[]) => {
    const r = b.run(['run', '--rm', ...args]);
    return { code: r.code, out: r.stdout, err: r.stderr };
  };

  it('runs a command from a bind mount, by absolute path and through PATH', () => {
    const bin = `${join(host, 'bin')}:/opt/bin`;
    assert.deepEqual(run(['-v', bin, 'busybox', '/opt/bin/echo', 'hi']), { code: 0, out: 'hi\n', err: '' });
    // /usr/local/bin is on the image's PATH: the bind mount over it is where the lookup finds echo first.
    const onPath = run(['-v', `${join(host, 'bin')}:/usr/local/bin`, 'busybox', 'echo', 'via PATH']);
    assert.deepEqual(onPath, { code: 0, out: 'via PATH\n', err: '' });
    // A relative path, from the working directory inside the mount.
    assert.equal(run(['-v', bin, '-w', '/opt', 'busybox', './bin/echo', 'rel']).out, 'rel\n');
    // A single bind-mounted file.
    assert.equal(run(['-v', `${join(host, 'bin', 'echo')}:/opt/one/echo`, 'busybox', '/opt/one/echo', 'one']).out, 'one\n');
  });

  it('runs a command from a named volume', () => {
    b.ok(['run', '--rm', '-v', 'compat-tools:/tools', 'busybox', 'cp', '/bin/busybox', '/tools/echo']);
    try {
      assert.deepEqual(run(['-v', 'compat-tools:/t', 'busybox', '/t/echo', 'from the volume']), { code: 0, out: 'from the volume\n', err: '' });
      assert.equal(run(['-v', 'compat-tools:/t', '-e', 'PATH=/t', 'busybox', 'echo', 'path']).out, 'path\n');
    } finally {
      b.ok(['volume', 'rm', 'compat-tools']);
    }
  });

  it('127 for a command the container does not have, 126 for a directory or a file that is not executable', () => {
    const bin = `${join(host, 'bin')}:/opt/bin`;
    const missing = run(['-v', bin, 'busybox', '/opt/bin/nope']);
    assert.equal(missing.code, 127);
    assert.match(missing.err, /exec: "\/opt\/bin\/nope": stat \/opt\/bin\/nope: no such file or directory/);
    const notOnPath = run(['-v', bin, '-e', 'PATH=/opt/bin', 'busybox', 'nope']);
    assert.equal(notOnPath.code, 127);
    assert.match(notOnPath.err, /exec: "nope": executable file not found in \$PATH/);
    // On the host the file exists, but not where the container looks.
    assert.equal(run(['busybox', join(host, 'bin', 'echo')]).code, 127);

    const dir = run(['-v', bin, 'busybox', '/opt/bin/sub']);
    assert.equal(dir.code, 126);
    assert.match(dir.err, /exec: "\/opt\/bin\/sub": is a directory/);
    assert.equal(run(['-v', bin, 'busybox', '/opt/bin']).code, 126);
    const plain = run(['-v', bin, 'busybox', '/opt/bin/plain']);
    assert.equal(plain.code, 126);
    assert.match(plain.err, /exec: "\/opt\/bin\/plain": permission denied/);

    // A tmpfs starts empty: the image's /bin is hidden under it.
    const hidden = run(['--tmpfs', '/bin', 'busybox', '/bin/echo', 'x']);
    assert.equal(hidden.code, 127, hidden.err);
    assert.equal(b.ok(['ps', '-aq']), '', 'no container left by failed runs');
  });

  it('a tty gets TERM=xterm in its process env, not in Config.Env; the image or -e sets another', () => {
    assert.equal(run(['-t', 'busybox', 'sh', '-c', 'echo "[$TERM]"']).out, '[xterm]\r\n');
    assert.equal(run(['busybox', 'sh', '-c', 'echo "[$TERM]"']).out, '[]\n', 'no tty, no TERM');
    assert.equal(run(['-t', '-e', 'TERM=vt100', 'busybox', 'sh', '-c', 'echo "[$TERM]"']).out, '[vt100]\r\n');
    assert.equal(run(['--hostname', 'compat-host', 'busybox', 'sh', '-c', 'echo "[$HOSTNAME]"']).out, '[compat-host]\n');

    const id = b.ok(['create', '-t', 'busybox', 'sleep', '600']);
    try {
      // Docker adds TERM when it makes the runtime spec: `inspect` shows the env the container was created with.
      assert.deepEqual(b.inspect(id).Config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
      b.ok(['start', id]);
      const env = b.ok(['exec', id, 'sh', '-c', 'tr "\\0" "\\n" < /proc/1/environ']).split('\n');
      // Docker's order: PATH, HOSTNAME, TERM, then the rest of Config.Env.
      const hostname = b.inspect(id).Config.Hostname;
      assert.deepEqual(env.slice(0, 3), ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOSTNAME=${hostname}`, 'TERM=xterm']);
      // An exec gets TERM from its own tty (Docker), not from the container's.
      assert.equal(b.run(['exec', id, 'sh', '-c', 'echo "[$TERM]"']).stdout, '[]\n');
      assert.equal(b.run(['exec', '-t', id, 'sh', '-c', 'echo "[$TERM]"']).stdout, '[xterm]\r\n');
    } finally {
      b.ok(['rm', '-f', id]);
    }

    const set = b.ok(['create', '-t', '-e', 'TERM=vt100', 'busybox', 'true']);
    try {
      assert.ok(b.inspect(set).Config.Env.includes('TERM=vt100'));
      // An image's ENV TERM wins over the tty's too.
      b.ok(['commit', '--change', 'ENV TERM=screen', set, 'compat-term']);
      assert.equal(run(['-t', 'compat-term', 'sh', '-c', 'echo "[$TERM]"']).out, '[screen]\r\n');
    } finally {
      b.ok(['rm', set]);
      b.run(['rmi', 'compat-term']);
    }
  });
});
