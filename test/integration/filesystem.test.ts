import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Berth, BERTH, type Result } from '../lib/berth.js';
import { tempDir } from '../lib/busybox-rootfs.js';
import { TarWriter } from '../../src/image/tar.js';

// A container's filesystem through the real berth CLI: diff, commit, export, cp (also against hostile symlinks),
// volumes, and how ps and inspect show containers.

function expectFailure(r: Result, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

/** Names in a tar (as GNU tar lists them). */
function tarNames(tar: Buffer): string[] {
  const r = spawnSync('tar', ['-t'], { input: tar, encoding: 'buffer' });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString().split('\n').filter(Boolean);
}

function tarFile(tar: Buffer, name: string): string {
  const r = spawnSync('tar', ['-xO', name], { input: tar });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString();
}

/** berth's stdout as bytes (for tar output). */
function raw(b: Berth, args: string[]): Buffer {
  const r = spawnSync(BERTH, ['--root', b.root, ...args], { maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

const CHANGES = 'echo hi > /etc/new; rm /etc/group; echo extra >> /etc/passwd; mkdir -p /data/sub; echo d > /data/sub/f; rm -r /home/app; ln -s /etc/new /link';

describe('container filesystem', () => {
  const b = new Berth();
  const dir = tempDir('berth-fs-');
  before(() => {
    b.importBusybox();
  });
  afterEach(() => {
    const ids = b.run(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean);
    if (ids.length) b.run(['rm', '-f', '-v', ...ids]);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(b.destroy(), [], 'berth left kernel state behind');
  });

  it('lists changes with diff: A, C and D, without the mount points berth itself adds', () => {
    const fresh = b.ok(['create', 'busybox', 'true']);
    assert.equal(b.ok(['diff', fresh]), '', 'nothing changed yet');
    b.ok(['start', '-a', fresh]);
    assert.equal(b.ok(['diff', fresh]), '', 'running it changes nothing either (hostname, hosts, resolv.conf are not changes)');
    const id = b.ok(['run', '-d', '--name', 'changer', 'busybox', 'sh', '-c', `${CHANGES}; touch /tmp/ready; sleep 60`]);
    for (let i = 0; i < 100 && b.run(['exec', id, 'test', '-e', '/tmp/ready']).code !== 0; i++) spawnSync('sleep', ['0.05']);
    const expected = ['A /data', 'A /data/sub', 'A /data/sub/f', 'C /etc', 'D /etc/group', 'A /etc/new', 'C /etc/passwd', 'C /home', 'D /home/app', 'A /link', 'C /tmp', 'A /tmp/ready'];
    assert.deepEqual(b.ok(['diff', 'changer']).split('\n'), expected, 'while running');
    b.ok(['stop', '-t', '0', 'changer']);
    assert.deepEqual(b.ok(['container', 'diff', id]).split('\n'), expected, 'stopped');
    expectFailure(b.run(['diff', 'nosuch']), 1, /No such container: nosuch/);
  });

  it('commits a container into an image with --change, -m and -a, which then runs', () => {
    const id = b.ok(['create', '--name', 'tocommit', '-e', 'FROM_CTR=1', 'busybox', 'sh', '-c', CHANGES]);
    b.ok(['start', '-a', id]);
    const img = b.ok(['commit', '-m', 'my change', '-a', 'Jane <jane@example.com>', '-c', 'CMD ["cat", "/etc/new"]', '-c', 'ENV ADDED=yes', 'tocommit', 'committed:1']);
    assert.match(img, /^sha256:[a-f0-9]{64}$/);
    assert.equal(b.ok(['run', '--rm', 'committed:1']), 'hi');
    const ins = JSON.parse(b.ok(['image', 'inspect', 'committed:1']))[0];
    assert.equal(ins.Id, img);
    assert.equal(ins.Comment, 'my change');
    assert.equal(ins.Author, 'Jane <jane@example.com>');
    assert.deepEqual(ins.Config.Cmd, ['cat', '/etc/new']);
    assert.ok(ins.Config.Env.includes('FROM_CTR=1') && ins.Config.Env.includes('ADDED=yes'));
    assert.equal(ins.RootFS.Layers.length, 2);
    const history = b.ok(['history', '--format', '{{.Comment}}|{{.CreatedBy}}', 'committed:1']).split('\n');
    assert.equal(history.length, 2);
    assert.match(history[0]!, /^my change\|sh -c echo hi/);
    // the image holds the changes
    const check = 'test ! -e /etc/group && test ! -e /home/app && cat /data/sub/f && tail -n1 /etc/passwd && readlink /link';
    assert.equal(b.ok(['run', '--rm', 'committed:1', 'sh', '-c', check]), 'd\nextra\n/etc/new');
    // and not the runtime's mount points: the committed layer has no /etc/hostname, /etc/hosts or /etc/resolv.conf
    const top = join(b.root, 'layers', ins.RootFS.Layers[1].slice(7), 'diff');
    assert.deepEqual(readdirSync(join(top, 'etc')).sort(), ['group', 'new', 'passwd']);
    assert.ok(lstatSync(join(top, 'etc', 'group')).isCharacterDevice(), 'the deletion is a whiteout');
    // a running container is committed while paused, and goes on running; without a name the image is dangling
    const running = b.ok(['run', '-d', 'busybox', 'sh', '-c', 'echo live > /live; sleep 60']);
    for (let i = 0; i < 100 && b.run(['exec', running, 'test', '-e', '/live']).code !== 0; i++) spawnSync('sleep', ['0.05']);
    const dangling = b.ok(['commit', running]);
    assert.equal(b.ok(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', running]), 'running false');
    assert.equal(b.ok(['images', '--filter', 'dangling=true', '-q', '--no-trunc']), dangling);
    assert.equal(b.ok(['run', '--rm', dangling, 'cat', '/live']), 'live');
    const blobs = () => readdirSync(join(b.root, 'images', 'blobs', 'sha256')).sort();
    const blobsBefore = blobs();
    expectFailure(b.run(['commit', 'nosuch']), 1, /No such container: nosuch/);
    expectFailure(b.run(['commit', '-c', 'FROM x', id, 'x:1']), 1, /from is not a valid change command/);
    expectFailure(b.run(['commit', id, 'UPPER:1']), 1, /invalid reference format/);
    assert.deepEqual(blobs(), blobsBefore, 'a failed commit writes nothing');
    b.ok(['rm', '-f', running]);
    b.ok(['rmi', 'committed:1', dangling]);
  });

  it('exports the merged root filesystem, which imports back and runs', () => {
    const id = b.ok(['create', 'busybox', 'sh', '-c', CHANGES]);
    b.ok(['start', '-a', id]);
    const file = join(dir, 'export.tar');
    b.ok(['export', '-o', file, id]);
    const tar = readFileSync(file);
    assert.deepEqual(raw(b, ['export', id]), tar, 'stdout and -o give the same bytes');
    const names = tarNames(tar);
    for (const n of ['bin/busybox', 'etc/new', 'etc/passwd', 'data/sub/f', 'link']) assert.ok(names.includes(n), `${n} exported`);
    for (const n of ['etc/group', 'home/app/']) assert.ok(!names.includes(n), `${n} was deleted`);
    assert.ok(!names.some((n) => n.includes('.wh.')), 'no whiteouts in an export');
    assert.equal(tarFile(tar, 'etc/new'), 'hi\n');
    const img = b.ok(['import', '-c', 'CMD ["cat", "/data/sub/f"]', file, 'exported:1']);
    assert.equal(b.ok(['run', '--rm', 'exported:1']), 'd');
    assert.equal(b.run(['run', '--rm', 'exported:1', 'test', '-e', '/etc/group']).code, 1);
    // a running container exports too
    const live = b.ok(['run', '-d', 'busybox', 'sh', '-c', 'echo up > /up; sleep 60']);
    for (let i = 0; i < 100 && b.run(['exec', live, 'test', '-e', '/up']).code !== 0; i++) spawnSync('sleep', ['0.05']);
    assert.equal(tarFile(raw(b, ['export', live]), 'up'), 'up\n');
    expectFailure(b.run(['export', '-o', join(dir, 'none.tar'), 'nosuch']), 1, /No such container: nosuch/);
    assert.ok(!existsSync(join(dir, 'none.tar')));
    b.ok(['rmi', img]);
  });

  it('copies into and out of running and stopped containers like docker cp', () => {
    const host = join(dir, 'cp');
    mkdirSync(join(host, 'tree', 'inner'), { recursive: true });
    writeFileSync(join(host, 'file.txt'), 'host file\n');
    writeFileSync(join(host, 'tree', 'top.txt'), 'top\n');
    writeFileSync(join(host, 'tree', 'inner', 'deep.txt'), 'deep\n', { mode: 0o600 });
    const listing = 'cat /tmp/file.txt /tmp/renamed.txt /tmp/tree/top.txt /tmp/tree/inner/deep.txt /tmp/newtree/inner/deep.txt /root/top.txt /root/inner/deep.txt /etc/passwd; stat -c %a /tmp/tree/inner/deep.txt';
    const expected = 'host file\nhost file\ntop\ndeep\ndeep\ntop\ndeep\nhost file\n600';
    const running = b.ok(['run', '-d', '--name', 'cprun', 'busybox', 'sleep', '60']);
    const stopped = b.ok(['create', '--name', 'cpstop', 'busybox', 'sh', '-c', listing]);
    for (const c of ['cprun', 'cpstop']) {
      b.ok(['cp', join(host, 'file.txt'), `${c}:/tmp/`]);
      b.ok(['cp', join(host, 'file.txt'), `${c}:/tmp/renamed.txt`]);
      b.ok(['cp', join(host, 'tree'), `${c}:/tmp/`]);
      b.ok(['cp', join(host, 'tree'), `${c}:/tmp/newtree`]);
      b.ok(['cp', `${join(host, 'tree')}/.`, `${c}:/root`]);
      b.ok(['container', 'cp', join(host, 'file.txt'), `${c}:/etc/passwd`]); // an existing file is replaced
      expectFailure(b.run(['cp', join(host, 'file.txt'), `${c}:/nosuchdir/`]), 1, /Could not find the file \/nosuchdir\//);
      expectFailure(b.run(['cp', join(host, 'missing'), `${c}:/tmp/`]), 1, /no such file or directory/);
      expectFailure(b.run(['cp', join(host, 'file.txt'), `${c}:/nosuchdir/file.txt`]), 1, /Could not find the file \/nosuchdir in container/);
      expectFailure(b.run(['cp', join(host, 'tree'), `${c}:/etc/passwd`]), 1, /cannot copy a directory to a file/);
    }
    assert.equal(b.ok(['exec', running, 'sh', '-c', listing]), expected);
    assert.equal(b.ok(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', running]), 'running false', 'cp paused it only meanwhile');
    assert.equal(b.ok(['start', '-a', stopped]), expected, 'copied into a stopped container');

    // out of the container
    const out = join(dir, 'out');
    mkdirSync(out);
    b.ok(['cp', 'cprun:/tmp/tree', out]);
    assert.equal(readFileSync(join(out, 'tree', 'inner', 'deep.txt'), 'utf8'), 'deep\n');
    assert.equal(lstatSync(join(out, 'tree', 'inner', 'deep.txt')).mode & 0o777, 0o600);
    b.ok(['cp', 'cprun:/tmp/tree/.', join(out, 'contents')]);
    assert.deepEqual(readdirSync(join(out, 'contents')).sort(), ['inner', 'top.txt']);
    b.ok(['cp', 'cpstop:/etc/hostname', join(out, 'h')]); // a stopped container: its own layers only
    b.ok(['cp', 'cprun:/tmp/file.txt', join(out, 'copy.txt')]);
    assert.equal(readFileSync(join(out, 'copy.txt'), 'utf8'), 'host file\n');
    b.ok(['cp', 'cpstop:/tmp/renamed.txt', out]);
    assert.equal(readFileSync(join(out, 'renamed.txt'), 'utf8'), 'host file\n');
    // to stdout as a tar
    const tar = raw(b, ['cp', 'cprun:/tmp/tree', '-']);
    assert.deepEqual(tarNames(tar).sort(), ['tree/', 'tree/inner/', 'tree/inner/deep.txt', 'tree/top.txt']);
    assert.equal(tarFile(tar, 'tree/inner/deep.txt'), 'deep\n');
    assert.deepEqual(tarNames(raw(b, ['cp', 'cpstop:/tmp/file.txt', '-'])), ['file.txt']);
    // from stdin as a tar
    assert.equal(b.run(['cp', '-', 'cprun:/tmp'], { input: tar }).code, 0);
    expectFailure(b.run(['cp', '-', 'cprun:/tmp/file.txt'], { input: tar }), 1, /must be a directory/);
    expectFailure(b.run(['cp', 'cprun:/nosuch', out]), 1, /Could not find the file \/nosuch in container cprun/);
    expectFailure(b.run(['cp', 'nosuchctr:/tmp', out]), 1, /No such container: nosuchctr/);
    expectFailure(b.run(['cp', join(host, 'file.txt'), join(out, 'x')]), 1, /must specify at least one container source/);
  });

  it('never reads or writes outside the container through its symlinks', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'host secret\n');
    const script = `mkdir -p ${outside}; ln -s / /escape; ln -s ${outside} /hostdir; ln -s ${outside}/secret.txt /secretlink; ln -s ../../../../../../.. /up; ln -s /etc/passwd /pw; sleep 60`;
    const id = b.ok(['run', '-d', 'busybox', 'sh', '-c', script]);
    for (let i = 0; i < 100 && b.run(['exec', id, 'test', '-L', '/pw']).code !== 0; i++) spawnSync('sleep', ['0.05']);
    const src = join(dir, 'payload.txt');
    writeFileSync(src, 'payload\n');
    const snapshot = () => readdirSync(outside).sort().map((n) => `${n}:${readFileSync(join(outside, n), 'utf8')}`);
    const hostBefore = snapshot();
    const marker = `berth-cp-${Date.now()}`;

    // writes through symlinks land inside the container, where a chroot would put them
    b.ok(['cp', src, `${id}:/escape/tmp/${marker}`]);
    b.ok(['cp', src, `${id}:/hostdir/pwned.txt`]);
    b.ok(['cp', src, `${id}:/up/tmp/${marker}-up`]);
    b.ok(['cp', src, `${id}:/secretlink`]);
    assert.ok(!existsSync(`/tmp/${marker}`) && !existsSync(`/tmp/${marker}-up`));
    assert.deepEqual(snapshot(), hostBefore, 'the host directory the symlinks name is untouched');
    assert.equal(b.ok(['exec', id, 'cat', `/tmp/${marker}`, `/tmp/${marker}-up`, `${outside}/pwned.txt`, `${outside}/secret.txt`]), 'payload\n'.repeat(4).trim());

    // reads: a symlink is copied as a symlink; followed (-L) or walked through, it resolves inside the container
    const out = join(dir, 'readout');
    mkdirSync(out);
    b.ok(['cp', `${id}:/pw`, join(out, 'pw')]);
    assert.equal(readlinkSync(join(out, 'pw')), '/etc/passwd');
    b.ok(['cp', '-L', `${id}:/pw`, join(out, 'pw-followed')]);
    assert.match(readFileSync(join(out, 'pw-followed'), 'utf8'), /^app:x:1000:1000/m, "the container's passwd, not the host's");
    b.ok(['cp', `${id}:/escape/etc/passwd`, join(out, 'pw-escape')]);
    assert.match(readFileSync(join(out, 'pw-escape'), 'utf8'), /^app:x:1000:1000/m);
    b.ok(['cp', `${id}:/up/etc/passwd`, join(out, 'pw-up')]);
    assert.match(readFileSync(join(out, 'pw-up'), 'utf8'), /^app:x:1000:1000/m);
    b.ok(['cp', '-L', `${id}:/secretlink`, join(out, 'secret')]);
    assert.equal(readFileSync(join(out, 'secret'), 'utf8'), 'payload\n', 'the container file of that name, not the host secret');
    b.ok(['exec', id, 'rm', `${outside}/secret.txt`]);
    expectFailure(b.run(['cp', '-L', `${id}:/secretlink`, join(out, 'secret2')]), 1, /Could not find the file \/secretlink/);
    expectFailure(b.run(['cp', `${id}:/hostdir/secret.txt`, join(out, 'secret3')]), 1, /Could not find the file/);
    assert.ok(!existsSync(join(out, 'secret2')) && !existsSync(join(out, 'secret3')));

    // a hostile tar on stdin cannot climb out either
    const w = new TarWriter();
    const chunks: Buffer[] = [];
    w.readable!.on('data', (c: Buffer) => chunks.push(c));
    await w.add({ name: `${'../'.repeat(20)}${outside.slice(1)}/evil.txt`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 }, Buffer.from('x'));
    await w.finish();
    const hostile = b.run(['cp', '-', `${id}:/tmp`], { input: Buffer.concat(chunks) });
    assert.equal(hostile.code, 1);
    assert.match(hostile.stderr, /escapes the root/);
    assert.deepEqual(snapshot(), hostBefore);
  });

  it('manages named and anonymous volumes', () => {
    assert.equal(b.ok(['volume', 'create', 'data1']), 'data1');
    assert.equal(b.ok(['volume', 'create', '--label', 'tier=db', 'data2']), 'data2');
    assert.equal(b.ok(['volume', 'create', 'data1']), 'data1', 'creating an existing volume is fine');
    expectFailure(b.run(['volume', 'create', 'bad/name']), 1, /includes invalid characters for a local volume name/);
    assert.match(b.ok(['volume', 'ls']), /^DRIVER +VOLUME NAME\nlocal +data1\nlocal +data2$/);
    assert.equal(b.ok(['volume', 'ls', '-q', '--filter', 'label=tier=db']), 'data2');
    const v = JSON.parse(b.ok(['volume', 'inspect', 'data2']))[0];
    assert.deepEqual(Object.keys(v).sort(), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
    assert.deepEqual([v.Name, v.Driver, v.Scope, v.Labels], ['data2', 'local', 'local', { tier: 'db' }]);
    assert.equal(b.ok(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'data1']), join(b.root, 'volumes', 'data1', '_data'));

    // a named volume outlives its containers; an anonymous one goes with rm -v
    b.ok(['run', '--rm', '-v', 'data1:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f']);
    assert.equal(b.ok(['run', '--rm', '-v', 'data1:/mnt:ro', 'busybox', 'cat', '/mnt/f']), 'kept');
    const user = b.ok(['run', '-d', '--name', 'voluser', '-v', 'data1:/data', '-v', '/anon', 'busybox', 'sleep', '60']);
    const anon = b.ok(['inspect', '-f', '{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}', user]);
    assert.match(anon, /^[a-f0-9]{64}$/);
    assert.equal(b.ok(['volume', 'ls', '-q']).split('\n').length, 3);
    expectFailure(b.run(['volume', 'rm', 'data1']), 1, /remove data1: volume is in use - \[[a-f0-9]{64}\]/);
    assert.equal(b.ok(['volume', 'ls', '-q', '--filter', 'dangling=true']), 'data2');
    b.ok(['rm', '-f', '-v', user]);
    assert.equal(existsSync(join(b.root, 'volumes', anon)), false, 'rm -v removes the anonymous volume');
    assert.equal(b.ok(['volume', 'ls', '-q']), 'data1\ndata2');

    // prune: anonymous unused volumes, or with -a every unused one
    b.ok(['create', '--name', 'anonholder', '-v', '/a1', 'busybox', 'true']);
    const a2 = b.ok(['create', '-v', '/a2', 'busybox', 'true']);
    b.ok(['rm', a2]); // without -v its anonymous volume stays, unused
    const pruned = b.ok(['volume', 'prune', '-f']);
    assert.match(pruned, /^Deleted Volumes:\n[a-f0-9]{64}\n\nTotal reclaimed space: /);
    assert.equal(b.ok(['volume', 'ls', '-q']).split('\n').length, 3, 'the in-use anonymous volume and the named ones stay');
    b.ok(['rm', '-v', 'anonholder']);
    assert.match(b.ok(['volume', 'prune', '-a', '-f']), /Deleted Volumes:\ndata1\ndata2\n/);
    assert.equal(b.ok(['volume', 'ls', '-q']), '');
    expectFailure(b.run(['volume', 'rm', 'nosuch']), 1, /no such volume/);
    assert.equal(b.run(['volume', 'rm', '-f', 'nosuch']).code, 0);
    const miss = b.run(['volume', 'inspect', 'nosuch']);
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /no such volume/);
  });

  it('lists containers with ps: -a, -q, --no-trunc, --format and --filter', () => {
    const up = b.ok(['run', '-d', '--name', 'psup', '--label', 'role=web', 'busybox', 'sleep', '60']);
    assert.equal(b.run(['run', '--name', 'psdone', 'busybox', 'sh', '-c', 'exit 3']).code, 3);
    const created = b.ok(['create', '--name', 'psnew', 'busybox', 'echo', 'a rather long command line here']);
    assert.equal(b.ok(['ps', '-q']), up.slice(0, 12));
    assert.equal(b.ok(['ps', '-q', '--no-trunc']), up);
    assert.equal(b.ok(['ps', '-aq']).split('\n').length, 3);
    const table = b.ok(['ps', '-a']).split('\n');
    assert.match(table[0]!, /^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/);
    assert.match(b.ok(['ps', '-a']), /psnew\n.*Exited \(3\) .* ago +psdone\n.*Up .* psup$/);
    assert.match(b.ok(['ps', '-a', '--filter', 'name=psnew']), /"echo a rather long …" +.* Created +psnew$/);
    assert.match(b.ok(['ps', '-a', '--no-trunc', '--filter', 'name=psnew']), /"echo a rather long command line here"/);
    assert.equal(b.ok(['ps', '-a', '--format', '{{.Names}} {{.State}}']), 'psnew created\npsdone exited\npsup running');
    assert.equal(b.ok(['ps', '--format', '{{.ID}} {{.Image}} {{.Labels}}']), `${up.slice(0, 12)} busybox role=web`);
    assert.match(b.ok(['ps', '--format', 'table {{.Names}}\t{{.Status}}']), /^NAMES +STATUS\npsup +Up /);
    assert.equal(b.ok(['ps', '-a', '--filter', 'status=exited', '--format', '{{.Names}}']), 'psdone');
    assert.equal(b.ok(['ps', '--filter', 'status=created', '--format', '{{.Names}}']), 'psnew', 'a status filter implies -a');
    assert.equal(b.ok(['ps', '-a', '--filter', 'exited=3', '-q']), b.ok(['ps', '-aq', '--filter', 'name=psdone']));
    assert.equal(b.ok(['ps', '-a', '--filter', 'label=role=web', '--format', '{{.Names}}']), 'psup');
    assert.equal(b.ok(['ps', '-a', '--filter', `id=${created.slice(0, 8)}`, '--format', '{{.Names}}']), 'psnew');
    assert.equal(b.ok(['ps', '-a', '--filter', 'ancestor=busybox', '-q']).split('\n').length, 3);
    assert.equal(b.ok(['ps', '-a', '--filter', 'name=ps', '--filter', 'status=running', '--format', '{{.Names}}']), 'psup', 'different keys are ANDed');
    assert.equal(b.ok(['ps', '-a', '--filter', 'name=psup', '--filter', 'name=psnew', '--format', '{{.Names}}']), 'psnew\npsup', 'one key is ORed');
    assert.equal(b.ok(['ps', '-l', '--format', '{{.Names}}']), 'psnew');
    assert.equal(b.ok(['ps', '-n', '2', '--format', '{{.Names}}']), 'psnew\npsdone');
    assert.match(b.ok(['ps', '-a', '--format', '{{json .}}']).split('\n')[0]!, /^\{.*"Names":"psnew".*\}$/);
    expectFailure(b.run(['ps', '--filter', 'bogus=1']), 1, /invalid filter 'bogus'/);
  });

  it('inspects containers in Docker\'s shape, with -f templates', () => {
    const id = b.ok(['run', '-d', '--name', 'insp', '-e', 'K=V', '--label', 'a=b', '-v', 'insvol:/data', '-w', '/tmp', 'busybox', 'sleep', '60']);
    const all = JSON.parse(b.ok(['inspect', 'insp']));
    assert.equal(all.length, 1);
    const c = all[0];
    for (const k of ['Id', 'Created', 'Path', 'Args', 'State', 'Image', 'ResolvConfPath', 'HostnamePath', 'HostsPath', 'LogPath', 'Name', 'RestartCount',
      'Driver', 'Platform', 'HostConfig', 'GraphDriver', 'Mounts', 'Config', 'NetworkSettings']) assert.ok(k in c, `${k} present`);
    assert.equal(c.Id, id);
    assert.equal(c.Name, '/insp');
    assert.equal(c.Path, 'sleep');
    assert.deepEqual(c.Args, ['60']);
    assert.equal(c.State.Status, 'running');
    assert.equal(c.State.Running, true);
    assert.ok(c.State.Pid > 1);
    assert.match(c.State.StartedAt, /^\d{4}-\d\d-\d\dT/);
    assert.equal(c.Image, b.ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox']));
    assert.equal(c.Config.Image, 'busybox');
    assert.equal(c.Config.WorkingDir, '/tmp');
    assert.ok(c.Config.Env.includes('K=V'));
    assert.deepEqual(c.Config.Labels, { a: 'b' });
    assert.deepEqual(c.Config.Cmd, ['sleep', '60']);
    assert.equal(c.HostConfig.NetworkMode, 'none');
    assert.deepEqual(c.HostConfig.Binds, ['insvol:/data']);
    assert.deepEqual(c.Mounts.map((m: { Type: string; Name: string; Destination: string; RW: boolean }) => [m.Type, m.Name, m.Destination, m.RW]), [['volume', 'insvol', '/data', true]]);
    assert.equal(c.GraphDriver.Name, 'overlay');
    const layer = JSON.parse(b.ok(['image', 'inspect', 'busybox']))[0].RootFS.Layers[0].slice(7);
    assert.equal(c.GraphDriver.Data.LowerDir, join(b.root, 'layers', layer, 'diff'));
    assert.ok(existsSync(c.GraphDriver.Data.MergedDir) && existsSync(c.GraphDriver.Data.UpperDir));
    assert.equal(readFileSync(c.HostnamePath, 'utf8').trim(), id.slice(0, 12));

    assert.equal(b.ok(['inspect', '-f', '{{.Name}} {{.State.Running}} {{index .Config.Labels "a"}} {{range .Mounts}}{{.Destination}}{{end}}', 'insp']), '/insp true b /data');
    assert.equal(b.ok(['inspect', '--format', '{{json .Config.Cmd}}', id.slice(0, 10)]), '["sleep","60"]');
    assert.equal(b.ok(['container', 'inspect', '-f', '{{.State.Status}}', 'insp']), 'running');
    b.ok(['stop', '-t', '0', 'insp']);
    assert.equal(b.ok(['inspect', '-f', '{{.State.Status}} {{.State.Running}} {{.State.Pid}} {{.State.ExitCode}}', 'insp']), 'exited false 0 137');
    // several objects, of different kinds, and misses
    const two = JSON.parse(b.ok(['inspect', 'insp', 'busybox']));
    assert.equal(two.length, 2);
    assert.equal(two[1].RepoTags[0], 'busybox:latest');
    assert.equal(b.ok(['inspect', '--type', 'volume', '-f', '{{.Name}}', 'insvol']), 'insvol');
    const miss = b.run(['inspect', 'insp', 'nosuch']);
    assert.equal(miss.code, 1);
    assert.equal(JSON.parse(miss.stdout).length, 1);
    assert.match(miss.stderr, /No such object: nosuch/);
    expectFailure(b.run(['container', 'inspect', 'busybox']), 1, /No such container: busybox/);
    expectFailure(b.run(['inspect', '-f', '{{.State.Status', 'insp']), 1, /template/);
    b.ok(['rm', '-v', 'insp']);
    b.ok(['volume', 'rm', 'insvol']);
  });
});
