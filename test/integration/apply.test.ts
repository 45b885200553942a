import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { readTar } from '../../src/image/tar.js';
import { applyLayer } from '../../src/storage/apply.js';
import { listChanges, writeLayerTar } from '../../src/storage/changes.js';
import { native, MNT_DETACH, MS_RDONLY } from '../../src/sys/native.js';
import { sha256 } from '../../src/base/digest.js';
import { tarOf } from '../lib/tar-fixture.js';

// Needs root and overlayfs: mounts a real overlay, changes files through it, and checks the diff and the
// changeset layer against what the kernel did.
const overlayOk = process.getuid?.() === 0 && readFileSync('/proc/filesystems', 'utf8').includes('\toverlay\n');
const skip = overlayOk ? false : 'needs root and overlayfs';



async function* once(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf;
}

/** What a container sees: every path with type, owner, mode, whole-second mtime, content, link target, xattrs, link groups. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const walk = (abs: string, rel: string) => {
    for (const name of readdirSync(abs).sort()) {
      const p = join(abs, name);
      const r = `${rel}/${name}`;
      const st = lstatSync(p);
      let what = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)}`;
      if (st.isFile()) what += ` ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 12)}`;
      if (st.isSymbolicLink()) what += ` -> ${readlinkSync(p)}`;
      if (st.isCharacterDevice() || st.isBlockDevice()) what += ` dev ${st.rdev}`;
      const xattrs = native()
        .llistxattr(p)
        .filter((n) => n.startsWith('user.'))
        .sort()
        .map((n) => `${n}=${native().lgetxattr(p, n)?.toString()}`);
      if (xattrs.length) what += ` ${xattrs.join(',')}`;
      if (!st.isDirectory() && st.nlink > 1) {
        const first = inodes.get(st.ino);
        if (first) what += ` same-inode-as ${first}`;
        else inodes.set(st.ino, r);
      }
      out[r] = what;
      if (st.isDirectory()) walk(p, r);
    }
  };
  walk(dir, '');
  return out;
}

describe('overlayfs: changes and changesets', { skip }, () => {
  let base: string;
  const mounted: string[] = [];
  const mount = (target: string, lowers: string[], upper?: string, work?: string) => {
    mkdirSync(target, { recursive: true });
    const opts = `lowerdir=${lowers.join(':')}` + (upper ? `,upperdir=${upper},workdir=${work}` : '');
    native().mount('overlay', target, 'overlay', upper ? 0 : MS_RDONLY, opts);
    mounted.push(target);
  };
  const unmount = (target: string) => {
    native().umount2(target, 0);
    mounted.splice(mounted.indexOf(target), 1);
  };

  before(() => {
    base = mkdtempSync(join(tmpdir(), 'berth-overlay-'));
  });
  after(() => {
    for (const m of mounted.reverse()) {
      try {
        native().umount2(m, MNT_DETACH);
      } catch {
        // already gone
      }
    }
    rmSync(base, { recursive: true, force: true });
  });

  it('diffs an upper dir like docker diff and commits it as a layer that reproduces the container', async () => {
    const l1 = join(base, 'l1');
    const l2 = join(base, 'l2');
    await applyLayer(
      once(
        await tarOf([
          [{ name: 'etc/' }],
          [{ name: 'etc/passwd' }, 'root:x:0:0\n'],
          [{ name: 'etc/hosts' }, '127.0.0.1 localhost\n'],
          [{ name: 'etc/motd' }, 'hello\n'],
          [{ name: 'usr/' }],
          [{ name: 'usr/bin/' }],
          [{ name: 'usr/bin/tool', mode: 0o755 }, '#!/bin/sh\n'],
          [{ name: 'usr/share/' }],
          [{ name: 'usr/share/doc/' }],
          [{ name: 'usr/share/doc/a/' }],
          [{ name: 'usr/share/doc/a/readme' }, 'a'],
          [{ name: 'usr/share/doc/b/' }],
          [{ name: 'usr/share/doc/b/readme' }, 'b'],
          [{ name: 'var/' }],
          [{ name: 'var/log/' }],
          [{ name: 'var/log/old.log' }, 'old'],
          [{ name: 'opt/' }],
          [{ name: 'opt/app/' }],
          [{ name: 'opt/app/config.json' }, '{}'],
          [{ name: 'opt/app/data/' }],
          [{ name: 'opt/app/data/x' }, 'x'],
          [{ name: 'home/' }],
          [{ name: 'home/user/', uid: 1000, gid: 1000, mode: 0o700 }],
        ]),
      ),
      l1,
    );
    await applyLayer(
      once(
        await tarOf([
          [{ name: 'etc/' }],
          [{ name: 'etc/motd' }, 'hello from layer 2\n'],
          [{ name: 'var/log/.wh.old.log' }],
          [{ name: 'usr/share/doc/.wh.b' }],
          [{ name: 'srv/' }],
          [{ name: 'srv/new-in-l2' }, 'l2'],
        ]),
      ),
      l2,
      { lowerDirs: [l1] },
    );
    const lowers = [l2, l1];
    const upper = join(base, 'upper');
    const work = join(base, 'work');
    const merged = join(base, 'merged');
    mkdirSync(upper);
    mkdirSync(work);
    mount(merged, lowers, upper, work);

    assert.ok(!existsSync(join(merged, 'var/log/old.log')), 'layer 2 whiteout hides the file');
    assert.ok(!existsSync(join(merged, 'usr/share/doc/b')));
    assert.equal(readFileSync(join(merged, 'etc/motd'), 'utf8'), 'hello from layer 2\n');

    // what a container might do
    const m = (p: string) => join(merged, p);
    appendFileSync(m('etc/hosts'), '10.0.0.2 db\n');
    unlinkSync(m('etc/passwd'));
    writeFileSync(m('etc/new.conf'), 'new');
    renameSync(m('etc/motd'), m('etc/motd.old'));
    rmSync(m('usr/share/doc/a'), { recursive: true });
    rmSync(m('opt/app'), { recursive: true });
    mkdirSync(m('opt/app'));
    writeFileSync(m('opt/app/fresh'), 'fresh');
    chmodSync(m('usr/bin/tool'), 0o700);
    writeFileSync(m('var/log/old.log'), 'recreated');
    mkdirSync(m('newdir'));
    writeFileSync(m('newdir/file'), 'file');
    linkSync(m('newdir/file'), m('newdir/hard'));
    symlinkSync('../etc/hosts', m('newdir/sym'));
    native().mknod(m('newdir/fifo'), 0o010600, 0, 0);
    native().mknod(m('newdir/null'), 0o020666, 1, 3);
    writeFileSync(m('newdir/suid'), 'suid');
    chownSync(m('newdir/suid'), 1000, 1000);
    chmodSync(m('newdir/suid'), 0o4750);
    native().lsetxattr(m('newdir/file'), 'user.k', Buffer.from('v'));
    writeFileSync(m('home/user/.bash_history'), 'ls\n');

    const expected = snapshot(merged);
    unmount(merged);

    assert.deepEqual(await listChanges(upper, lowers), [
      { kind: 'C', path: '/etc' },
      { kind: 'C', path: '/etc/hosts' },
      { kind: 'D', path: '/etc/motd' },
      { kind: 'A', path: '/etc/motd.old' },
      { kind: 'A', path: '/etc/new.conf' },
      { kind: 'D', path: '/etc/passwd' },
      { kind: 'C', path: '/home/user' },
      { kind: 'A', path: '/home/user/.bash_history' },
      { kind: 'A', path: '/newdir' },
      { kind: 'A', path: '/newdir/fifo' },
      { kind: 'A', path: '/newdir/file' },
      { kind: 'A', path: '/newdir/hard' },
      { kind: 'A', path: '/newdir/null' },
      { kind: 'A', path: '/newdir/suid' },
      { kind: 'A', path: '/newdir/sym' },
      { kind: 'C', path: '/opt' },
      { kind: 'C', path: '/opt/app' },
      { kind: 'A', path: '/opt/app/fresh' },
      { kind: 'C', path: '/usr/bin/tool' },
      { kind: 'C', path: '/usr/share/doc' },
      { kind: 'D', path: '/usr/share/doc/a' },
      { kind: 'C', path: '/var/log' },
      { kind: 'A', path: '/var/log/old.log' },
    ]);

    // commit: the changeset layer, applied as a new top layer, must show the same container file system
    const out = new PassThrough();
    const parts: Buffer[] = [];
    out.on('data', (c: Buffer) => parts.push(c));
    const res = await writeLayerTar(upper, lowers, out);
    const tar = Buffer.concat(parts);
    assert.equal(res.digest, sha256(tar));
    const names: string[] = [];
    for await (const { entry } of readTar(once(tar))) names.push(entry.name);
    assert.ok(names.includes('etc/.wh.passwd') && names.includes('opt/app/.wh..wh..opq'), names.join(' '));
    assert.ok(names.indexOf('opt/app/') + 1 === names.indexOf('opt/app/.wh..wh..opq'));
    assert.match(execFileSync('tar', ['-tvf', '-'], { input: tar }).toString(), /newdir\/hard link to newdir\/file/);

    const l3 = join(base, 'l3');
    const applied = await applyLayer(once(tar), l3, { lowerDirs: lowers });
    assert.equal(applied.diffId, res.digest);
    const view = join(base, 'view');
    mount(view, [l3, ...lowers]);
    try {
      const got = snapshot(view);
      assert.deepEqual(got, expected);
    } finally {
      unmount(view);
    }
  });

  it('a deleted lower directory recreated in the same layer stays hidden below', async () => {
    const low = join(base, 'low');
    await applyLayer(once(await tarOf([[{ name: 'd/' }], [{ name: 'd/old' }, 'old']])), low);
    const top = join(base, 'top');
    await applyLayer(once(await tarOf([[{ name: '.wh.d' }], [{ name: 'd/' }], [{ name: 'd/new' }, 'new']])), top, { lowerDirs: [low] });
    const view = join(base, 'view2');
    mount(view, [top, low]);
    try {
      assert.deepEqual(readdirSync(join(view, 'd')), ['new']);
    } finally {
      unmount(view);
    }
  });
});
