import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Berth, BERTH, type Result } from '../lib/berth.js';
import { tempDir } from '../lib/busybox-rootfs.js';

// docker cp through a container's volumes and bind mounts: paths resolve as the container sees them (the longest
// mount destination that holds a path wins), running or stopped, and read-only mounts refuse writes.

function expectFailure(r: Result, message: RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

/** Names in a tar (as GNU tar lists them), sorted. */
function tarNames(tar: Buffer): string[] {
  const r = spawnSync('tar', ['-t'], { input: tar, encoding: 'buffer' });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString().split('\n').filter(Boolean).sort();
}

function raw(b: Berth, args: string[]): Buffer {
  const r = spawnSync(BERTH, ['--root', b.root, ...args], { maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

/** Every path below dir, relative, sorted ("a/", "a/b"). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      out.push(`${rel}${e.name}${e.isDirectory() ? '/' : ''}`);
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
    }
  };
  walk(dir, '');
  return out.sort();
}

describe('cp through volumes and bind mounts', () => {
  const b = new Berth();
  let dir = '';
  let host = '';
  let bind = '';
  const vol = (name: string) => join(b.root, 'volumes', name, '_data');
  before(() => {
    b.importBusybox();
    dir = tempDir('berth-cpvol-');
    host = join(dir, 'host');
    bind = join(dir, 'bind');
    mkdirSync(join(host, 'tree', 'sub'), { recursive: true });
    mkdirSync(bind);
    writeFileSync(join(host, 'file.txt'), 'file\n');
    writeFileSync(join(host, 'tree', 'sub', 't.txt'), 't\n');
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(b.destroy(), [], 'berth left kernel state behind');
  });

  it('writes into the volume or bind mount that holds the path, not into the layer beneath it', () => {
    const c = b.ok(['run', '-d', '-v', 'data:/data', '-v', `${bind}:/data/nested`, 'busybox', 'sleep', '600']);
    try {
      b.ok(['cp', join(host, 'file.txt'), `${c}:/data/`]);
      b.ok(['cp', join(host, 'file.txt'), `${c}:/data/renamed.txt`]);
      b.ok(['cp', join(host, 'tree'), `${c}:/data`]); // an existing directory (the mount point) receives tree
      b.ok(['cp', join(host, 'file.txt'), `${c}:/data/nested/`]); // the longest destination wins
      b.ok(['cp', `${join(host, 'tree')}/.`, `${c}:/data/nested`]);
      assert.deepEqual(tree(vol('data')), ['file.txt', 'nested/', 'renamed.txt', 'tree/', 'tree/sub/', 'tree/sub/t.txt']);
      assert.deepEqual(tree(bind), ['file.txt', 'sub/', 'sub/t.txt']);
      assert.equal(b.ok(['exec', c, 'cat', '/data/renamed.txt', '/data/tree/sub/t.txt', '/data/nested/sub/t.txt']), 'file\nt\nt');
      // the writable layer only has the mount points the runtime made
      const upper = b.inspect(c).GraphDriver.Data.UpperDir as string;
      assert.deepEqual(tree(join(upper, 'data')), []);

      // out again, through the same mounts
      const out = join(dir, 'out1');
      mkdirSync(out);
      b.ok(['cp', `${c}:/data/tree/sub/t.txt`, join(out, 't.txt')]);
      assert.equal(readFileSync(join(out, 't.txt'), 'utf8'), 't\n');
      b.ok(['cp', `${c}:/data/nested`, out]);
      assert.deepEqual(tree(join(out, 'nested')), ['file.txt', 'sub/', 'sub/t.txt']);
      assert.deepEqual(tarNames(raw(b, ['cp', `${c}:/data/nested/file.txt`, '-'])), ['file.txt']);
    } finally {
      b.ok(['rm', '-f', c]);
    }
  });

  it('archives a directory with the content of the mounts below it, and extracts into them', () => {
    const c = b.ok(['run', '-d', '-v', 'outer:/srv', '-v', 'inner:/srv/db', 'busybox', 'sleep', '600']);
    try {
      b.ok(['exec', c, 'sh', '-c', 'echo o > /srv/o; echo i > /srv/db/i']);
      assert.deepEqual(tarNames(raw(b, ['cp', `${c}:/srv`, '-'])), ['srv/', 'srv/db/', 'srv/db/i', 'srv/o']);
      const whole = tarNames(raw(b, ['cp', `${c}:/`, '-']));
      assert.ok(whole.includes('srv/db/i') && whole.includes('bin/busybox'), 'the root with its mounts');
      const out = join(dir, 'out2');
      mkdirSync(out);
      b.ok(['cp', `${c}:/srv/.`, out]);
      assert.deepEqual(tree(out), ['db/', 'db/i', 'o']);

      // a tree copied onto / lands in each mount its paths fall in; hardlinks stay within one mount
      const src = join(dir, 'rootish');
      mkdirSync(join(src, 'srv', 'db', 'deep'), { recursive: true });
      mkdirSync(join(src, 'etc'));
      writeFileSync(join(src, 'srv', 'top.txt'), 'top\n');
      writeFileSync(join(src, 'srv', 'db', 'deep', 'x.txt'), 'x\n');
      linkSync(join(src, 'srv', 'db', 'deep', 'x.txt'), join(src, 'srv', 'db', 'x-link'));
      writeFileSync(join(src, 'etc', 'layer.conf'), 'layer\n');
      b.ok(['cp', `${src}/.`, `${c}:/`]);
      assert.deepEqual(tree(vol('outer')), ['db/', 'o', 'top.txt']);
      assert.deepEqual(tree(vol('inner')), ['deep/', 'deep/x.txt', 'i', 'x-link']);
      assert.equal(b.ok(['exec', c, 'cat', '/srv/top.txt', '/srv/db/x-link', '/etc/layer.conf']), 'top\nx\nlayer');
      // and from a tar on stdin
      const tar = spawnSync('tar', ['-C', src, '-c', 'srv'], { encoding: 'buffer' }).stdout;
      rmSync(join(vol('inner'), 'deep'), { recursive: true });
      assert.equal(b.run(['cp', '-', `${c}:/`], { input: tar }).code, 0);
      assert.ok(existsSync(join(vol('inner'), 'deep', 'x.txt')));
    } finally {
      b.ok(['rm', '-f', c]);
    }
  });

  it('refuses writes into read-only mounts with Docker\'s words, and honours a read-only root outside them', () => {
    const c = b.ok(['run', '-d', '--read-only', '-v', 'rw1:/rw', '-v', 'ro1:/ro:ro', '-v', `${bind}:/rw/robind:ro`, 'busybox', 'sleep', '600']);
    try {
      b.ok(['cp', join(host, 'file.txt'), `${c}:/rw/`]);
      assert.deepEqual(tree(vol('rw1')), ['file.txt', 'robind/']);
      expectFailure(b.run(['cp', join(host, 'file.txt'), `${c}:/ro/`]), /^Error: mounted volume is marked read-only$/m);
      expectFailure(b.run(['cp', join(host, 'file.txt'), `${c}:/ro/new.txt`]), /mounted volume is marked read-only/);
      expectFailure(b.run(['cp', join(host, 'file.txt'), `${c}:/rw/robind/`]), /mounted volume is marked read-only/);
      expectFailure(b.run(['cp', '-', `${c}:/ro`], { input: spawnSync('tar', ['-C', host, '-c', 'file.txt']).stdout }), /mounted volume is marked read-only/);
      expectFailure(b.run(['cp', join(host, 'file.txt'), `${c}:/tmp/`]), /container rootfs is marked read-only/);
      // a tree that reaches into a read-only mount below a writable one
      const src = join(dir, 'intoro');
      mkdirSync(join(src, 'robind'), { recursive: true });
      writeFileSync(join(src, 'robind', 'x'), 'x');
      expectFailure(b.run(['cp', `${src}/.`, `${c}:/rw`]), /mounted volume is marked read-only/);
      assert.deepEqual(tree(vol('ro1')), []);
      assert.ok(!existsSync(join(bind, 'x')));
      // reading from read-only mounts is fine
      writeFileSync(join(vol('ro1'), 'r.txt'), 'r\n');
      assert.deepEqual(tarNames(raw(b, ['cp', `${c}:/ro/r.txt`, '-'])), ['r.txt']);
    } finally {
      b.ok(['rm', '-f', c]);
    }
    // stopped too (Docker checks the container's configuration, not its state)
    const s = b.ok(['create', '--read-only', '-v', 'ro2:/ro:ro', '-v', 'rw2:/rw', 'busybox', 'true']);
    try {
      expectFailure(b.run(['cp', join(host, 'file.txt'), `${s}:/ro/`]), /mounted volume is marked read-only/);
      expectFailure(b.run(['cp', join(host, 'file.txt'), `${s}:/`]), /container rootfs is marked read-only/);
      b.ok(['cp', join(host, 'file.txt'), `${s}:/rw/`]);
      assert.deepEqual(tree(vol('rw2')), ['file.txt']);
    } finally {
      b.ok(['rm', '-f', s]);
    }
  });

  it('goes through the mounts of a stopped container', () => {
    const c = b.ok(['create', '-v', 'stopped:/data', '-v', `${bind}:/data/b`, 'busybox', 'true']);
    try {
      b.ok(['cp', join(host, 'file.txt'), `${c}:/data/in-volume.txt`]);
      b.ok(['cp', join(host, 'file.txt'), `${c}:/data/b/in-bind.txt`]);
      assert.ok(existsSync(join(vol('stopped'), 'in-volume.txt')));
      assert.ok(existsSync(join(bind, 'in-bind.txt')));
      const out = join(dir, 'out3');
      mkdirSync(out);
      b.ok(['cp', `${c}:/data/b/in-bind.txt`, join(out, 'x.txt')]);
      assert.equal(readFileSync(join(out, 'x.txt'), 'utf8'), 'file\n');
      assert.equal(b.ok(['run', '--rm', '-v', 'stopped:/v', 'busybox', 'cat', '/v/in-volume.txt']), 'file');
      assert.ok(!b.ok(['diff', c]).includes('in-volume'), 'nothing in the layer');
    } finally {
      b.ok(['rm', '-f', c]);
    }
  });

  it('follows symlinks across mounts as the container would, never out of it', () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const script = [
      `mkdir -p ${outside}`, `ln -s /etc /data/etc-link`, `ln -s ../../../../../.. /data/up`, `ln -s ${outside} /data/hostdir`,
      'ln -s /data /link', 'sleep 600',
    ].join('; ');
    const c = b.ok(['run', '-d', '-v', 'links:/data', 'busybox', 'sh', '-c', script]);
    try {
      for (let i = 0; i < 100 && b.run(['exec', c, 'test', '-L', '/link']).code !== 0; i++) spawnSync('sleep', ['0.05']);
      b.ok(['cp', join(host, 'file.txt'), `${c}:/link/via-root-link.txt`]); // root fs symlink into the volume
      assert.ok(existsSync(join(vol('links'), 'via-root-link.txt')));
      b.ok(['cp', join(host, 'file.txt'), `${c}:/data/etc-link/from-volume.txt`]); // volume symlink to the root fs
      assert.equal(b.ok(['exec', c, 'cat', '/etc/from-volume.txt']), 'file');
      assert.ok(!existsSync(join(vol('links'), 'etc', 'from-volume.txt')));
      b.ok(['cp', join(host, 'file.txt'), `${c}:/data/up/data/climbed.txt`]); // ".." stops at the container's root
      assert.ok(existsSync(join(vol('links'), 'climbed.txt')));
      b.ok(['cp', join(host, 'file.txt'), `${c}:/data/hostdir/`]); // an absolute link names a container path
      assert.deepEqual(readdirSync(outside), [], 'the host directory of that name is untouched');
      assert.equal(b.ok(['exec', c, 'cat', `${outside}/file.txt`]), 'file');
      assert.match(tarNames(raw(b, ['cp', `${c}:/data/up/etc/passwd`, '-'])).join(), /^passwd$/);
      assert.deepEqual(tarNames(raw(b, ['cp', '-L', `${c}:/link`, '-'])).filter((n) => n.endsWith('.txt')), ['link/climbed.txt', 'link/via-root-link.txt']);
    } finally {
      b.ok(['rm', '-f', c]);
    }
  });

  it('sees the layer beneath a tmpfs mount, as docker cp does', () => {
    const c = b.ok(['run', '-d', '--tmpfs', '/scratch', 'busybox', 'sleep', '600']);
    try {
      b.ok(['cp', join(host, 'file.txt'), `${c}:/scratch/`]);
      assert.equal(b.run(['exec', c, 'test', '-e', '/scratch/file.txt']).code, 1, 'not in the tmpfs the container sees');
      assert.match(b.ok(['diff', c]), /^A \/scratch\/file\.txt$/m, 'in the writable layer');
    } finally {
      b.ok(['rm', '-f', c]);
    }
  });
});
