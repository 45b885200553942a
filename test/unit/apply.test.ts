import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lutimesSync,
  utimesSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { readTar, type TarEntry } from '../../src/image/tar.js';
import { listChanges, writeLayerTar, writeTreeTar } from '../../src/storage/changes.js';
import { applyLayer, splitEntryName, splitDev, lookupLower } from '../../src/storage/apply.js';
import { isBerthError } from '../../src/base/errors.js';
import { sha256 } from '../../src/base/digest.js';
import { tarOf, type Item } from '../lib/tar-fixture.js';
import { native } from '../../src/sys/native.js';

// Applying needs chown and mknod: root (the test VM runs as root).
const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root (chown, mknod)';



async function* once(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf;
}

const apply = async (dest: string, items: Item[], opts?: { lowerDirs?: string[] }) =>
  applyLayer(once(await tarOf(items)), dest, opts);

/** Every path below `dir` (relative), sorted, without following symlinks. */
function tree(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const rel = prefix + name;
    out.push(rel);
    const st = lstatSync(join(dir, name));
    if (st.isDirectory()) out.push(...tree(join(dir, name), rel + '/'));
  }
  return out;
}

async function rejectsCorrupt(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isBerthError(e, 'corrupt'), `expected a corrupt error, got ${String(e)}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

const isWhiteoutAt = (p: string) => {
  const st = lstatSync(p);
  return st.isCharacterDevice() && st.rdev === 0;
};
const opaque = (p: string) => native().lgetxattr(p, 'trusted.overlay.opaque')?.toString();

describe('applyLayer', { skip }, () => {
  let base: string;
  let dest: string;
  let outside: string;

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'berth-apply-'));
    dest = join(base, 'dest');
    outside = join(base, 'outside');
    mkdirSync(dest);
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'top secret');
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  const outsideUntouched = () => {
    assert.deepEqual(tree(outside), ['secret']);
    assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'top secret');
    assert.equal(statSync(join(outside, 'secret')).nlink, 1);
    assert.equal(statSync(outside).mode & 0o7777, 0o755);
    assert.equal(native().llistxattr(outside).length, 0);
    assert.deepEqual(readdirSync(base).filter((n) => n !== 'lower').sort(), ['dest', 'outside']);
  };

  it('unpacks every file type with owner, mode, mtime and the allowed xattrs', async () => {
    const res = await apply(dest, [
      [{ name: 'bin/', mode: 0o750, uid: 2, gid: 3, mtime: 1500000000 }],
      [{ name: 'bin/su', mode: 0o4755, uid: 0, gid: 0, mtime: 1500000001.5 }, '#!/bin/sh\n'],
      [{ name: 'bin/tool', mode: 0o2711, uid: 1000, gid: 1000, xattrs: { 'user.a': Buffer.from('1'), 'security.capability': Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 'trusted.evil': Buffer.from('x'), 'security.selinux': Buffer.from('y') } }, 'tool'],
      [{ name: 'bin/sh', type: 'symlink', linkname: 'su', uid: 5, gid: 6, mtime: 1400000000 }],
      [{ name: 'bin/hard', type: 'hardlink', linkname: 'bin/tool' }],
      [{ name: 'dev/', mode: 0o755 }],
      [{ name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }],
      [{ name: 'dev/loop0', type: 'block', mode: 0o660, gid: 6, devmajor: 7, devminor: 0 }],
      [{ name: 'dev/fifo', type: 'fifo', mode: 0o1620 }],
      [{ name: 'tmp/', mode: 0o1777 }],
    ]);
    assert.equal(res.entries, 10);
    assert.equal(res.size, '#!/bin/sh\n'.length + 'tool'.length);

    const su = lstatSync(join(dest, 'bin/su'));
    assert.equal(su.mode & 0o7777, 0o4755);
    assert.equal(su.mtimeMs, 1500000001500);
    const tool = lstatSync(join(dest, 'bin/tool'));
    assert.equal(tool.mode & 0o7777, 0o2711);
    assert.equal(tool.uid, 1000);
    assert.equal(tool.nlink, 2);
    assert.equal(lstatSync(join(dest, 'bin/hard')).ino, tool.ino);
    assert.deepEqual(native().llistxattr(join(dest, 'bin/tool')).sort(), ['security.capability', 'user.a']);

    const sh = lstatSync(join(dest, 'bin/sh'));
    assert.ok(sh.isSymbolicLink());
    assert.equal(readlinkSync(join(dest, 'bin/sh')), 'su');
    assert.equal(sh.uid, 5);
    assert.equal(sh.gid, 6);
    assert.equal(sh.mtimeMs, 1400000000000);

    const bin = lstatSync(join(dest, 'bin'));
    assert.equal(bin.mode & 0o7777, 0o750);
    assert.equal(bin.uid, 2);
    assert.equal(bin.mtimeMs, 1500000000000, 'directory mtime is set after its contents');

    const devNull = lstatSync(join(dest, 'dev/null'));
    assert.ok(devNull.isCharacterDevice());
    assert.deepEqual(splitDev(devNull.rdev), { major: 1, minor: 3 });
    assert.equal(devNull.mode & 0o7777, 0o666);
    assert.ok(lstatSync(join(dest, 'dev/loop0')).isBlockDevice());
    assert.deepEqual(splitDev(lstatSync(join(dest, 'dev/loop0')).rdev), { major: 7, minor: 0 });
    assert.ok(lstatSync(join(dest, 'dev/fifo')).isFIFO());
    assert.equal(lstatSync(join(dest, 'dev/fifo')).mode & 0o7777, 0o1620);
    assert.equal(lstatSync(join(dest, 'tmp')).mode & 0o7777, 0o1777);
  });

  it('reads gzip layers and reports the diff id of the uncompressed tar', async () => {
    const tar = await tarOf([[{ name: 'a.txt' }, 'hello']]);
    const res = await applyLayer(once(gzipSync(tar)), dest);
    assert.equal(res.diffId, sha256(tar));
    assert.equal(readFileSync(join(dest, 'a.txt'), 'utf8'), 'hello');
  });

  it('turns whiteouts into 0/0 character devices and opaque markers into an xattr', async () => {
    await apply(dest, [
      [{ name: 'etc/' }],
      [{ name: 'etc/.wh.passwd' }],
      [{ name: 'etc/gone' }, 'x'],
      [{ name: 'etc/.wh.gone' }], // added then deleted in the same layer
      [{ name: 'var/' }],
      [{ name: 'var/.wh..wh..opq' }],
      [{ name: 'var/kept' }, 'k'],
      [{ name: 'usr/lib/.wh..wh..opq' }], // opaque marker with no directory entry
    ]);
    assert.ok(isWhiteoutAt(join(dest, 'etc/passwd')));
    assert.ok(isWhiteoutAt(join(dest, 'etc/gone')));
    assert.ok(!existsSync(join(dest, 'etc/.wh.passwd')));
    assert.equal(opaque(join(dest, 'var')), 'y');
    assert.equal(readFileSync(join(dest, 'var/kept'), 'utf8'), 'k', 'same-layer content of an opaque dir stays');
    assert.equal(opaque(join(dest, 'usr/lib')), 'y');
    assert.deepEqual(tree(dest), ['etc', 'etc/gone', 'etc/passwd', 'usr', 'usr/lib', 'var', 'var/kept']);
  });

  it('makes a directory deleted and recreated in one layer opaque', async () => {
    await apply(dest, [[{ name: '.wh.a' }], [{ name: 'a/' }], [{ name: '.wh.b' }], [{ name: 'b/c' }, 'c']]);
    assert.ok(lstatSync(join(dest, 'a')).isDirectory());
    assert.equal(opaque(join(dest, 'a')), 'y');
    assert.equal(opaque(join(dest, 'b')), 'y');
    assert.equal(readFileSync(join(dest, 'b/c'), 'utf8'), 'c');
  });

  it('replaces entries of another type and keeps an existing directory\'s contents', async () => {
    await apply(dest, [
      [{ name: 'd/' }],
      [{ name: 'd/inner' }, 'i'],
      [{ name: 'f' }, 'file'],
      [{ name: 'l', type: 'symlink', linkname: 'f' }],
      [{ name: 'keep/' }],
      [{ name: 'keep/child' }, 'c'],
    ]);
    await apply(dest, [
      [{ name: 'd' }, 'now a file'],
      [{ name: 'f/' }],
      [{ name: 'l' }, 'was a symlink'],
      [{ name: 'keep/', mode: 0o700, uid: 7 }],
    ]);
    assert.equal(readFileSync(join(dest, 'd'), 'utf8'), 'now a file');
    assert.ok(lstatSync(join(dest, 'f')).isDirectory());
    assert.ok(lstatSync(join(dest, 'l')).isFile());
    assert.equal(readFileSync(join(dest, 'keep/child'), 'utf8'), 'c');
    assert.equal(lstatSync(join(dest, 'keep')).mode & 0o7777, 0o700);
    assert.equal(lstatSync(join(dest, 'keep')).uid, 7);
  });

  it('strips leading "/" and "./" and resolves harmless ".."', async () => {
    await apply(dest, [[{ name: '/abs/file' }, 'a'], [{ name: './dot/file' }, 'd'], [{ name: 'x/../y/file' }, 'y'], [{ name: './' , mode: 0o711 }]]);
    assert.equal(readFileSync(join(dest, 'abs/file'), 'utf8'), 'a');
    assert.equal(readFileSync(join(dest, 'dot/file'), 'utf8'), 'd');
    assert.equal(readFileSync(join(dest, 'y/file'), 'utf8'), 'y');
    assert.ok(!existsSync(join(dest, 'x')));
    assert.equal(lstatSync(dest).mode & 0o7777, 0o711, 'the root entry sets the root\'s metadata');
  });

  describe('hostile layers', () => {
    it('rejects names that climb out with ..', async () => {
      for (const name of ['../outside/pwned', '../../etc/passwd', 'a/../../outside/pwned', '..']) {
        await rejectsCorrupt(apply(dest, [[{ name }, 'x']]), new RegExp(`layer entry "${name.replace(/\./g, '\\.')}" escapes the root`));
      }
      await rejectsCorrupt(apply(dest, [[{ name: '../dev0', type: 'char', devmajor: 1, devminor: 3 }]]), /escapes the root/);
      await rejectsCorrupt(apply(dest, [[{ name: '../.wh.secret' }]]), /escapes the root/);
      outsideUntouched();
    });

    it('never writes through a symlink to outside, whatever it points at', async () => {
      const marker = `berth-pwned-${randomBytes(6).toString('hex')}`;
      await apply(dest, [
        [{ name: 'abs', type: 'symlink', linkname: outside }],
        [{ name: 'rel', type: 'symlink', linkname: '../../../../../../..' + outside }],
        [{ name: 'up', type: 'symlink', linkname: '../..' }],
        [{ name: 'slash', type: 'symlink', linkname: '/' }],
        [{ name: 'chain1', type: 'symlink', linkname: 'chain2/x/..' }],
        [{ name: 'chain2', type: 'symlink', linkname: 'up/outside' }],
        [{ name: 'abs/pwned' }, 'x'],
        [{ name: 'rel/pwned' }, 'x'],
        [{ name: 'up/outside/pwned' }, 'x'],
        [{ name: `slash/tmp/${marker}` }, 'x'],
        [{ name: 'chain1/pwned2' }, 'x'],
        [{ name: 'abs/.wh.secret' }],
        [{ name: 'abs/.wh..wh..opq' }],
        [{ name: 'abs/', mode: 0o700 }], // a dir entry replaces the symlink itself
      ]);
      outsideUntouched();
      assert.ok(!existsSync(join('/tmp', marker)));
      // the writes landed inside dest, where a chroot would have put them
      assert.equal(readFileSync(join(dest, outside, 'pwned'), 'utf8'), 'x');
      assert.equal(readFileSync(join(dest, 'outside', 'pwned'), 'utf8'), 'x');
      assert.equal(readFileSync(join(dest, 'tmp', marker), 'utf8'), 'x');
      assert.equal(readFileSync(join(dest, 'outside', 'pwned2'), 'utf8'), 'x');
      assert.ok(isWhiteoutAt(join(dest, outside, 'secret')));
      assert.ok(lstatSync(join(dest, 'abs')).isDirectory());
      assert.equal(lstatSync(join(dest, 'abs')).mode & 0o7777, 0o700);
    });

    it('replaces a symlink named like a later file instead of writing through it', async () => {
      await apply(dest, [
        [{ name: 'f', type: 'symlink', linkname: join(outside, 'secret') }],
        [{ name: 'f' }, 'overwritten?'],
        [{ name: 'g', type: 'symlink', linkname: join(outside, 'secret') }],
        [{ name: 'g', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 }],
      ]);
      outsideUntouched();
      assert.equal(readFileSync(join(dest, 'f'), 'utf8'), 'overwritten?');
      assert.ok(lstatSync(join(dest, 'g')).isCharacterDevice());
    });

    it('checks hardlink targets', async () => {
      await rejectsCorrupt(apply(dest, [[{ name: 'h', type: 'hardlink', linkname: '../outside/secret' }]]), /layer entry "h": hardlink target "\.\.\/outside\/secret" escapes the root/);
      await rejectsCorrupt(apply(dest, [[{ name: 'h', type: 'hardlink', linkname: join(outside, 'secret') }]]), /does not exist in the layer/);
      await rejectsCorrupt(apply(dest, [[{ name: 'h', type: 'hardlink', linkname: 'missing' }]]), /does not exist in the layer/);
      await rejectsCorrupt(apply(dest, [[{ name: 'dir/' }], [{ name: 'h', type: 'hardlink', linkname: 'dir' }]]), /is a directory/);
      // through a symlinked directory: resolved inside dest, where there is no such file
      await rejectsCorrupt(
        apply(dest, [[{ name: 'o', type: 'symlink', linkname: outside }], [{ name: 'h', type: 'hardlink', linkname: 'o/secret' }]]),
        /does not exist in the layer/,
      );
      // to a symlink pointing outside: links the symlink itself
      await apply(dest, [[{ name: 's', type: 'symlink', linkname: join(outside, 'secret') }], [{ name: 'h2', type: 'hardlink', linkname: 's' }]]);
      assert.ok(lstatSync(join(dest, 'h2')).isSymbolicLink());
      assert.equal(lstatSync(join(dest, 'h2')).ino, lstatSync(join(dest, 's')).ino);
      outsideUntouched();
    });

    it('rejects invalid whiteouts, a non-directory root and files used as directories', async () => {
      await rejectsCorrupt(apply(dest, [[{ name: 'a/.wh.' }]]), /layer entry "a\/\.wh\." is an invalid whiteout/);
      await rejectsCorrupt(apply(dest, [[{ name: './' , type: 'file' }, '']]), /replaces the root/);
      await rejectsCorrupt(apply(dest, [[{ name: 'f' }, 'x'], [{ name: 'f/g' }, 'y']]), /"f" is not a directory/);
      await rejectsCorrupt(
        apply(dest, [[{ name: 'loop', type: 'symlink', linkname: 'loop' }], [{ name: 'loop/x' }, 'x']]),
        /too many levels of symbolic links/,
      );
      await rejectsCorrupt(apply(dest, [[{ name: `d/${'n'.repeat(300)}` }, 'x']]), /layer entry "d\/n+": .*name too long/);
      outsideUntouched();
    });

    it('rejects corrupt archives', async () => {
      const tar = await tarOf([[{ name: 'a' }, 'x'.repeat(1000)]]);
      await rejectsCorrupt(applyLayer(once(tar.subarray(0, 700)), dest), /truncated/);
      await rejectsCorrupt(applyLayer(once(Buffer.alloc(2048, 0x41)), dest), /invalid tar header at offset 0/);
    });
  });

  describe('with lower layers', () => {
    it('gives implied parent directories the metadata they have below', async () => {
      const lower = join(base, 'lower');
      mkdirSync(join(lower, 'srv/data'), { recursive: true });
      chownSync(join(lower, 'srv/data'), 33, 33);
      chmodSync(join(lower, 'srv/data'), 0o710);
      utimesSync(join(lower, 'srv/data'), 1234567890, 1234567890);
      await apply(dest, [[{ name: 'srv/data/new' }, 'n'], [{ name: 'other/new' }, 'o']], { lowerDirs: [lower] });
      const st = lstatSync(join(dest, 'srv/data'));
      assert.equal(st.uid, 33);
      assert.equal(st.mode & 0o7777, 0o710);
      assert.equal(st.mtimeMs, 1234567890000);
      assert.equal(lstatSync(join(dest, 'other')).mode & 0o7777, 0o755);
    });

    it('copies up a lower file that a hardlink points to', async () => {
      const lower = join(base, 'lower');
      mkdirSync(join(lower, 'bin'), { recursive: true });
      writeFileSync(join(lower, 'bin/busybox'), 'bb', { mode: 0o755 });
      await apply(dest, [[{ name: 'bin/sh', type: 'hardlink', linkname: 'bin/busybox' }]], { lowerDirs: [lower] });
      assert.equal(readFileSync(join(dest, 'bin/sh'), 'utf8'), 'bb');
      assert.equal(lstatSync(join(dest, 'bin/sh')).ino, lstatSync(join(dest, 'bin/busybox')).ino);
      assert.equal(lstatSync(join(dest, 'bin/busybox')).mode & 0o7777, 0o755);
      assert.equal(lstatSync(join(lower, 'bin/busybox')).nlink, 1);
    });

    it('does not copy up through a symlink in a lower', async () => {
      const lower = join(base, 'lower');
      mkdirSync(lower);
      symlinkSync(outside, join(lower, 'o'));
      await rejectsCorrupt(
        apply(dest, [[{ name: 'h', type: 'hardlink', linkname: 'o/secret' }]], { lowerDirs: [lower] }),
        /does not exist in the layer/,
      );
      outsideUntouched();
    });
  });
});

describe('splitEntryName', () => {
  it('normalises lexically and refuses to climb above the root', () => {
    assert.deepEqual(splitEntryName('./a//b/./c/'), ['a', 'b', 'c']);
    assert.deepEqual(splitEntryName('/etc/passwd'), ['etc', 'passwd']);
    assert.deepEqual(splitEntryName('a/../b'), ['b']);
    assert.deepEqual(splitEntryName('./'), []);
    assert.equal(splitEntryName('a/../../b'), undefined);
    assert.equal(splitEntryName('..'), undefined);
  });
});

describe('lookupLower', { skip }, () => {
  it('follows overlay rules: whiteouts and opaque dirs hide what is below', () => {
    const base = mkdtempSync(join(tmpdir(), 'berth-lower-'));
    try {
      const top = join(base, 'top');
      const bottom = join(base, 'bottom');
      for (const d of ['a', 'b', 'c']) mkdirSync(join(bottom, d), { recursive: true });
      for (const f of ['a/x', 'b/y', 'c/z']) writeFileSync(join(bottom, f), f);
      mkdirSync(join(top, 'b'), { recursive: true });
      native().mknod(join(top, 'a'), 0o020000, 0, 0); // whiteout of a
      native().lsetxattr(join(top, 'b'), 'trusted.overlay.opaque', Buffer.from('y'));
      writeFileSync(join(top, 'c2'), '');
      assert.equal(lookupLower([top, bottom], ['a', 'x']), undefined);
      assert.equal(lookupLower([top, bottom], ['a']), undefined);
      assert.equal(lookupLower([top, bottom], ['b', 'y']), undefined);
      assert.equal(lookupLower([top, bottom], ['b'])?.path, join(top, 'b'));
      assert.equal(lookupLower([top, bottom], ['c', 'z'])?.path, join(bottom, 'c/z'));
      assert.equal(lookupLower([bottom], ['a', 'x'])?.path, join(bottom, 'a/x'));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('writeLayerTar / writeTreeTar round trips', { skip }, () => {
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'berth-changes-'));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  /** A hand-made overlay upper dir: what the kernel would leave after some changes. */
  function makeUpper(): string {
    const up = join(base, 'upper');
    mkdirSync(join(up, 'etc'), { recursive: true });
    mkdirSync(join(up, 'opt/app/sub'), { recursive: true });
    mkdirSync(join(up, 'a-b'));
    writeFileSync(join(up, 'etc/hosts'), 'hosts\n', { mode: 0o644 });
    linkSync(join(up, 'etc/hosts'), join(up, 'etc/hosts.hard'));
    symlinkSync('hosts', join(up, 'etc/link'));
    writeFileSync(join(up, 'etc/su'), 'su', { mode: 0o755 });
    chownSync(join(up, 'etc/su'), 10, 20);
    chmodSync(join(up, 'etc/su'), 0o4755); // after chown, which clears setuid
    native().lsetxattr(join(up, 'etc/su'), 'user.note', Buffer.from('hi'));
    native().lsetxattr(join(up, 'etc/su'), 'trusted.overlay.origin', Buffer.from('junk'));
    native().mknod(join(up, 'etc/passwd'), 0o020000, 0, 0); // whiteout
    utimesSync(join(up, 'etc/passwd'), 1_000_000_000, 1_000_000_000); // applied whiteouts keep the layer's time
    native().mknod(join(up, 'etc/fifo'), 0o010644, 0, 0);
    native().mknod(join(up, 'etc/null'), 0o020666, 1, 3);
    native().lsetxattr(join(up, 'opt/app'), 'trusted.overlay.opaque', Buffer.from('y'));
    writeFileSync(join(up, 'opt/app/sub/f'), 'f');
    for (const p of ['etc/hosts', 'etc/su', 'etc/fifo', 'etc/null', 'opt/app/sub/f', 'opt/app/sub', 'opt/app', 'opt', 'etc', 'a-b']) {
      utimesSync(join(up, p), 1600000000, 1600000000.7);
    }
    lutimesSync(join(up, 'etc/link'), 1600000000, 1600000000);
    return up;
  }

  async function toBuffer(fn: (out: PassThrough) => Promise<{ digest: string; size: number }>) {
    const out = new PassThrough();
    const parts: Buffer[] = [];
    out.on('data', (c: Buffer) => parts.push(c));
    const res = await fn(out);
    const buf = Buffer.concat(parts);
    assert.equal(res.size, buf.length);
    assert.equal(res.digest, sha256(buf));
    return buf;
  }

  async function entriesOf(buf: Buffer): Promise<TarEntry[]> {
    const out: TarEntry[] = [];
    for await (const { entry } of readTar(once(buf))) out.push(entry);
    return out;
  }

  it('writes whiteouts, opaque markers and hardlinks in parents-first byte order', async () => {
    const up = makeUpper();
    const tar = await toBuffer((out) => writeLayerTar(up, [], out));
    const entries = await entriesOf(tar);
    assert.deepEqual(
      entries.map((e) => [e.name, e.type]),
      [
        ['a-b/', 'dir'],
        ['etc/', 'dir'],
        ['etc/.wh.passwd', 'file'],
        ['etc/fifo', 'fifo'],
        ['etc/hosts', 'file'],
        ['etc/hosts.hard', 'hardlink'],
        ['etc/link', 'symlink'],
        ['etc/null', 'char'],
        ['etc/su', 'file'],
        ['opt/', 'dir'],
        ['opt/app/', 'dir'],
        ['opt/app/.wh..wh..opq', 'file'],
        ['opt/app/sub/', 'dir'],
        ['opt/app/sub/f', 'file'],
      ],
    );
    const by = new Map(entries.map((e) => [e.name, e]));
    assert.equal(by.get('etc/.wh.passwd')!.mode, 0);
    assert.equal(by.get('etc/.wh.passwd')!.size, 0);
    assert.equal(by.get('etc/hosts.hard')!.linkname, 'etc/hosts');
    assert.equal(by.get('etc/link')!.linkname, 'hosts');
    assert.deepEqual([by.get('etc/null')!.devmajor, by.get('etc/null')!.devminor], [1, 3]);
    const su = by.get('etc/su')!;
    assert.deepEqual([su.mode, su.uid, su.gid, su.mtime], [0o4755, 10, 20, 1600000000]);
    assert.deepEqual(su.xattrs, { 'user.note': Buffer.from('hi') });
    assert.equal(by.get('etc/hosts')!.mtime, 1600000000, 'whole seconds');
  });

  it('is deterministic and clamps mtimes to SOURCE_DATE_EPOCH', async () => {
    const up = makeUpper();
    const a = await toBuffer((out) => writeLayerTar(up, [], out));
    const b = await toBuffer((out) => writeLayerTar(up, [], out));
    assert.deepEqual(a, b);
    const c = await toBuffer((out) => writeLayerTar(up, [], out, { sourceDateEpoch: 1000 }));
    assert.ok((await entriesOf(c)).every((e) => e.mtime <= 1000));
    assert.ok((await entriesOf(a)).some((e) => e.mtime > 1000));
  });

  it('reproduces the upper dir when applied', async () => {
    const up = makeUpper();
    const tar = await toBuffer((out) => writeLayerTar(up, [], out));
    const dest = join(base, 'applied');
    const res = await applyLayer(once(tar), dest);
    assert.equal(res.diffId, sha256(tar));
    assert.deepEqual(tree(dest), tree(up));
    for (const p of tree(up)) {
      const [x, y] = [lstatSync(join(up, p)), lstatSync(join(dest, p))];
      assert.deepEqual(
        [y.mode, y.uid, y.gid, y.rdev, Math.floor(y.mtimeMs / 1000)],
        [x.mode, x.uid, x.gid, x.rdev, Math.floor(x.mtimeMs / 1000)],
        p,
      );
      if (x.isFile()) assert.deepEqual(readFileSync(join(dest, p)), readFileSync(join(up, p)), p);
    }
    assert.equal(opaque(join(dest, 'opt/app')), 'y');
    assert.equal(lstatSync(join(dest, 'etc/hosts')).ino, lstatSync(join(dest, 'etc/hosts.hard')).ino);
    assert.equal(native().lgetxattr(join(dest, 'etc/su'), 'user.note')?.toString(), 'hi');
    assert.equal(native().lgetxattr(join(dest, 'etc/su'), 'trusted.overlay.origin'), null);
  });

  it('archives a plain tree with a prefix, the root, or a single file', async () => {
    const up = makeUpper();
    const tar = await toBuffer((out) => writeTreeTar(join(up, 'etc'), out, { prefix: 'etc', includeRoot: true }));
    const names = (await entriesOf(tar)).map((e) => `${e.name}:${e.type}`);
    assert.deepEqual(names, [
      'etc/:dir',
      'etc/fifo:fifo',
      'etc/hosts:file',
      'etc/hosts.hard:hardlink',
      'etc/link:symlink',
      'etc/null:char',
      'etc/passwd:char', // no overlay meaning in a plain tree
      'etc/su:file',
    ]);
    const plain = await toBuffer((out) => writeTreeTar(join(up, 'opt'), out));
    assert.deepEqual((await entriesOf(plain)).map((e) => e.name), ['app/', 'app/sub/', 'app/sub/f']);
    const single = await toBuffer((out) => writeTreeTar(join(up, 'etc/su'), out));
    const [only, ...rest] = await entriesOf(single);
    assert.equal(rest.length, 0);
    assert.deepEqual([only!.name, only!.type, only!.size], ['su', 'file', 2]);
  });

  it('lists changes like docker diff', async () => {
    const lower = join(base, 'lower');
    mkdirSync(join(lower, 'etc'), { recursive: true });
    mkdirSync(join(lower, 'opt/app'), { recursive: true });
    mkdirSync(join(lower, 'a-b'));
    writeFileSync(join(lower, 'etc/hosts'), 'old');
    writeFileSync(join(lower, 'etc/passwd'), 'root');
    const up = makeUpper();
    // a-b is in the upper only as a copied-up parent: same metadata as below
    chmodSync(join(up, 'a-b'), lstatSync(join(lower, 'a-b')).mode & 0o7777);
    utimesSync(join(lower, 'a-b'), 1600000000, 1600000000.7);
    assert.deepEqual(await listChanges(up, [lower]), [
      { kind: 'C', path: '/etc' },
      { kind: 'A', path: '/etc/fifo' },
      { kind: 'C', path: '/etc/hosts' },
      { kind: 'A', path: '/etc/hosts.hard' },
      { kind: 'A', path: '/etc/link' },
      { kind: 'A', path: '/etc/null' },
      { kind: 'D', path: '/etc/passwd' },
      { kind: 'A', path: '/etc/su' },
      { kind: 'C', path: '/opt' },
      { kind: 'C', path: '/opt/app' },
      { kind: 'A', path: '/opt/app/sub' },
      { kind: 'A', path: '/opt/app/sub/f' },
    ]);
  });
});
