import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, readdirSync, writeFileSync, utimesSync, existsSync, mkdirSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sha256, type Digest } from '../../src/base/digest.js';
import { isBerthError } from '../../src/base/errors.js';
import { ImageStore, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from '../../src/image/store.js';
import {
  MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER,
  MEDIA_OCI_MANIFEST, type Descriptor, type ImageConfig, type ImageIndex,
} from '../../src/image/types.js';

async function* chunks(...parts: (string | Buffer)[]): AsyncIterable<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

function configFor(diffIds: Digest[], extra: Partial<ImageConfig> = {}): ImageConfig {
  return { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, ...extra };
}

/** Adds a one-layer image whose layer content is `content`. */
function addSimple(store: ImageStore, content: string, names: string[] = []) {
  const data = Buffer.from(content);
  const digest = store.putBlob(data);
  return store.addImage({
    config: configFor([digest], { created: '2024-01-01T00:00:00Z' }),
    layers: [{ mediaType: MEDIA_OCI_LAYER, digest, size: data.length }],
    names,
  });
}

function expectError(kind: string, message: string | RegExp) {
  return (e: unknown) => {
    assert.ok(isBerthError(e), `not a BerthError: ${String(e)}`);
    assert.equal(e.kind, kind);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  };
}

let dir: string;
let store: ImageStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-store-'));
  store = new ImageStore(join(dir, 'images'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tmpFiles = () => readdirSync(store.dir).filter((n) => n.startsWith('.tmp-'));

describe('blobs', () => {
  it('putBlob stores content under its digest, idempotently', () => {
    const d = store.putBlob(Buffer.from('hello'));
    assert.equal(d, sha256('hello'));
    assert.equal(store.putBlob(Buffer.from('hello')), d);
    assert.ok(store.hasBlob(d));
    assert.equal(store.readBlob(d).toString(), 'hello');
    assert.equal(store.blobPath(d), join(store.dir, 'blobs', 'sha256', d.slice(7)));
    assert.deepEqual(JSON.parse(readFileSync(join(store.dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    assert.deepEqual(tmpFiles(), []);
  });

  it('ingestBlob hashes a stream and verifies the expected digest and size', async () => {
    const want = sha256('abcdef');
    const r = await store.ingestBlob(chunks('abc', 'def'), { expected: { digest: want, size: 6 } });
    assert.deepEqual(r, { digest: want, size: 6 });
    assert.equal(store.readBlob(want).toString(), 'abcdef');
    // again: existing blob is kept
    assert.deepEqual(await store.ingestBlob(chunks('abcdef')), { digest: want, size: 6 });
    assert.deepEqual(tmpFiles(), []);
  });

  it('ingestBlob rejects a digest mismatch and leaves nothing behind', async () => {
    const wrong = sha256('something else');
    await assert.rejects(store.ingestBlob(chunks('abc'), { expected: { digest: wrong } }),
      expectError('corrupt', `digest mismatch for ${wrong}: got ${sha256('abc')}`));
    await assert.rejects(store.ingestBlob(chunks('abc'), { expected: { digest: sha256('abc'), size: 4 } }),
      expectError('corrupt', `size mismatch for ${sha256('abc')}: expected 4 bytes, got 3`));
    assert.ok(!store.hasBlob(sha256('abc')));
    assert.deepEqual(tmpFiles(), []);
  });

  it('ingestBlob removes its temp file when the input stream fails', async () => {
    async function* failing() { yield Buffer.from('partial'); throw new Error('network down'); }
    await assert.rejects(store.ingestBlob(failing()), /network down/);
    assert.deepEqual(tmpFiles(), []);
    assert.deepEqual(readdirSync(join(store.dir, 'blobs', 'sha256')), []);
  });

  it('ingestBlob computes diff ids for plain and gzip content', async () => {
    const tar = Buffer.alloc(3000, 7);
    const plain = await store.ingestBlob(chunks(tar), { diffId: true });
    assert.equal(plain.diffId, sha256(tar));
    assert.equal(plain.compression, 'none');
    const gz = gzipSync(tar);
    // split into 1-byte first chunk to exercise magic detection across chunks
    const gzr = await store.ingestBlob(chunks(gz.subarray(0, 1), gz.subarray(1, 10), gz.subarray(10)), { diffId: true });
    assert.equal(gzr.digest, sha256(gz));
    assert.equal(gzr.diffId, sha256(tar));
    assert.equal(gzr.compression, 'gzip');
    const tiny = await store.ingestBlob(chunks('x'), { diffId: true });
    assert.equal(tiny.diffId, sha256('x'));
  });

  it('ingestBlob reports broken gzip as corrupt', async () => {
    const gz = gzipSync(Buffer.alloc(5000, 1));
    await assert.rejects(store.ingestBlob(chunks(gz.subarray(0, gz.length - 20)), { diffId: true }), expectError('corrupt', /invalid gzip data/));
    assert.deepEqual(tmpFiles(), []);
  });

  it('readJson reports invalid JSON as corrupt and missing blobs as not-found', () => {
    const d = store.putBlob(Buffer.from('{nope'));
    assert.throws(() => store.readJson(d), expectError('corrupt', /invalid JSON/));
    assert.throws(() => store.readBlob(sha256('absent')), expectError('not-found', /not found/));
  });
});

describe('images and names', () => {
  it('addImage writes an OCI manifest and config and annotates the index entry', () => {
    const img = addSimple(store, 'layer-a', ['busybox']);
    const idx = JSON.parse(readFileSync(join(store.dir, 'index.json'), 'utf8')) as ImageIndex;
    assert.equal(idx.schemaVersion, 2);
    assert.equal(idx.manifests.length, 1);
    const entry = idx.manifests[0]!;
    assert.equal(entry.mediaType, MEDIA_OCI_MANIFEST);
    assert.equal(entry.digest, img.manifestDigest);
    assert.equal(entry.size, store.readBlob(img.manifestDigest).length);
    assert.deepEqual(entry.annotations, { [ANNOTATION_IMAGE_NAME]: 'docker.io/library/busybox:latest', [ANNOTATION_REF_NAME]: 'latest' });
    assert.deepEqual(entry.platform, { architecture: 'amd64', os: 'linux' });
    assert.equal(img.manifest.config.mediaType, MEDIA_OCI_CONFIG);
    assert.equal(img.id, img.manifest.config.digest);
    assert.equal(img.id, sha256(store.readBlob(img.id)));
    assert.deepEqual(img.repoTags, ['busybox:latest']);
    assert.deepEqual(img.repoDigests, []);
    assert.equal(img.size, 'layer-a'.length);
  });

  it('keeps config bytes given as a buffer, so the image id is preserved', () => {
    const layer = store.putBlob(Buffer.from('l'));
    const raw = Buffer.from(`{"architecture":"amd64",  "os":"linux","rootfs":{"type":"layers","diff_ids":["${layer}"]}}`);
    const img = store.addImage({ config: raw, layers: [{ mediaType: MEDIA_OCI_LAYER, digest: layer, size: 1 }] });
    assert.equal(img.id, sha256(raw));
  });

  it('refuses an image whose blobs are missing or whose layers do not match diff_ids', () => {
    const absent = sha256('absent');
    assert.throws(() => store.addImage({ config: configFor([absent]), layers: [{ mediaType: MEDIA_OCI_LAYER, digest: absent, size: 1 }] }),
      expectError('corrupt', new RegExp(`blob ${absent} missing`)));
    const layer = store.putBlob(Buffer.from('l'));
    assert.throws(() => store.addImage({ config: configFor([]), layers: [{ mediaType: MEDIA_OCI_LAYER, digest: layer, size: 1 }] }),
      expectError('corrupt', /1 layers but 0 rootfs.diff_ids/));
    assert.deepEqual(store.list(), []);
  });

  it('an image without names is a dangling entry; naming it replaces that entry', () => {
    const img = addSimple(store, 'x');
    assert.deepEqual(store.readIndex().manifests.map((d) => d.annotations), [undefined]);
    assert.deepEqual(img.repoTags, []);
    store.tag(img.id, 'x:1');
    store.tag(img.id, 'x:2');
    const entries = store.readIndex().manifests;
    assert.deepEqual(entries.map((d) => d.annotations?.[ANNOTATION_REF_NAME]), ['1', '2']);
    assert.deepEqual(store.resolve('x:1').repoTags, ['x:1', 'x:2']);
    // adding the same image again without names keeps its names
    addSimple(store, 'x');
    assert.deepEqual(store.list().map((i) => i.repoTags), [['x:1', 'x:2']]);
  });

  it('moving a name leaves the old image dangling, like docker', () => {
    const a = addSimple(store, 'a', ['app:latest']);
    const b = addSimple(store, 'b', ['app:latest']);
    const list = store.list();
    assert.equal(list.length, 2);
    assert.deepEqual(list.find((i) => i.id === a.id)?.repoTags, []);
    assert.deepEqual(list.find((i) => i.id === b.id)?.repoTags, ['app:latest']);
    assert.equal(store.resolve('app').id, b.id);
    // an old image that keeps another name does not get a dangling entry
    store.tag(b.id, 'other');
    store.tag(a.id, 'app');
    assert.deepEqual(store.resolve(b.id).repoTags, ['other:latest']);
    assert.equal(store.readIndex().manifests.filter((d) => !d.annotations).length, 0);
  });

  it('records repo digests as names with a digest', () => {
    const img = addSimple(store, 'r', ['busybox:1']);
    const md = img.manifestDigest;
    store.addImage({ manifest: store.readBlob(md), names: [`busybox@${md}`] });
    const got = store.resolve('busybox:1');
    assert.deepEqual(got.repoDigests, [`busybox@${md}`]);
    assert.deepEqual(got.repoTags, ['busybox:1']);
    assert.equal(store.resolve(`busybox@${md}`).id, img.id);
    assert.equal(store.resolve(`docker.io/library/busybox:whatever@${md}`).id, img.id);
  });

  it('accepts Docker v2 schema 2 manifests', () => {
    const layer = gzipSync(Buffer.from('docker layer'));
    const ld = store.putBlob(layer);
    const cfg = Buffer.from(JSON.stringify(configFor([sha256('docker layer')])));
    const cd = store.putBlob(cfg);
    const manifest = {
      schemaVersion: 2, mediaType: MEDIA_DOCKER_MANIFEST,
      config: { mediaType: MEDIA_DOCKER_CONFIG, digest: cd, size: cfg.length },
      layers: [{ mediaType: MEDIA_DOCKER_LAYER_GZIP, digest: ld, size: layer.length }],
    };
    const img = store.addImage({ manifest: Buffer.from(JSON.stringify(manifest)), names: ['docker/thing:v2'] });
    assert.equal(img.id, cd);
    assert.equal(store.readIndex().manifests[0]!.mediaType, MEDIA_DOCKER_MANIFEST);
    assert.equal(store.resolve('docker/thing:v2').size, layer.length);
    assert.equal(store.gcBlobs(), 0);
    assert.ok(store.hasBlob(ld) && store.hasBlob(cd));
  });
});

describe('resolve', () => {
  it('finds images by name, full id, short id and id prefix', () => {
    const img = addSimple(store, 'one', ['busybox:latest', 'localhost:5000/bb:1']);
    const hex = img.id.slice(7);
    for (const q of ['busybox', 'busybox:latest', 'library/busybox', 'docker.io/library/busybox:latest', 'localhost:5000/bb:1',
      img.id, hex, hex.slice(0, 12), `sha256:${hex.slice(0, 5)}`, hex.slice(0, 1)]) {
      assert.equal(store.resolve(q).id, img.id, q);
    }
    assert.equal(store.find('nothing'), undefined);
  });

  it('prefers a name over an id prefix', () => {
    const a = addSimple(store, 'a');
    const b = addSimple(store, 'b', [a.id.slice(7, 10)]);
    assert.equal(store.resolve(a.id.slice(7, 10)).id, b.id);
  });

  it('reports missing images with docker wording', () => {
    addSimple(store, 'a', ['busybox']);
    assert.throws(() => store.resolve('alpine'), expectError('not-found', 'No such image: alpine:latest'));
    assert.throws(() => store.resolve('foo/bar:1'), expectError('not-found', 'No such image: foo/bar:1'));
    assert.throws(() => store.resolve(`sha256:${'0'.repeat(64)}`), expectError('not-found', `No such image: sha256:${'0'.repeat(64)}`));
    assert.throws(() => store.resolve('Busybox'), expectError('invalid-argument', /must be lowercase/));
    assert.throws(() => store.resolve('sha256:xyz'), expectError('invalid-argument', /invalid image ID/));
  });

  it('rejects an ambiguous id prefix', () => {
    const ids: string[] = [];
    for (let i = 0; ids.length < 2 || ids[0]![7] !== ids[ids.length - 1]![7]; i++) {
      const img = addSimple(store, `layer-${i}`);
      ids.push(img.id);
      if (i > 64) assert.fail('no two ids with the same first hex digit');
    }
    const prefix = ids[0]![7]!;
    assert.throws(() => store.resolve(prefix), expectError('invalid-argument', `Multiple IDs found with provided prefix: ${prefix}`));
  });
});

describe('tag, untag, removeImage', () => {
  it('tag validates the new name', () => {
    const img = addSimple(store, 'a', ['a']);
    assert.throws(() => store.tag(img.id, 'Bad'), expectError('invalid-argument', /must be lowercase/));
    assert.throws(() => store.tag(img.id, `x@sha256:${'a'.repeat(64)}`), expectError('invalid-argument', 'refusing to create a tag with a digest reference'));
    assert.throws(() => store.tag('missing', 'x'), expectError('not-found', 'No such image: missing:latest'));
    assert.deepEqual(store.tag('a', 'b:2').repoTags, ['a:latest', 'b:2']);
  });

  it('untag removes one name and keeps the image dangling after the last', () => {
    const img = addSimple(store, 'a', ['a:1', 'a:2']);
    assert.deepEqual(store.untag('a:1').repoTags, ['a:2']);
    const after = store.untag('a:2');
    assert.deepEqual(after.repoTags, []);
    assert.equal(store.list().length, 1);
    assert.equal(store.list()[0]!.id, img.id);
    assert.throws(() => store.untag('a:2'), expectError('not-found', 'No such image: a:2'));
  });

  it('removeImage drops every entry; gcBlobs then frees the blobs', () => {
    const keep = addSimple(store, 'keep', ['keep']);
    const img = addSimple(store, 'gone-layer', ['gone:1', 'gone:2']);
    const removed = store.removeImage(img.id);
    assert.deepEqual(removed.repoTags, ['gone:1', 'gone:2']);
    assert.deepEqual(store.list().map((i) => i.id), [keep.id]);
    assert.throws(() => store.removeImage(img.id), expectError('not-found', `No such image: ${img.id}`));
    const expected = 'gone-layer'.length + store.blobSize(img.id) + store.blobSize(img.manifestDigest);
    assert.equal(store.gcBlobs(), expected);
    assert.ok(!store.hasBlob(img.id) && !store.hasBlob(img.manifestDigest) && !store.hasBlob(img.manifest.layers[0]!.digest));
    assert.ok(store.hasBlob(keep.id) && store.hasBlob(keep.manifestDigest) && store.hasBlob(keep.manifest.layers[0]!.digest));
    assert.equal(store.gcBlobs(), 0);
  });
});

describe('gcBlobs', () => {
  it('spares blobs held by a live lease and frees them after release', async () => {
    addSimple(store, 'base', ['base']);
    const lease = store.lease();
    let r;
    try {
      r = await store.ingestBlob(chunks('pending layer'), { lease });
      store.putBlob(Buffer.from('pending config'), lease);
      assert.equal(store.gcBlobs(), 0);
      assert.ok(store.hasBlob(r.digest));
    } finally {
      lease.release();
    }
    assert.equal(store.gcBlobs(), 'pending layer'.length + 'pending config'.length);
    assert.ok(!store.hasBlob(r.digest));
    assert.deepEqual(readdirSync(join(store.dir, 'leases')), []);
  });

  it('counts as freed only the bytes of blobs no other link keeps (the build cache links layer blobs)', () => {
    const kept = store.putBlob(Buffer.from('kept by another link'));
    const alone = store.putBlob(Buffer.from('alone'));
    const other = join(store.dir, '..', `other-link-${process.pid}`);
    linkSync(store.blobPath(kept), other);
    try {
      assert.equal(store.gcBlobs(), 'alone'.length);
      assert.ok(!store.hasBlob(kept) && !store.hasBlob(alone));
    } finally {
      rmSync(other, { force: true });
    }
  });

  it('ignores and removes the lease of a crashed process', () => {
    const d = store.putBlob(Buffer.from('orphan'));
    mkdirSync(join(store.dir, 'leases'), { recursive: true });
    writeFileSync(join(store.dir, 'leases', '999999-dead'), `${d}\n`); // nobody holds its lock
    assert.equal(store.gcBlobs(), 'orphan'.length);
    assert.ok(!existsSync(join(store.dir, 'leases', '999999-dead')));
  });

  it('leaves a lease being made alone (it is locked before it is named), and removes one whose maker died', () => {
    store.putBlob(Buffer.from('x'));
    mkdirSync(join(store.dir, 'leases'), { recursive: true });
    const making = join(store.dir, 'leases', `.${process.pid}-making`);
    const died = join(store.dir, 'leases', '.999999-died');
    writeFileSync(making, '');
    writeFileSync(died, '');
    store.gcBlobs();
    assert.ok(existsSync(making), 'a live process is still making it');
    assert.ok(!existsSync(died));
    rmSync(making);
    const lease = store.lease();
    try {
      assert.deepEqual(readdirSync(join(store.dir, 'leases')), [basename(lease.path)]);
    } finally {
      lease.release();
    }
  });

  it('removes stale temp files and keeps fresh ones', () => {
    store.putBlob(Buffer.from('x'));
    const stale = join(store.dir, '.tmp-blob-stale');
    const fresh = join(store.dir, '.tmp-blob-fresh');
    writeFileSync(stale, 'abcd');
    writeFileSync(fresh, 'abcd');
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(stale, old, old);
    assert.equal(store.gcBlobs(), 1 + 4);
    assert.ok(!existsSync(stale));
    assert.ok(existsSync(fresh));
  });

  it('keeps blobs of nested indexes reachable from index.json', () => {
    const img = addSimple(store, 'child', ['c']);
    const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: MEDIA_OCI_MANIFEST, digest: img.manifestDigest, size: img.manifest.layers.length }] }));
    const nd = store.putBlob(nested);
    // hand-edit the index so that only the nested index references the image
    const idx = store.readIndex();
    idx.manifests = [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: nd, size: nested.length } as Descriptor];
    writeFileSync(join(store.dir, 'index.json'), JSON.stringify(idx));
    assert.equal(store.gcBlobs(), 0);
    assert.ok(store.hasBlob(img.manifest.layers[0]!.digest));
  });
});

describe('crash safety and concurrency', () => {
  it('a corrupt index.json is reported, not ignored', () => {
    addSimple(store, 'a', ['a']);
    writeFileSync(join(store.dir, 'index.json'), '{"schemaVersion":2,');
    assert.throws(() => store.list(), expectError('corrupt', /invalid JSON/));
  });

  it('an index entry whose blobs are gone is skipped by readers', () => {
    const img = addSimple(store, 'a', ['a']);
    rmSync(store.blobPath(img.manifestDigest));
    assert.deepEqual(new ImageStore(store.dir).list(), []);
  });

  it('concurrent writers in separate processes do not lose names', async () => {
    const storeUrl = new URL('../../src/image/store.ts', import.meta.url).href;
    const typesUrl = new URL('../../src/image/types.ts', import.meta.url).href;
    const script = `
      const { ImageStore } = await import(${JSON.stringify(storeUrl)});
      const { MEDIA_OCI_LAYER } = await import(${JSON.stringify(typesUrl)});
      const [dir, who] = process.argv.slice(-2);
      const s = new ImageStore(dir);
      for (let i = 0; i < 8; i++) {
        const data = Buffer.from(who + '-' + i);
        const lease = s.lease();
        try {
          const { digest } = await s.ingestBlob([data], { lease });
          s.addImage({ config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digest] } },
            layers: [{ mediaType: MEDIA_OCI_LAYER, digest, size: data.length }], names: ['p' + who + ':' + i, 'shared:' + i] });
          s.gcBlobs();
        } finally { lease.release(); }
      }`;
    const cwd = fileURLToPath(new URL('../..', import.meta.url));
    const run = (who: string) => new Promise<void>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, store.dir, who], { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${who} exited ${code}`))));
    });
    await Promise.all(['1', '2', '3'].map(run));
    const tags = store.list().flatMap((i) => i.repoTags).sort();
    const want = [...['1', '2', '3'].flatMap((w) => Array.from({ length: 8 }, (_, i) => `p${w}:${i}`)),
      ...Array.from({ length: 8 }, (_, i) => `shared:${i}`)].sort();
    assert.deepEqual(tags, want);
    for (const img of store.list()) for (const l of img.manifest.layers) assert.ok(store.hasBlob(l.digest));
    assert.equal(store.list().length, 24);
  });
});

describe('image identity', () => {
  it('one image id keeps one nameless manifest: a second manifest of the same config replaces a dangling duplicate', async () => {
    const layer = Buffer.from('same layer');
    const gz = gzipSync(layer);
    const plain = store.putBlob(layer);
    const packed = store.putBlob(gz);
    const config = configFor([sha256(layer)]);
    const a = store.addImage({ config, layers: [{ mediaType: MEDIA_OCI_LAYER, digest: plain, size: layer.length }], names: ['same:1'] });
    const b = store.addImage({ config, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: packed, size: gz.length }], names: ['same:1'] });
    assert.equal(a.id, b.id);
    assert.notEqual(a.manifestDigest, b.manifestDigest);
    // the name moved to b; a is not left behind as a <none> image of the same id
    assert.deepEqual(store.list().map((i) => [i.manifestDigest, i.repoTags]), [[b.manifestDigest, ['same:1']]]);
    // adding a nameless duplicate returns the image that is there
    const c = store.addImage({ config, layers: [{ mediaType: MEDIA_OCI_LAYER, digest: plain, size: layer.length }] });
    assert.equal(c.manifestDigest, b.manifestDigest);
    assert.equal(store.list().length, 1);
    // untagging the last name keeps the image dangling
    assert.deepEqual(store.untag('same:1').repoTags, []);
    assert.equal(store.list().length, 1);
  });
});
