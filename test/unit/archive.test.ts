import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { sha256, type Digest } from '../../src/base/digest.js';
import { isBerthError } from '../../src/base/errors.js';
import { ImageStore } from '../../src/image/store.js';
import { loadArchive, saveArchive } from '../../src/image/archive.js';
import { importRootfs } from '../../src/image/importer.js';
import { readTar, TarWriter, type TarEntry } from '../../src/image/tar.js';
import {
  MEDIA_OCI_INDEX, MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST, MEDIA_OCI_CONFIG,
  type ImageConfig, type ImageIndex, type Descriptor,
} from '../../src/image/types.js';

// ---- helpers ----

const fileEntry = (name: string, size: number, extra: Partial<TarEntry> = {}): TarEntry =>
  ({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0, ...extra });

/** Builds a tar in memory from [entry, body] pairs; `string` bodies are files. */
async function tarOf(members: [string, Buffer | string | { symlink: string } | { hardlink: string }][]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } });
  const w = new TarWriter(sink);
  for (const [name, body] of members) {
    if (typeof body === 'object' && !Buffer.isBuffer(body)) {
      const link = 'symlink' in body ? { type: 'symlink' as const, linkname: body.symlink } : { type: 'hardlink' as const, linkname: body.hardlink };
      await w.add({ ...fileEntry(name, 0), mode: 0o777, ...link });
    } else {
      const b = Buffer.from(body);
      await w.add(fileEntry(name, b.length), b);
    }
  }
  await w.finish();
  return Buffer.concat(chunks);
}

/** A layer tar holding one file. */
const layerTar = (file: string, content: string | Buffer) => tarOf([[file, content]]);

async function* stream(buf: Buffer, chunk = 7919): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += chunk) yield buf.subarray(i, i + chunk);
}

async function saveToBuffer(store: ImageStore, refs: string[], format: 'docker' | 'oci'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } });
  await saveArchive(store, refs, sink, format);
  return Buffer.concat(chunks);
}

/** Member names and bodies of a tar. */
async function members(tar: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const { entry, body } of readTar(stream(tar))) {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c);
    out.set(entry.name, Buffer.concat(parts));
  }
  return out;
}

function configFor(diffIds: Digest[], cmd: string[]): ImageConfig {
  return { architecture: 'amd64', os: 'linux', created: '2024-01-02T03:04:05Z', config: { Cmd: cmd }, rootfs: { type: 'layers', diff_ids: diffIds } };
}

/** Adds an image to the store from layer tars (gzipped when asked). */
async function addImage(store: ImageStore, layers: Buffer[], names: string[], gzip = false, cmd = ['sh']) {
  const descs: Descriptor[] = [];
  for (const l of layers) {
    const data = gzip ? gzipSync(l) : l;
    const r = await store.ingestBlob(stream(data));
    descs.push({ mediaType: gzip ? MEDIA_OCI_LAYER_GZIP : MEDIA_OCI_LAYER, digest: r.digest, size: r.size });
  }
  return store.addImage({ config: configFor(layers.map((l) => sha256(l)), cmd), layers: descs, names });
}

function expectError(kind: string, message: string | RegExp) {
  return (e: unknown) => {
    assert.ok(isBerthError(e), `not a BerthError: ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  };
}

let dir: string;
let src: ImageStore;
let dst: ImageStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-archive-'));
  src = new ImageStore(join(dir, 'src'));
  dst = new ImageStore(join(dir, 'dst'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const summary = (s: ImageStore) => s.list().map((i) => ({ id: i.id, manifest: i.manifestDigest, tags: [...i.repoTags].sort() }))
  .sort((a, b) => a.id.localeCompare(b.id));

// ---- tests ----

describe('saveArchive + loadArchive', () => {
  for (const format of ['docker', 'oci'] as const) {
    it(`round-trips images through the ${format} format`, async () => {
      const base = await layerTar('etc/base', 'base');
      const a = await addImage(src, [base, await layerTar('app', 'a')], ['app:1', 'app:2']);
      const b = await addImage(src, [base], ['localhost:5000/tool:v1'], true, ['tool']);
      const tar = await saveToBuffer(src, ['app', 'localhost:5000/tool:v1'], format);
      const got = await loadArchive(dst, stream(tar));
      assert.deepEqual(got.loaded, ['Loaded image: app:1', 'Loaded image: app:2', 'Loaded image: localhost:5000/tool:v1']);
      assert.deepEqual(summary(dst), summary(src));
      assert.equal(dst.resolve('app:2').id, a.id);
      assert.equal(dst.resolve('localhost:5000/tool:v1').manifest.layers[0]!.mediaType, MEDIA_OCI_LAYER_GZIP);
      assert.equal(dst.resolve('localhost:5000/tool:v1').id, b.id);
      // every blob made it, byte for byte
      for (const img of dst.list()) for (const l of img.manifest.layers) assert.deepEqual(dst.readBlob(l.digest), src.readBlob(l.digest));
      assert.deepEqual(readdirSync(join(dst.dir, 'leases')), []);
    });
  }

  it('writes what Docker 25+ writes for the docker format', async () => {
    const l1 = await layerTar('f', 'one');
    const img = await addImage(src, [l1], ['busybox:latest']);
    const tar = await saveToBuffer(src, ['busybox'], 'docker');
    const m = await members(tar);
    const blobNames = [img.manifestDigest, img.id, img.manifest.layers[0]!.digest].map((d) => `blobs/sha256/${d.slice(7)}`).sort();
    assert.deepEqual([...m.keys()], ['blobs/', 'blobs/sha256/', ...blobNames, 'index.json', 'manifest.json', 'oci-layout', 'repositories']);
    assert.deepEqual(JSON.parse(m.get('manifest.json')!.toString()), [{
      Config: `blobs/sha256/${img.id.slice(7)}`, RepoTags: ['busybox:latest'], Layers: [`blobs/sha256/${sha256(l1).slice(7)}`],
    }]);
    assert.deepEqual(JSON.parse(m.get('repositories')!.toString()), { busybox: { latest: sha256(l1).slice(7) } });
    assert.deepEqual(JSON.parse(m.get('oci-layout')!.toString()), { imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(m.get('index.json')!.toString()) as ImageIndex;
    assert.equal(index.mediaType, MEDIA_OCI_INDEX);
    assert.deepEqual(index.manifests, [{
      mediaType: MEDIA_OCI_MANIFEST, digest: img.manifestDigest, size: src.blobSize(img.manifestDigest),
      platform: { architecture: 'amd64', os: 'linux' },
      annotations: { 'io.containerd.image.name': 'docker.io/library/busybox:latest', 'org.opencontainers.image.ref.name': 'latest' },
    }]);
    for (const name of blobNames) assert.equal(sha256(m.get(name)!), `sha256:${name.slice(13)}`);
  });

  it('oci format has no manifest.json or repositories', async () => {
    await addImage(src, [await layerTar('f', 'x')], ['x:1']);
    const m = await members(await saveToBuffer(src, ['x:1'], 'oci'));
    assert.ok(!m.has('manifest.json') && !m.has('repositories'));
    assert.ok(m.has('index.json') && m.has('oci-layout'));
  });

  it('is deterministic', async () => {
    await addImage(src, [await layerTar('f', 'x')], ['x:1', 'y:2']);
    await addImage(src, [await layerTar('g', 'z')], ['z:1']);
    const t1 = await saveToBuffer(src, ['z:1', 'x:1', 'y'], 'docker');
    const t2 = await saveToBuffer(src, ['z:1', 'x:1', 'y'], 'docker');
    assert.equal(createHash('sha256').update(t1).digest('hex'), createHash('sha256').update(t2).digest('hex'));
  });

  it('saving by id records no name; loading it gives an ID line and a dangling image', async () => {
    const img = await addImage(src, [await layerTar('f', 'x')], ['named:1']);
    for (const format of ['docker', 'oci'] as const) {
      const tar = await saveToBuffer(src, [img.id.slice(7, 19)], format);
      if (format === 'docker') assert.equal(JSON.parse((await members(tar)).get('manifest.json')!.toString())[0].RepoTags, null);
      const store = new ImageStore(join(dir, `byid-${format}`));
      assert.deepEqual((await loadArchive(store, stream(tar))).loaded, [`Loaded image ID: ${img.id}`]);
      assert.deepEqual(store.list().map((i) => [i.id, i.repoTags]), [[img.id, []]]);
    }
  });

  it('loads a gzip-compressed archive', async () => {
    const img = await addImage(src, [await layerTar('f', 'x')], ['x:1']);
    const tar = gzipSync(await saveToBuffer(src, ['x:1'], 'docker'));
    assert.deepEqual((await loadArchive(dst, stream(tar))).loaded, ['Loaded image: x:1']);
    assert.equal(dst.resolve('x:1').id, img.id);
  });

  it('moves an existing name and says so like docker load', async () => {
    const old = await addImage(dst, [await layerTar('old', 'o')], ['app:latest']);
    const img = await addImage(src, [await layerTar('new', 'n')], ['app:latest']);
    const got = await loadArchive(dst, stream(await saveToBuffer(src, ['app'], 'docker')));
    assert.deepEqual(got.loaded, [
      `The image app:latest already exists, renaming the old one with ID ${old.id} to empty string`,
      'Loaded image: app:latest',
    ]);
    assert.equal(dst.resolve('app').id, img.id);
    assert.deepEqual(dst.resolve(old.id).repoTags, []);
    // loading the same archive again is quiet about renames
    assert.deepEqual((await loadArchive(dst, stream(await saveToBuffer(src, ['app'], 'docker')))).loaded, ['Loaded image: app:latest']);
  });

  it('reports unknown images when saving', async () => {
    await assert.rejects(saveToBuffer(src, ['nothere:1'], 'docker'), expectError('not-found', 'No such image: nothere:1'));
  });
});

describe('loadArchive: classic docker-archive', () => {
  /** Builds the pre-25 layout by hand: <v1>/layer.tar, <v1>/json, <v1>/VERSION, <config hex>.json, manifest.json last. */
  async function classicArchive(opts: { corruptDiffId?: boolean; gzipLayer?: boolean } = {}) {
    const l1 = await layerTar('bin/sh', 'shell');
    const l2 = await layerTar('app/run', 'run');
    const l1Stored = opts.gzipLayer ? gzipSync(l1) : l1;
    const cfgA = Buffer.from(JSON.stringify(configFor([opts.corruptDiffId ? sha256('wrong') : sha256(l1)], ['sh'])));
    const cfgB = Buffer.from(JSON.stringify(configFor([sha256(l1), sha256(l2)], ['run'])));
    const v1 = (n: number) => String(n).repeat(64);
    const tar = await tarOf([
      [`${v1(1)}/VERSION`, '1.0'],
      [`${v1(1)}/json`, '{}'],
      [`${v1(1)}/layer.tar`, l1Stored],
      [`${v1(2)}/VERSION`, '1.0'],
      [`${v1(2)}/json`, '{}'],
      [`${v1(2)}/layer.tar`, { symlink: `../${v1(1)}/layer.tar` }],
      [`${v1(3)}/layer.tar`, l2],
      [`${sha256(cfgA).slice(7)}.json`, cfgA],
      [`${sha256(cfgB).slice(7)}.json`, cfgB],
      ['repositories', JSON.stringify({ base: { latest: v1(1) } })],
      ['manifest.json', JSON.stringify([
        { Config: `${sha256(cfgA).slice(7)}.json`, RepoTags: ['base:latest', 'example.com/base:1'], Layers: [`${v1(1)}/layer.tar`] },
        { Config: `./${sha256(cfgB).slice(7)}.json`, RepoTags: null, Layers: [`${v1(2)}/layer.tar`, `${v1(3)}/layer.tar`] },
      ])],
    ]);
    return { tar, idA: sha256(cfgA), idB: sha256(cfgB), l1, l2, l1Stored };
  }

  it('loads images, names, symlinked layers', async () => {
    const { tar, idA, idB, l1, l2 } = await classicArchive();
    const got = await loadArchive(dst, stream(tar));
    assert.deepEqual(got.loaded, ['Loaded image: base:latest', 'Loaded image: example.com/base:1', `Loaded image ID: ${idB}`]);
    const a = dst.resolve('base');
    assert.equal(a.id, idA);
    assert.deepEqual(a.repoTags, ['base:latest', 'example.com/base:1']);
    assert.deepEqual(a.manifest.layers, [{ mediaType: MEDIA_OCI_LAYER, digest: sha256(l1), size: l1.length }]);
    assert.equal(a.manifest.config.mediaType, MEDIA_OCI_CONFIG);
    const b = dst.resolve(idB);
    assert.deepEqual(b.manifest.layers.map((l) => l.digest), [sha256(l1), sha256(l2)]);
    assert.deepEqual(b.repoTags, []);
    // the metadata members (VERSION, json, manifest.json) are garbage, the images' blobs are not
    const freed = dst.gcBlobs();
    assert.ok(freed >= 0);
    for (const img of dst.list()) for (const l of img.manifest.layers) assert.ok(dst.hasBlob(l.digest));
  });

  it('verifies gzip layers against the gunzipped diff id', async () => {
    const { tar, idA, l1Stored } = await classicArchive({ gzipLayer: true });
    await loadArchive(dst, stream(tar));
    assert.deepEqual(dst.resolve(idA).manifest.layers, [{ mediaType: MEDIA_OCI_LAYER_GZIP, digest: sha256(l1Stored), size: l1Stored.length }]);
  });

  it('rejects a layer whose diff id does not match, leaving the index untouched', async () => {
    const keep = await addImage(dst, [await layerTar('k', 'keep')], ['keep']);
    const { tar, l1 } = await classicArchive({ corruptDiffId: true });
    await assert.rejects(loadArchive(dst, stream(tar)),
      expectError('corrupt', `invalid archive: invalid diffID for layer 0: expected "${sha256('wrong')}", got "${sha256(l1)}"`));
    assert.deepEqual(dst.list().map((i) => i.id), [keep.id]);
    assert.equal(dst.gcBlobs(), 0, 'a failed load removes the blobs it brought in itself');
    assert.ok(!dst.hasBlob(sha256(l1)));
    assert.deepEqual(readdirSync(join(dst.dir, 'leases')), []);
  });

  it('names the problem in malformed archives', async () => {
    const cases: [Buffer, string | RegExp][] = [
      [await tarOf([['something', 'x']]), 'invalid archive: manifest.json missing'],
      [await tarOf([['repositories', '{}']]), /invalid archive: manifest.json missing/],
      [await tarOf([['manifest.json', '{nope']]), 'invalid archive: manifest.json: invalid JSON'],
      [await tarOf([['manifest.json', '{}']]), 'invalid archive: manifest.json is not a list'],
      [await tarOf([['manifest.json', '[{"Config":"c.json","RepoTags":null,"Layers":[]}]']]), 'invalid archive: c.json missing'],
      [await tarOf([['c.json', JSON.stringify(configFor([], []))], ['manifest.json', '[{"Config":"c.json","RepoTags":["Bad"],"Layers":[]}]']]),
        'invalid archive: invalid tag "Bad" in manifest.json'],
      [await tarOf([['c.json', JSON.stringify(configFor([sha256('x')], []))], ['manifest.json', '[{"Config":"c.json","RepoTags":null,"Layers":[]}]']]),
        /invalid archive: image sha256:[a-f0-9]+ has 0 layers but 1 rootfs.diff_ids/],
      [await tarOf([['index.json', '{"schemaVersion":2,"manifests":[]}']]), 'invalid archive: oci-layout missing'],
      [Buffer.alloc(2048, 0x41), /^invalid archive: /],
    ];
    for (const [tar, message] of cases) {
      await assert.rejects(loadArchive(dst, stream(tar)), expectError('corrupt', message));
    }
    assert.deepEqual(dst.list(), []);
  });
});

describe('loadArchive: OCI layout', () => {
  /** Writes blobs + index.json + oci-layout for one image, optionally behind a multi-platform index. */
  async function ociArchive(opts: { annotations?: Record<string, string>; multiPlatform?: boolean; bigLayer?: boolean; badBlobName?: boolean }) {
    const layer = opts.bigLayer ? await layerTar('big', Buffer.alloc(1_500_000, 3)) : await layerTar('f', 'oci');
    const gz = gzipSync(layer);
    const cfg = Buffer.from(JSON.stringify(configFor([sha256(layer)], ['oci'])));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_OCI_MANIFEST,
      config: { mediaType: MEDIA_OCI_CONFIG, digest: sha256(cfg), size: cfg.length },
      layers: [{ mediaType: MEDIA_OCI_LAYER_GZIP, digest: sha256(gz), size: gz.length }] }));
    const blobs: [string, Buffer][] = [[sha256(gz), gz], [sha256(cfg), cfg], [sha256(manifest), manifest]];
    let top: Descriptor = { mediaType: MEDIA_OCI_MANIFEST, digest: sha256(manifest), size: manifest.length };
    if (opts.multiPlatform) {
      const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_OCI_INDEX, manifests: [
        { mediaType: MEDIA_OCI_MANIFEST, digest: sha256('other arch'), size: 10, platform: { architecture: 'unknown', os: 'unknown' } },
        { ...top, platform: { architecture: 'amd64', os: 'linux' } },
      ] }));
      blobs.push([sha256(nested), nested]);
      top = { mediaType: MEDIA_OCI_INDEX, digest: sha256(nested), size: nested.length };
    }
    if (opts.annotations) top.annotations = opts.annotations;
    const index = { schemaVersion: 2, manifests: [top] };
    const tar = await tarOf([
      ['oci-layout', '{"imageLayoutVersion":"1.0.0"}'],
      ['index.json', JSON.stringify(index)],
      ...blobs.map(([d, b], i): [string, Buffer] => [`blobs/sha256/${opts.badBlobName && i === 0 ? 'f'.repeat(64) : d.slice(7)}`, b]),
    ]);
    return { tar, id: sha256(cfg), manifestDigest: sha256(manifest), gz };
  }

  it('takes names from io.containerd.image.name and keeps the manifest digest', async () => {
    const { tar, id, manifestDigest } = await ociArchive({ annotations: { 'io.containerd.image.name': 'docker.io/library/oci:1', 'org.opencontainers.image.ref.name': '1' } });
    assert.deepEqual((await loadArchive(dst, stream(tar))).loaded, ['Loaded image: oci:1']);
    const img = dst.resolve('oci:1');
    assert.equal(img.id, id);
    assert.equal(img.manifestDigest, manifestDigest);
  });

  it('uses ref.name only when it is a whole reference', async () => {
    const bare = await ociArchive({ annotations: { 'org.opencontainers.image.ref.name': 'latest' } });
    assert.deepEqual((await loadArchive(dst, stream(bare.tar))).loaded, [`Loaded image ID: ${bare.id}`]);
    const full = await ociArchive({ annotations: { 'org.opencontainers.image.ref.name': 'example.com/app:v1' } });
    assert.deepEqual((await loadArchive(dst, stream(full.tar))).loaded, ['Loaded image: example.com/app:v1']);
  });

  it('picks the linux/amd64 manifest from a nested index', { skip: process.arch !== 'x64' ? 'host is not amd64' : false }, async () => {
    const { tar, id, manifestDigest } = await ociArchive({ multiPlatform: true, annotations: { 'io.containerd.image.name': 'docker.io/library/multi:latest' } });
    await loadArchive(dst, stream(tar));
    assert.equal(dst.resolve('multi').id, id);
    assert.equal(dst.resolve('multi').manifestDigest, manifestDigest);
  });

  it('streams large members into the store and verifies their names', async () => {
    const ok = await ociArchive({ bigLayer: true, annotations: { 'io.containerd.image.name': 'docker.io/library/big:1' } });
    await loadArchive(dst, stream(ok.tar, 65536));
    assert.equal(dst.resolve('big:1').size, ok.gz.length);
    const bad = await ociArchive({ bigLayer: true, badBlobName: true });
    await assert.rejects(loadArchive(new ImageStore(join(dir, 'bad')), stream(bad.tar)), expectError('corrupt', /invalid archive: .*(digest mismatch|missing)/));
  });
});

describe('importRootfs', () => {
  it('imports a gzipped rootfs as one uncompressed layer with changes applied', async () => {
    const rootfs = await tarOf([['bin/sh', 'shell'], ['etc/hostname', 'box']]);
    const img = await importRootfs(dst, stream(gzipSync(rootfs)), {
      name: 'imported:v1', changes: ['CMD ["/bin/sh"]', 'ENV A=1', 'WORKDIR /srv'], now: new Date('2024-05-06T07:08:09Z'),
    });
    assert.deepEqual(img.repoTags, ['imported:v1']);
    assert.deepEqual(img.manifest.layers, [{ mediaType: MEDIA_OCI_LAYER, digest: sha256(rootfs), size: rootfs.length }]);
    assert.deepEqual(img.config.rootfs, { type: 'layers', diff_ids: [sha256(rootfs)] });
    assert.equal(img.config.architecture, 'amd64');
    assert.equal(img.config.os, 'linux');
    assert.equal(img.config.created, '2024-05-06T07:08:09.000Z');
    assert.deepEqual(img.config.history, [{ created: '2024-05-06T07:08:09.000Z', created_by: '', comment: 'Imported from -' }]);
    assert.deepEqual(img.config.config, { Cmd: ['/bin/sh'], Env: ['A=1'], WorkingDir: '/srv' });
    assert.deepEqual(dst.readBlob(sha256(rootfs)), rootfs);
  });

  it('uses the message, and leaves an unnamed import dangling', async () => {
    const img = await importRootfs(dst, stream(await tarOf([['f', 'x']])), { message: 'hello' });
    assert.equal(img.config.history?.[0]?.comment, 'hello');
    assert.deepEqual(img.repoTags, []);
    assert.equal(dst.list().length, 1);
  });

  it('checks the name and changes before reading, and rejects a damaged tar', async () => {
    let read = false;
    async function* input() { read = true; yield Buffer.alloc(1024); }
    await assert.rejects(importRootfs(dst, input(), { changes: ['RUN x'] }), expectError('invalid-argument', 'run is not a valid change command'));
    await assert.rejects(importRootfs(dst, input(), { name: 'Bad' }), expectError('invalid-argument', /must be lowercase/));
    assert.equal(read, false);
    await assert.rejects(importRootfs(dst, stream(Buffer.alloc(1024, 0x41)), { name: 'broken' }), (e: unknown) => isBerthError(e, 'corrupt'));
    assert.deepEqual(dst.list(), []);
    assert.ok(!existsSync(join(dst.dir, 'index.json')) || dst.readIndex().manifests.length === 0);
  });
});
