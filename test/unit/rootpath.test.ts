import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_SYMLINK_HOPS, resolveInRoot, walkPath, type HostLookup } from '../../src/storage/rootpath.js';
import { resolveContainerPath, type CpMount } from '../../src/engine/filesystem.js';

let dir: string;
let root: string;
let vol: string;

// root:  /etc/passwd, /abs -> /etc, /rel -> ../../etc, /up -> ../../../.., /loop -> loop, /a -> b, /b -> a,
//        /dangling -> /nowhere/x, /var/run -> /run, /run/, /tovol -> /data/sub, /data (a file the volume hides)
// vol (mounted at /data): sub/f, out -> /etc, rel -> ../../../.., self -> .
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rootpath-'));
  root = join(dir, 'root');
  vol = join(dir, 'vol');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'var'));
  mkdirSync(join(root, 'run'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(root, 'data'), 'hidden');
  symlinkSync('/etc', join(root, 'abs'));
  symlinkSync('../../etc', join(root, 'rel'));
  symlinkSync('../../../..', join(root, 'up'));
  symlinkSync('loop', join(root, 'loop'));
  symlinkSync('b', join(root, 'a'));
  symlinkSync('a', join(root, 'b'));
  symlinkSync('/nowhere/x', join(root, 'dangling'));
  symlinkSync('/run', join(root, 'var/run'));
  symlinkSync('/data/sub', join(root, 'tovol'));
  mkdirSync(join(vol, 'sub'), { recursive: true });
  writeFileSync(join(vol, 'sub/f'), 'f');
  symlinkSync('/etc', join(vol, 'out'));
  symlinkSync('../../../..', join(vol, 'rel'));
  symlinkSync('.', join(vol, 'self'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('walkPath', () => {
  const plain: HostLookup = (p) => join(root, p);

  it('normalizes and keeps missing components', () => {
    assert.equal(walkPath('', plain), '/');
    assert.equal(walkPath('a/../../x/./y/', () => undefined), '/x/y');
    assert.equal(walkPath('/no/such/file', plain), '/no/such/file');
  });

  it('follows absolute and relative links, clamping ".." at "/"', () => {
    assert.equal(walkPath('/abs/passwd', plain), '/etc/passwd');
    assert.equal(walkPath('/rel/passwd', plain), '/etc/passwd');
    assert.equal(walkPath('/up/etc', plain), '/etc');
    assert.equal(walkPath('/dangling', plain), '/nowhere/x');
    assert.equal(walkPath('/var/run/x', plain), '/run/x');
  });

  it('follows the final link only with followFinal', () => {
    assert.equal(walkPath('/abs', plain, false), '/abs');
    assert.equal(walkPath('/abs', plain, true), '/etc');
    assert.equal(walkPath('/abs/', plain, false), '/abs'); // a trailing slash is normalized away, as before
    assert.equal(walkPath('/var/run', plain, false), '/var/run');
  });

  it('asks the lookup only for resolved paths, and not for a final component it will not follow', () => {
    const asked: string[] = [];
    assert.equal(walkPath('/rel/x', (p) => (asked.push(p), join(root, p)), false), '/etc/x');
    assert.deepEqual(asked, ['/rel', '/etc']);
  });

  it('does not read a path the lookup maps to undefined as a link', () => {
    assert.equal(walkPath('/abs/passwd', (p) => (p === '/abs' ? undefined : join(root, p))), '/abs/passwd');
  });

  it('fails with ELOOP after MAX_SYMLINK_HOPS links', () => {
    assert.equal(MAX_SYMLINK_HOPS, 255);
    for (const p of ['/loop', '/a/x', '/b']) {
      assert.throws(() => walkPath(p, plain), (e: NodeJS.ErrnoException) => e.code === 'ELOOP' && e.message === `too many levels of symbolic links: ${p}`);
    }
    // a loop not followed is no error
    assert.equal(walkPath('/loop', plain, false), '/loop');
  });

  it('counts hops across the whole lookup: a chain of exactly the limit resolves, one more fails', () => {
    const chain = join(dir, 'chain');
    mkdirSync(chain);
    try {
      for (let i = 0; i < MAX_SYMLINK_HOPS + 1; i++) symlinkSync(`l${i + 1}`, join(chain, `l${i}`));
      const lookup: HostLookup = (p) => join(chain, p);
      assert.equal(walkPath('/l1', lookup), `/l${MAX_SYMLINK_HOPS + 1}`);
      assert.throws(() => walkPath('/l0', lookup), { code: 'ELOOP' });
    } finally {
      rmSync(chain, { recursive: true, force: true });
    }
  });
});

describe('resolveInRoot', () => {
  it('maps the resolved path into the root and never out of it', () => {
    assert.equal(resolveInRoot(root, '/'), root);
    assert.equal(resolveInRoot(root, ''), root);
    assert.equal(resolveInRoot(root + '/', '/'), root + '/'); // the root as given, as before
    assert.equal(resolveInRoot(root, '/abs/passwd'), join(root, 'etc/passwd'));
    assert.equal(resolveInRoot(root, 'rel/passwd'), join(root, 'etc/passwd'));
    assert.equal(resolveInRoot(root, '/up'), root);
    assert.equal(resolveInRoot(root, '/../../..'), root);
    assert.equal(resolveInRoot(root, '/dangling'), join(root, 'nowhere/x'));
    assert.equal(resolveInRoot(root, '/abs', false), join(root, 'abs'));
  });

  it('throws ELOOP for a loop', () => {
    assert.throws(() => resolveInRoot(root, '/loop/x'), { code: 'ELOOP', message: 'too many levels of symbolic links: /loop/x' });
  });
});

describe('resolveContainerPath', () => {
  const mounts = (): CpMount[] => [{ destination: '/data', source: vol, rw: true }];

  it('with no mounts agrees with resolveInRoot', () => {
    for (const p of ['/', '/abs/passwd', '/rel', '/up/x', '/dangling', '/var/run/y', '/tovol/f']) {
      for (const follow of [true, false]) {
        const r = resolveContainerPath(root, [], p, follow);
        assert.equal(join(r.host), resolveInRoot(root, p, follow), p);
        assert.equal(r.mount, undefined);
      }
    }
  });

  it('resolves into a mount, out of it into the root, and clamps ".." at "/"', () => {
    const m = mounts();
    assert.deepEqual(resolveContainerPath(root, m, '/tovol/f'), { path: '/data/sub/f', host: join(vol, 'sub/f'), mount: m[0] });
    assert.deepEqual(resolveContainerPath(root, m, '/data/out/passwd'), { path: '/etc/passwd', host: join(root, 'etc/passwd'), mount: undefined });
    assert.deepEqual(resolveContainerPath(root, m, '/data/rel/etc'), { path: '/etc', host: join(root, 'etc'), mount: undefined });
    assert.deepEqual(resolveContainerPath(root, m, '/data/self/self/sub'), { path: '/data/sub', host: join(vol, 'sub'), mount: m[0] });
    assert.deepEqual(resolveContainerPath(root, m, '/data/out', false), { path: '/data/out', host: join(vol, 'out'), mount: m[0] });
  });

  it('does not read a mount point as a symlink, neither of the root nor of the host', () => {
    const source = join(dir, 'vol-link'); // a bind source the kernel resolved when mounting
    symlinkSync(vol, source);
    const m: CpMount[] = [{ destination: '/abs', source, rw: false }];
    assert.deepEqual(resolveContainerPath(root, m, '/abs/sub'), { path: '/abs/sub', host: join(source, 'sub'), mount: m[0] });
    assert.deepEqual(resolveContainerPath(root, m, '/abs'), { path: '/abs', host: source, mount: m[0] });
  });

  it('throws ELOOP for a loop', () => {
    assert.throws(() => resolveContainerPath(root, mounts(), '/b'), { code: 'ELOOP', message: 'too many levels of symbolic links: /b' });
  });
});
