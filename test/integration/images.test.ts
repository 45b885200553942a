import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Berth, BERTH, runAsync, type Result } from '../lib/berth.js';
import { makeBusyboxTar, tempDir } from '../lib/busybox-rootfs.js';
import { TarWriter, type TarEntry } from '../../src/image/tar.js';

// Images through the real berth CLI: import, save/load (also against podman), tag/rmi/prune, shared layers, hostile
// archives, concurrent commands and a load killed midway.

type Item = { name: string; type?: TarEntry['type']; data?: string | Buffer; linkname?: string; mode?: number };

/** A tar built entry by entry (names taken as given, so hostile ones too). */
async function tarOf(items: Item[]): Promise<Buffer> {
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  w.readable!.on('data', (c: Buffer) => chunks.push(c));
  for (const it of items) {
    const type = it.type ?? (it.data !== undefined ? 'file' : 'dir');
    const data = it.data === undefined ? undefined : Buffer.from(it.data);
    const mode = it.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644);
    await w.add({ name: it.name, type, mode, uid: 0, gid: 0, size: data?.length ?? 0, mtime: 1_700_000_000, ...(it.linkname ? { linkname: it.linkname } : {}) }, data);
  }
  await w.finish();
  return Buffer.concat(chunks);
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A docker-archive (manifest.json, <config>.json, <layer>/layer.tar) holding images made of the given layer tars. */
async function dockerArchive(images: { layers: Buffer[]; tags: string[]; cmd?: string[] }[]): Promise<Buffer> {
  const items: Item[] = [];
  const manifest: unknown[] = [];
  for (const img of images) {
    const config = JSON.stringify({
      architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: img.cmd ?? ['sh'] },
      rootfs: { type: 'layers', diff_ids: img.layers.map((l) => `sha256:${sha(l)}`) },
    });
    items.push({ name: `${sha(config)}.json`, data: config });
    for (const l of img.layers) items.push({ name: `${sha(l)}/layer.tar`, data: l });
    manifest.push({ Config: `${sha(config)}.json`, RepoTags: img.tags, Layers: img.layers.map((l) => `${sha(l)}/layer.tar`) });
  }
  items.push({ name: 'manifest.json', data: JSON.stringify(manifest) });
  return tarOf(items);
}

/** What "the store" is on disk: index, blobs, unpacked layers, temp files and leases. */
function storeState(b: Berth) {
  const img = join(b.root, 'images');
  const ls = (d: string) => (existsSync(d) ? readdirSync(d).sort() : []);
  return {
    index: existsSync(join(img, 'index.json')) ? readFileSync(join(img, 'index.json'), 'utf8') : '',
    blobs: ls(join(img, 'blobs', 'sha256')),
    layers: ls(join(b.root, 'layers')),
    temp: [...ls(img).filter((n) => n.startsWith('.tmp-')), ...ls(join(b.root, 'tmp'))],
    leases: ls(join(img, 'leases')),
  };
}

/** Every image in the index has its manifest, config and layer blobs. */
function assertConsistent(b: Berth): void {
  const img = join(b.root, 'images');
  const index = JSON.parse(readFileSync(join(img, 'index.json'), 'utf8'));
  const blob = (d: string) => join(img, 'blobs', 'sha256', d.slice(7));
  for (const m of index.manifests) {
    assert.ok(existsSync(blob(m.digest)), `manifest ${m.digest} present`);
    const man = JSON.parse(readFileSync(blob(m.digest), 'utf8'));
    assert.equal(sha(readFileSync(blob(m.digest))), m.digest.slice(7));
    for (const d of [man.config, ...man.layers]) assert.ok(existsSync(blob(d.digest)), `blob ${d.digest} present`);
  }
}

function expectFailure(r: Result, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

describe('images', () => {
  const b = new Berth();
  const dir = tempDir('berth-images-');
  let busyTar: string;
  let busyId: string;

  before(() => {
    busyTar = makeBusyboxTar(dir);
    busyId = b.ok(['import', busyTar, 'busybox']);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(b.destroy(), [], 'berth left kernel state behind');
  });

  it('imports a rootfs with --change and -m; the config shows in image inspect and the image runs with it', () => {
    const id = b.ok(['import', '-m', 'my import', '--change', 'ENV A=1 B=two', '-c', 'USER app', '-c', 'WORKDIR /home/app', '-c', 'EXPOSE 8080/tcp',
      '-c', 'LABEL team=infra', '-c', 'ENTRYPOINT ["/bin/sh", "-c"]', '-c', 'CMD ["echo $A-$B; id -un; pwd"]', busyTar, 'configured:v1']);
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    const ins = JSON.parse(b.ok(['image', 'inspect', 'configured:v1']))[0];
    assert.equal(ins.Id, id);
    assert.deepEqual(ins.RepoTags, ['configured:v1']);
    assert.equal(ins.Comment, 'my import');
    assert.deepEqual(ins.Config.Env, ['A=1', 'B=two']);
    assert.equal(ins.Config.User, 'app');
    assert.equal(ins.Config.WorkingDir, '/home/app');
    assert.deepEqual(ins.Config.ExposedPorts, { '8080/tcp': {} });
    assert.deepEqual(ins.Config.Labels, { team: 'infra' });
    assert.deepEqual(ins.Config.Entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(ins.RootFS.Layers, [`sha256:${sha(readFileSync(busyTar))}`], 'the tar is the layer, as is');
    assert.equal(ins.Descriptor.size, statSync(join(b.root, 'images/blobs/sha256', ins.Descriptor.digest.slice(7))).size);
    assert.equal(b.ok(['run', '--rm', 'configured:v1']), '1-two\napp\n/home/app');
    assert.equal(b.ok(['image', 'inspect', '-f', '{{.Config.User}} {{json .Config.Cmd}}', 'configured:v1']), 'app ["echo $A-$B; id -un; pwd"]');
    assert.match(b.ok(['history', 'configured:v1']), /^IMAGE +CREATED +CREATED BY +SIZE +COMMENT\n[a-f0-9]{12} .* my import$/);

    // from stdin, gzipped, without a name: dangling
    const gz = gzipSync(readFileSync(busyTar));
    const dangling = b.ok(['import', '-'], { input: gz });
    assert.equal(b.ok(['images', '--filter', 'dangling=true', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']), `<none>:<none> ${dangling.slice(7, 19)}`);
    assert.equal(b.ok(['image', 'inspect', '-f', '{{.Comment}}', dangling]), 'Imported from -');
    assert.deepEqual(JSON.parse(b.ok(['image', 'inspect', dangling]))[0].RootFS.Layers, ins.RootFS.Layers, 'same layer, gzip or not');
    b.ok(['rmi', dangling, 'configured:v1']);

    // bad input to import: Docker's messages, nothing added
    const before = storeState(b);
    expectFailure(b.run(['import', '-c', 'RUN echo hi', busyTar, 'x']), 1, /run is not a valid change command/);
    expectFailure(b.run(['import', busyTar, 'Bad:Name']), 1, /invalid reference format: repository name .* must be lowercase/);
    expectFailure(b.run(['import', join(dir, 'missing.tar'), 'x']), 1, /open .*missing\.tar: no such file or directory/);
    const usage = b.run(['import']);
    assert.equal(usage.code, 1); // Docker: a wrong argument count exits 1 (a bad flag 125)
    assert.match(usage.stderr, /^"berth import" requires at least 1 and at most 2 arguments\.\nSee 'berth import --help'/);
    assert.deepEqual(storeState(b), before);
  });

  it('lists images like docker images: --format, -q, --digests, --no-trunc, filters and a REPOSITORY argument', () => {
    b.ok(['tag', 'busybox', 'example.com/team/app:1.0']);
    b.ok(['tag', 'busybox', 'example.com/team/app:2.0']);
    const table = b.ok(['images']).split('\n');
    assert.match(table[0]!, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/);
    assert.equal(table.length, 4);
    assert.match(b.ok(['images', 'example.com/team/app']), /^REPOSITORY.*\nexample\.com\/team\/app +1\.0 +[a-f0-9]{12} .*\nexample\.com\/team\/app +2\.0 /);
    assert.equal(b.ok(['images', 'example.com/team/app:2.0', '--format', '{{.Repository}}:{{.Tag}}']), 'example.com/team/app:2.0');
    assert.equal(b.ok(['images', 'nosuch']).split('\n').length, 1, 'only the header');
    assert.equal(b.ok(['images', '-q']), busyId.slice(7, 19), 'one id per image');
    assert.equal(b.ok(['images', '-q', '--no-trunc']), busyId);
    assert.equal(b.ok(['images', '--filter', 'reference=example.com/*/*', '--format', '{{.Tag}}']), '1.0\n2.0');
    assert.equal(b.ok(['images', '--filter', 'dangling=true', '-q']), '');
    assert.match(b.ok(['images', '--digests']).split('\n')[0]!, /^REPOSITORY +TAG +DIGEST +IMAGE ID +CREATED +SIZE$/);
    assert.match(b.ok(['images', '--format', '{{json .}}']).split('\n')[0]!, /^\{.*"Repository":"busybox".*\}$/);
    assert.equal(b.run(['images', '--filter', 'bogus=1']).code, 1);
    assert.match(b.ok(['image', 'ls', '--format', 'table {{.Repository}}']), /^REPOSITORY\nbusybox\n/);
    b.ok(['rmi', 'example.com/team/app:1.0', 'example.com/team/app:2.0']);
  });

  it('tags and removes like Docker: untag vs delete, conflicts, exit codes, malformed references', () => {
    const before = storeState(b);
    assert.equal(b.ok(['tag', 'busybox', 'mine:1']), '');
    assert.equal(b.ok(['tag', busyId.slice(7, 17), 'mine:2']), '', 'an id prefix is a source');
    expectFailure(b.run(['tag', 'busybox', 'UPPER']), 1, /invalid reference format: repository name .* must be lowercase/);
    expectFailure(b.run(['tag', 'busybox', 'a b']), 1, /invalid reference format/);
    expectFailure(b.run(['tag', 'nosuch', 'x']), 1, /No such image: nosuch:latest/);
    expectFailure(b.run(['run', '--rm', 'a b']), 125, /invalid reference format/);
    expectFailure(b.run(['run', '--rm', 'nosuch:1']), 125, /No such image: nosuch:1/);
    expectFailure(b.run(['rmi', 'nosuch']), 1, /No such image: nosuch:latest/);
    expectFailure(b.run(['history', 'nosuch']), 1, /No such image: nosuch/);
    const missing = b.run(['image', 'inspect', 'nosuch']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout.trim(), '[]');
    assert.match(missing.stderr, /No such image: nosuch/);

    // by id with several names: must be forced
    expectFailure(b.run(['rmi', busyId.slice(7, 19)]), 1, /conflict: unable to delete [a-f0-9]{12} \(must be forced\) - image is referenced in multiple repositories/);
    // by name with other names left: only untags
    assert.equal(b.ok(['rmi', 'mine:1']), 'Untagged: mine:1');
    assert.equal(b.ok(['rmi', 'mine:2']), 'Untagged: mine:2');
    assert.deepEqual(storeState(b), before, 'tag then untag leaves the store as it was');

    // in use by a container: conflict unless forced; forced, the container keeps its image
    const other = b.ok(['import', busyTar, 'other:1']);
    const ctr = b.ok(['create', 'other:1', 'true']);
    expectFailure(b.run(['rmi', 'other:1']), 1, /conflict: unable to remove repository reference "other:1" \(must force\) - container [a-f0-9]{12} is using its referenced image [a-f0-9]{12}/);
    expectFailure(b.run(['rmi', other]), 1, /conflict: unable to delete [a-f0-9]{12} \(must force\) - container [a-f0-9]{12} is using/);
    assert.equal(b.ok(['rmi', '-f', 'other:1']), 'Untagged: other:1');
    assert.equal(b.ok(['images', '--filter', 'dangling=true', '-q', '--no-trunc']), other);
    b.ok(['start', '-a', ctr]);
    assert.equal(b.ok(['image', 'prune', '-f']), 'Total reclaimed space: 0B', 'an image a container uses is not pruned');
    b.ok(['rm', ctr]);
    const pruned = b.ok(['image', 'prune', '-f']);
    assert.match(pruned, new RegExp(`^Deleted Images:\\ndeleted: ${other}\\n`));
    // several names at once: one failure makes the exit code 1, the others are still removed
    b.ok(['tag', 'busybox', 'gone:1']);
    const multi = b.run(['rmi', 'gone:1', 'nosuch:2']);
    assert.equal(multi.code, 1);
    assert.equal(multi.stdout.trim(), 'Untagged: gone:1');
    assert.match(multi.stderr, /No such image: nosuch:2/);
    assert.deepEqual(storeState(b), before);
  });

  it('unpacks a layer once and shares it between images; it goes with the last image using it', () => {
    const diffHex = sha(readFileSync(busyTar));
    assert.deepEqual(storeState(b).layers, [diffHex], 'unpacked at import, once');
    const a = b.ok(['import', '-c', 'ENV WHO=a', busyTar, 'share:a']);
    const c = b.ok(['import', '-c', 'ENV WHO=c', busyTar, 'share:c']);
    assert.notEqual(a, c);
    assert.deepEqual(storeState(b).layers, [diffHex], 'one layers/<diffid> directory for three images');
    assert.equal(b.ok(['run', '--rm', 'share:a', 'sh', '-c', 'echo $WHO']), 'a');
    assert.equal(b.ok(['run', '--rm', 'share:c', 'sh', '-c', 'echo $WHO']), 'c');
    const mounts = readFileSync('/proc/self/mounts', 'utf8');
    assert.ok(!mounts.includes(diffHex), 'no overlay left mounted');

    b.ok(['rmi', 'share:a']);
    assert.deepEqual(storeState(b).layers, [diffHex], 'still used by share:c and busybox');
    const blobs = storeState(b).blobs;
    assert.ok(blobs.includes(diffHex));

    // an image with a layer of its own: removing it removes that layer only
    b.ok(['import', busyTar, 'share:x']);
    const ctr = b.ok(['create', 'share:x', 'sh', '-c', 'echo layered > /l']);
    b.ok(['start', '-a', ctr]);
    b.ok(['commit', ctr, 'share:layered']);
    b.ok(['rm', ctr]);
    assert.equal(b.ok(['run', '--rm', 'share:layered', 'cat', '/l']), 'layered');
    const layers = storeState(b).layers;
    assert.equal(layers.length, 2);
    const own = layers.find((l) => l !== diffHex)!;
    const del = b.ok(['rmi', 'share:layered']);
    assert.match(del, new RegExp(`Deleted: sha256:${own}`));
    assert.ok(!del.includes(`Deleted: sha256:${diffHex}`), 'the shared layer is not reported deleted');
    assert.deepEqual(storeState(b).layers, [diffHex]);
    assert.ok(!storeState(b).blobs.includes(own));
    b.ok(['rmi', 'share:c', 'share:x']);

    // removing every image removes the layer and its blob
    const only = new Berth();
    try {
      only.ok(['import', busyTar, 'one']);
      only.ok(['import', '-c', 'ENV X=1', busyTar, 'two']);
      assert.deepEqual(storeState(only).layers, [diffHex]);
      only.ok(['rmi', 'one']);
      assert.deepEqual(storeState(only).layers, [diffHex]);
      const out = only.ok(['rmi', 'two']);
      assert.match(out, new RegExp(`Deleted: sha256:${diffHex}`));
      assert.deepEqual(storeState(only).layers, []);
      assert.deepEqual(storeState(only).blobs, []);
    } finally {
      assert.deepEqual(only.destroy(), []);
    }
  });

  it('saves and loads both archive formats, by file and by pipe, keeping image ids', () => {
    const id = b.ok(['import', '-c', 'CMD ["echo", "round trip"]', busyTar, 'trip:1']);
    b.ok(['tag', 'trip:1', 'trip:2']);
    const docker = join(dir, 'docker.tar');
    const oci = join(dir, 'oci.tar');
    b.ok(['save', '-o', docker, 'trip']);
    b.ok(['save', '--format', 'oci', '-o', oci, 'trip:1']);
    const piped = spawnSync(BERTH, ['--root', b.root, 'save', 'trip:1'], { maxBuffer: 64 << 20 });
    assert.equal(piped.status, 0);
    assert.ok(readFileSync(docker).length > 2_000_000);
    const members = spawnSync('tar', ['tf', docker], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(members.includes('manifest.json') && members.includes('index.json') && members.includes('oci-layout'));
    const ociMembers = spawnSync('tar', ['tf', oci], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(ociMembers.includes('index.json') && !ociMembers.includes('manifest.json'));
    assert.equal(b.run(['save', '--format', 'zip', 'trip:1']).code, 1);
    expectFailure(b.run(['save', '-o', join(dir, 'x.tar'), 'nosuch']), 1, /No such image: nosuch/);
    assert.ok(!existsSync(join(dir, 'x.tar')), 'no output file for a failed save');

    const dst = new Berth();
    try {
      assert.equal(dst.ok(['load', '-i', docker]), 'Loaded image: trip:1\nLoaded image: trip:2');
      assert.equal(dst.ok(['images', '-q', '--no-trunc']), id);
      assert.equal(dst.ok(['run', '--rm', 'trip:2']), 'round trip');
      dst.ok(['rmi', 'trip:1', 'trip:2']);
      assert.equal(dst.ok(['load'], { input: readFileSync(oci) }), 'Loaded image: trip:1');
      assert.equal(dst.ok(['images', '-q', '--no-trunc']), id);
      assert.equal(dst.ok(['run', '--rm', 'trip:1']), 'round trip');
      dst.ok(['rmi', 'trip:1']);
      assert.equal(dst.ok(['load', '-q'], { input: piped.stdout }), '');
      assert.equal(dst.ok(['image', 'inspect', '-f', '{{.Id}}', 'trip:1']), id);
      // a load that renames: the old image loses its name and stays, dangling
      const other = dst.ok(['import', busyTar, 'trip:1']);
      dst.ok(['tag', other, 'keep:1']);
      const again = dst.ok(['load', '-i', docker]);
      assert.match(again, /The image trip:1 already exists, renaming the old one with ID sha256:[a-f0-9]{64} to empty string/);
      assert.equal(dst.ok(['image', 'inspect', '-f', '{{.Id}}', 'trip:1']), id);
      // a gzipped archive loads too
      dst.ok(['rmi', 'trip:1', 'trip:2']);
      assert.equal(dst.ok(['load'], { input: gzipSync(readFileSync(docker)) }), 'Loaded image: trip:1\nLoaded image: trip:2');
      // saving what was loaded gives the same archive bytes
      const resaved = spawnSync(BERTH, ['--root', dst.root, 'save', 'trip:1'], { maxBuffer: 64 << 20 });
      assert.equal(sha(resaved.stdout), sha(piped.stdout), 'save is deterministic and load keeps every digest');
    } finally {
      assert.deepEqual(dst.destroy(), []);
    }
    b.ok(['rmi', 'trip:1', 'trip:2']);
  });

  it('loads what podman saves (docker-archive and oci-archive) and runs it', (t) => {
    if (spawnSync('podman', ['--version']).status !== 0) {
      t.skip('podman is not installed');
      return;
    }
    const pdir = tempDir('berth-podman-');
    const podman = (args: string[]) => {
      const r = spawnSync('podman', ['--root', join(pdir, 'root'), '--runroot', join(pdir, 'run'), '--storage-driver', 'vfs', ...args], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`podman ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim();
    };
    const dst = new Berth();
    try {
      podman(['import', '--change', 'CMD ["echo","from podman"]', busyTar, 'localhost/pbox:1']);
      const pid = podman(['image', 'inspect', '--format', '{{.Id}}', 'localhost/pbox:1']);
      podman(['save', '--format', 'docker-archive', '-o', join(pdir, 'docker.tar'), 'localhost/pbox:1']);
      podman(['save', '--format', 'oci-archive', '-o', join(pdir, 'oci.tar'), 'localhost/pbox:1']);
      assert.equal(dst.ok(['load', '-i', join(pdir, 'docker.tar')]), 'Loaded image: localhost/pbox:1');
      assert.equal(dst.ok(['images', '-q', '--no-trunc']), `sha256:${pid}`, 'podman\'s image id is kept');
      assert.equal(dst.ok(['run', '--rm', 'localhost/pbox:1']), 'from podman');
      assert.deepEqual(storeState(dst).layers, [sha(readFileSync(busyTar))], 'same rootfs, same layer as berth import');
      dst.ok(['rmi', 'localhost/pbox:1']);
      assert.equal(dst.ok(['load', '-i', join(pdir, 'oci.tar')]), 'Loaded image: localhost/pbox:1');
      assert.equal(dst.ok(['images', '-q', '--no-trunc']), `sha256:${pid}`);
      assert.equal(dst.ok(['run', '--rm', 'localhost/pbox:1', 'sh', '-c', 'echo gzip layer ok']), 'gzip layer ok');
      // and podman loads what berth saves
      const back = join(pdir, 'back.tar');
      dst.ok(['save', '-o', back, 'localhost/pbox:1']);
      podman(['rmi', 'localhost/pbox:1']);
      assert.match(podman(['load', '-i', back]), /Loaded image: localhost\/pbox:1/);
      assert.equal(podman(['image', 'inspect', '--format', '{{.Id}}', 'localhost/pbox:1']), pid);
    } finally {
      spawnSync('podman', ['--root', join(pdir, 'root'), '--runroot', join(pdir, 'run'), '--storage-driver', 'vfs', 'rmi', '-a', '-f'], { stdio: 'ignore' });
      rmSync(pdir, { recursive: true, force: true });
      assert.deepEqual(dst.destroy(), []);
    }
  });

  it('refuses corrupt and hostile archives with one line, a non-zero exit and no change to the store', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const up = '../'.repeat(20) + outside.slice(1);
    const good = await tarOf([{ name: 'etc/' }, { name: 'etc/ok', data: 'fine\n' }]);
    const gz = gzipSync(Buffer.concat([good, Buffer.alloc(200_000, 7)]));
    const bad: Record<string, [Buffer, RegExp]> = {
      dotdot: [await tarOf([{ name: 'etc/' }, { name: `${up}/PWNED`, data: 'x' }]), /layer entry ".*PWNED" escapes the root/],
      hardlinkOut: [await tarOf([{ name: 'hl', type: 'hardlink', linkname: `${up}/../etc/passwd` }]), /hardlink target .* escapes the root/],
      hardlinkAbs: [await tarOf([{ name: 'hl', type: 'hardlink', linkname: '/etc/passwd' }]), /hardlink target "\/etc\/passwd" does not exist in the layer/],
      truncatedGzip: [gz.subarray(0, gz.length >> 1), /invalid gzip data: unexpected end of file/],
      truncatedTar: [good.subarray(0, 700), /truncated tar archive/],
      notATar: [Buffer.from('hello, this is not a tar archive\n'.repeat(40)), /invalid tar header at offset 0/],
      dirOverFile: [await tarOf([{ name: 'f', data: 'x' }, { name: 'f/g', data: 'y' }]), /"f" is not a directory/],
    };
    const before = storeState(b);
    for (const [what, [tar, message]] of Object.entries(bad)) {
      const file = join(dir, `${what}.tar`);
      writeFileSync(file, tar);
      expectFailure(b.run(['import', file, `bad:${what}`]), 1, message);
      expectFailure(b.run(['import', '-', `bad:${what}`], { input: tar }), 1, message);
      assert.deepEqual(storeState(b), before, `import of ${what} left the store as it was`);
      // the same layers inside an otherwise valid archive, next to a good image: nothing is loaded
      if (what === 'truncatedGzip' || what === 'notATar' || what === 'truncatedTar') {
        expectFailure(b.run(['load', '-i', file]), 1, /invalid archive/);
      } else {
        const archive = await dockerArchive([{ layers: [good], tags: ['fine:1'] }, { layers: [good, tar], tags: [`bad:${what}`] }]);
        expectFailure(b.run(['load'], { input: archive }), 1, message);
      }
      assert.deepEqual(storeState(b), before, `load of ${what} left the store as it was`);
    }
    // archives that lie about their content
    const lying = await dockerArchive([{ layers: [good], tags: ['liar:1'] }]);
    const swapped = Buffer.from(lying.toString('latin1').replace('fine\n', 'evil\n'), 'latin1');
    expectFailure(b.run(['load'], { input: swapped }), 1, /invalid archive: (invalid diffID|.*checksum)/);
    expectFailure(b.run(['load'], { input: await tarOf([{ name: 'manifest.json', data: '{nope' }]) }), 1, /invalid archive: manifest.json: invalid JSON/);
    expectFailure(b.run(['load'], { input: await tarOf([{ name: 'hello', data: 'x' }]) }), 1, /invalid archive: manifest.json missing/);
    expectFailure(b.run(['load', '-i', join(dir, 'nosuch.tar')]), 1, /open .*nosuch\.tar: no such file or directory/);
    assert.deepEqual(storeState(b), before);
    assert.deepEqual(readdirSync(outside), [], 'nothing written outside');

    // a symlink pointing out of the root is followed as in a chroot: what is written through it stays inside
    const symlinked = await tarOf([{ name: 'bin/' }, { name: 'bin/busybox', data: readFileSync('/usr/bin/busybox'), mode: 0o755 },
      { name: 'escape', type: 'symlink', linkname: outside }, { name: 'escape/PWNED', data: 'inside\n' },
      { name: 'rel', type: 'symlink', linkname: up }, { name: 'rel/PWNED2', data: 'inside too\n' }]);
    const sfile = join(dir, 'symlinked.tar');
    writeFileSync(sfile, symlinked);
    b.ok(['import', sfile, 'symlinked']);
    assert.equal(b.ok(['run', '--rm', 'symlinked', '/bin/busybox', 'cat', `${outside}/PWNED`, `${outside}/PWNED2`]), 'inside\ninside too');
    assert.deepEqual(readdirSync(outside), [], 'nothing written outside');
    b.ok(['rmi', 'symlinked']);
    assert.deepEqual(storeState(b), before);
  });

  it('keeps the store consistent with imports, prune and rmi running at once', async () => {
    const dangling = b.ok(['import', busyTar]);
    b.ok(['tag', 'busybox', 'victim:1']);
    const runs = [
      ...[1, 2, 3, 4].map((i) => runAsync(b, ['import', '-c', `ENV N=${i}`, busyTar, `par:${i}`]).done),
      runAsync(b, ['image', 'prune', '-f']).done,
      runAsync(b, ['rmi', 'victim:1']).done,
      runAsync(b, ['tag', 'busybox', 'par:tagged']).done,
      runAsync(b, ['images', '-q']).done,
    ];
    const results = await Promise.all(runs);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.match(results[4]!.stdout, new RegExp(`deleted: ${dangling}`));
    assertConsistent(b);
    const tags = b.ok(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n').sort();
    assert.deepEqual(tags, ['busybox:latest', 'par:1', 'par:2', 'par:3', 'par:4', 'par:tagged']);
    for (const i of [1, 2, 3, 4]) assert.equal(b.ok(['run', '--rm', `par:${i}`, 'sh', '-c', 'echo $N']), String(i));
    const s = storeState(b);
    assert.deepEqual(s.leases, []);
    assert.deepEqual(s.temp, []);
    assert.deepEqual(s.layers, [sha(readFileSync(busyTar))]);

    // and again, with everything being removed while images are added
    const more = await Promise.all([
      runAsync(b, ['rmi', 'par:1', 'par:2']).done,
      runAsync(b, ['import', busyTar, 'late:1']).done,
      runAsync(b, ['image', 'prune', '-a', '-f']).done,
      runAsync(b, ['rmi', 'par:3']).done,
      runAsync(b, ['import', '-c', 'ENV N=5', busyTar, 'late:2']).done,
    ]);
    for (const r of more) assert.ok(r.code === 0 || /No such image/.test(r.stderr), r.stderr);
    assertConsistent(b);
    for (const img of b.ok(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n').filter(Boolean)) {
      assert.equal(b.ok(['run', '--rm', img, 'true']), '', `${img} still runs`);
    }
    b.ok(['image', 'prune', '-a', '-f']);
    assert.equal(b.ok(['images', '-q']), '');
    assert.deepEqual(storeState(b).layers, []);
    assert.deepEqual(storeState(b).blobs, []);
    busyId = b.ok(['import', busyTar, 'busybox']);
  });

  it('survives a load killed midway: no half-written image, every command works, prune removes the garbage', { timeout: 60_000 }, async () => {
    // A docker-archive with a 160 MB layer, written without holding it in memory.
    const big = join(dir, 'big.tar');
    const layerFile = join(dir, 'layer.tar');
    const size = 160 << 20;
    const zeros = Buffer.alloc(1 << 20);
    async function* body() {
      for (let n = 0; n < size; n += zeros.length) yield zeros;
    }
    const lw = new TarWriter(createWriteStream(layerFile));
    await lw.add({ name: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0 }, body());
    await lw.finish();
    const diffId = lw.digest();
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] }, config: { Cmd: ['true'] } });
    const out = createWriteStream(big);
    const aw = new TarWriter(out);
    const file = (name: string, n: number): TarEntry => ({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: n, mtime: 0 });
    await aw.add(file('config.json', config.length), Buffer.from(config));
    const manifest = JSON.stringify([{ Config: 'config.json', RepoTags: ['big:1'], Layers: ['layer/layer.tar'] }]);
    await aw.add(file('manifest.json', manifest.length), Buffer.from(manifest));
    await aw.add(file('layer/layer.tar', statSync(layerFile).size), createReadStream(layerFile) as AsyncIterable<Buffer>);
    await aw.finish();
    rmSync(layerFile);

    const before = storeState(b);
    const images = b.ok(['images', '-q', '--no-trunc']);
    // Kill once while the layer blob is being written, once while it is being unpacked.
    const stages: Array<[string, () => boolean]> = [
      ['ingest', () => readdirSync(join(b.root, 'images')).some((n) => n.startsWith('.tmp-blob-') && statSync(join(b.root, 'images', n)).size > 16 << 20)],
      ['unpack', () => existsSync(join(b.root, 'tmp')) && readdirSync(join(b.root, 'tmp')).some((n) => n.startsWith('layer-'))],
    ];
    for (const [stage, reached] of stages) {
      const child = spawn(BERTH, ['--root', b.root, 'load', '-i', big], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      let hit = false;
      const deadline = Date.now() + 30_000;
      while (!hit && Date.now() < deadline && child.exitCode === null) {
        try {
          hit = reached();
        } catch {
          // a temp file vanished between readdir and stat
        }
        if (!hit) await new Promise((r) => setTimeout(r, 2));
      }
      child.kill('SIGKILL');
      await exited;
      assert.ok(hit, `the load was killed during ${stage}`);
      // Readers are fine and see no trace of the half-loaded image.
      assertConsistent(b);
      assert.equal(b.ok(['images', '-q', '--no-trunc']), images, `after a kill during ${stage}`);
      expectFailure(b.run(['image', 'inspect', 'big:1']), 1, /No such image: big:1/);
      assert.equal(b.ok(['run', '--rm', 'busybox', 'echo', 'still works']), 'still works');
      assert.notDeepEqual(storeState(b), before, `the kill during ${stage} left garbage`);
      assert.match(b.ok(['image', 'prune', '-f']), /Total reclaimed space: /);
      assert.deepEqual(storeState(b), before, `prune removed what the load killed during ${stage} left`);
    }
    // Not killed, the same archive loads and runs.
    assert.equal(b.ok(['load', '-i', big]), 'Loaded image: big:1');
    assert.equal(statSync(join(b.root, 'layers', diffId.slice(7), 'diff', 'big')).size, size, 'unpacked once, at load');
    b.ok(['rmi', 'big:1']);
    rmSync(big);
    assert.deepEqual(storeState(b), before);
  });
});
