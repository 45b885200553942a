import { createReadStream, statSync } from 'node:fs';
import { posix } from 'node:path';
import type { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { hex, isDigest, sha256, type Digest } from '../base/digest.js';
import { BerthError, corrupt, invalidArgument, notFound, unavailable, wrap } from '../base/errors.js';
import {
  familiarName, familiarString, isFullId, parseReference, referenceString, tryParseReference, type Reference,
} from './reference.js';
import {
  ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, type ImageStore, type Lease,
  type NewImage,
} from './store.js';
import { decompressed, readTar, TarWriter, type TarEntry } from './tar.js';
import {
  MEDIA_OCI_INDEX, MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST, type Descriptor, type Image,
  type ImageConfig, type ImageIndex, type Manifest,
} from './types.js';

/**
 * Image archives, the files of `docker save` / `docker load`:
 *
 * - docker-archive: manifest.json = [{ Config, RepoTags, Layers }] with paths into the tar (classic
 *   `<hex>/layer.tar` and `<hex>.json`, or `blobs/sha256/<hex>` since Docker 25), plus a legacy `repositories`.
 * - OCI image layout: oci-layout, index.json, blobs/sha256/<hex>; names from the io.containerd.image.name or
 *   org.opencontainers.image.ref.name annotations of index.json. Docker 25+ writes both in one tar, and so does
 *   saveArchive(..., 'docker').
 */

/** One element of a docker-archive manifest.json. */
interface DockerManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export type ArchiveFormat = 'docker' | 'oci';

export interface LoadResult {
  /** Lines as `docker load` prints them: "Loaded image: busybox:latest", "Loaded image ID: sha256:...". */
  loaded: string[];
}

/** Archive members up to this size are kept in memory while reading; larger ones go straight into the store. */
const MEMORY_LIMIT = 1 << 20;
const BLOB_PATH_RE = /^blobs\/sha256\/([a-f0-9]{64})$/;
const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion": "1.0.0"}';

const invalid = (msg: string, cause?: unknown) => corrupt(`invalid archive: ${msg}`, cause);

/**
 * Loads every image of an archive (either format, optionally gzipped) into the store. The tar is read once:
 * large members are ingested as blobs under a lease, small ones kept in memory, then manifest.json (or
 * index.json) is interpreted. Every image is checked (digests, sizes, layer diff ids against the config's
 * rootfs.diff_ids, then `verifyImage`) before any becomes visible, and all are added in one index update. On
 * failure the store is as it was: index unchanged, the blobs this load brought in removed again (a load killed
 * midway leaves garbage for gcBlobs). Errors: corrupt "invalid archive: ...".
 */
export async function loadArchive(store: ImageStore, input: AsyncIterable<Buffer>, opts: LoadOptions = {}): Promise<LoadResult> {
  const lease = store.lease();
  try {
    return await load(store, lease, input, opts);
  } catch (e) {
    store.discard(lease);
    throw e;
  } finally {
    lease.release();
  }
}

export interface LoadOptions {
  /**
   * Checks each image's layers (bottom first) before any image becomes visible: berth unpacks them, which
   * validates every entry. A throw aborts the load.
   */
  verifyImage?: (layers: { diffIds: Digest[]; blobs: Digest[] }) => Promise<void>;
}

async function load(store: ImageStore, lease: Lease, input: AsyncIterable<Buffer>, opts: LoadOptions): Promise<LoadResult> {
  const spool = new Spool(store, lease);
  try {
    for await (const { entry, body } of readTar(decompressed(input))) await spool.add(entry, body);
  } catch (e) {
    throw e instanceof BerthError && e.message.startsWith('invalid archive') ? e : wrap(e, 'invalid archive');
  }
  let images: PendingImage[];
  if (spool.has('manifest.json')) images = readDockerArchive(spool);
  else if (spool.has('index.json')) images = readOciLayout(spool);
  else if (spool.has('repositories')) throw invalid('manifest.json missing (archives of Docker before 1.10 are not supported)');
  else throw invalid('manifest.json missing');

  const loaded: string[] = [];
  for (const img of images) {
    if (img.names.length === 0) loaded.push(`Loaded image ID: ${img.id}`);
    for (const name of img.names) {
      const familiar = familiarString(parseReference(name));
      const old = store.find(name);
      if (old && old.id !== img.id) {
        loaded.push(`The image ${familiar} already exists, renaming the old one with ID ${old.id} to empty string`);
      }
      loaded.push(`Loaded image: ${familiar}`);
    }
  }
  for (const img of images) {
    try {
      await opts.verifyImage?.({ diffIds: img.diffIds, blobs: img.blobs });
    } catch (e) {
      throw wrap(e, `invalid archive: image ${img.id}`);
    }
  }
  store.addImages(images.map((i) => i.image));
  return { loaded };
}

interface PendingImage {
  id: Digest;
  names: string[];
  image: NewImage;
  /** The layers, bottom first: uncompressed digests and the blobs holding them. */
  diffIds: Digest[];
  blobs: Digest[];
}

interface Member {
  data?: Buffer;
  blob?: { digest: Digest; size: number; diffId?: Digest; compression?: 'none' | 'gzip' | 'zstd' };
}

/** The archive's members by normalized path: small ones in memory, large ones already in the store. */
class Spool {
  private readonly files = new Map<string, Member>();
  private readonly links = new Map<string, string>();

  constructor(private readonly store: ImageStore, private readonly lease: Lease) {}

  async add(entry: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const name = clean(entry.name);
    if (entry.type === 'symlink' && entry.linkname !== undefined) {
      this.links.set(name, clean(posix.join(posix.dirname(name), entry.linkname)));
    } else if (entry.type === 'hardlink' && entry.linkname !== undefined) {
      this.links.set(name, clean(entry.linkname));
    } else if (entry.type === 'file') {
      if (entry.size <= MEMORY_LIMIT) {
        const parts: Buffer[] = [];
        for await (const chunk of body) parts.push(chunk);
        this.files.set(name, { data: Buffer.concat(parts) });
      } else {
        const m = BLOB_PATH_RE.exec(name);
        const expected = { size: entry.size, ...(m ? { digest: `sha256:${m[1]}` as Digest } : {}) };
        try {
          this.files.set(name, { blob: await this.store.ingestBlob(body, { expected, lease: this.lease, diffId: true }) });
        } catch (e) {
          throw wrap(e, `invalid archive: ${name}`);
        }
      }
    }
  }

  has(path: string): boolean {
    return this.member(path, false) !== undefined;
  }

  private member(path: string, required = true): Member | undefined {
    let p = clean(path);
    for (let hops = 0; hops < 16 && !this.files.has(p) && this.links.has(p); hops++) p = this.links.get(p)!;
    const m = this.files.get(p);
    if (!m && required) throw invalid(`${path} missing`);
    return m;
  }

  bytes(path: string): Buffer {
    const m = this.member(path)!;
    return m.data ?? this.store.readBlob(m.blob!.digest);
  }

  json<T>(path: string): T {
    try {
      return JSON.parse(this.bytes(path).toString('utf8')) as T;
    } catch (e) {
      if (e instanceof BerthError) throw e;
      throw invalid(`${path}: invalid JSON`, e);
    }
  }

  /** The member stored as a blob (verified against `expect` when given), with its uncompressed digest. */
  blob(path: string, expect?: { digest: Digest; size?: number }): NonNullable<Member['blob']> {
    const m = this.member(path)!;
    if (!m.blob) {
      const data = m.data!;
      const digest = this.store.putBlob(data, this.lease);
      const compression = data[0] === 0x1f && data[1] === 0x8b ? 'gzip'
        : data.length >= 4 && data.readUInt32LE(0) === 0xfd2fb528 ? 'zstd' : 'none';
      let diffId: Digest | undefined = digest;
      if (compression === 'gzip') {
        try {
          diffId = sha256(gunzipSync(data));
        } catch (e) {
          throw invalid(`${path}: invalid gzip data`, e);
        }
      } else if (compression === 'zstd') {
        diffId = undefined;
      }
      m.blob = { digest, size: data.length, compression, ...(diffId ? { diffId } : {}) };
      m.data = undefined;
    }
    if (expect && m.blob.digest !== expect.digest) throw invalid(`digest mismatch for ${expect.digest}: got ${m.blob.digest}`);
    if (expect?.size !== undefined && m.blob.size !== expect.size) {
      throw invalid(`size mismatch for ${expect.digest}: expected ${expect.size} bytes, got ${m.blob.size}`);
    }
    return m.blob;
  }
}

/** "./a//b/" -> "a/b" */
function clean(p: string): string {
  return posix.normalize(`/${p}`).slice(1).replace(/\/$/, '');
}

function blobPath(d: Digest): string {
  return `blobs/sha256/${hex(d)}`;
}

/** Checks a layer's uncompressed digest against the config and returns its descriptor. */
function layerDescriptor(spool: Spool, path: string, index: number, config: ImageConfig, expect?: Descriptor): Descriptor {
  const blob = spool.blob(path, expect && { digest: expect.digest, size: expect.size });
  const want = config.rootfs.diff_ids[index];
  if (blob.compression === 'zstd') throw unavailable(`layer ${blob.digest}: zstd-compressed layers are not supported`);
  if (blob.diffId !== want) throw invalid(`invalid diffID for layer ${index}: expected "${want}", got "${blob.diffId}"`);
  return {
    mediaType: expect?.mediaType ?? (blob.compression === 'gzip' ? MEDIA_OCI_LAYER_GZIP : MEDIA_OCI_LAYER),
    digest: blob.digest,
    size: blob.size,
  };
}

function parseConfig(spool: Spool, path: string, digest: Digest): ImageConfig {
  const config = spool.json<ImageConfig>(path);
  if (typeof config !== 'object' || config === null || !Array.isArray(config.rootfs?.diff_ids) || !config.rootfs.diff_ids.every(isDigest)) {
    throw invalid(`image config ${digest} has no valid rootfs.diff_ids`);
  }
  return config;
}

function readDockerArchive(spool: Spool): PendingImage[] {
  const items = spool.json<DockerManifestItem[]>('manifest.json');
  if (!Array.isArray(items)) throw invalid('manifest.json is not a list');
  // Docker 25+ archives also carry the OCI manifests: reuse one that matches, so the manifest digest survives.
  let known: ReturnType<typeof ociManifests> = [];
  try {
    if (spool.has('index.json') && spool.has('oci-layout')) known = ociManifests(spool);
  } catch {
    // manifest.json is authoritative here; an index.json we cannot use only costs the original manifest digest
  }
  const byConfig = new Map<Digest, PendingImage>();
  for (const item of items) {
    if (typeof item?.Config !== 'string' || !Array.isArray(item.Layers)) throw invalid('manifest.json: entry without Config or Layers');
    const configBlob = spool.blob(item.Config);
    const config = parseConfig(spool, item.Config, configBlob.digest);
    if (config.rootfs.diff_ids.length !== item.Layers.length) {
      throw invalid(`image ${configBlob.digest} has ${item.Layers.length} layers but ${config.rootfs.diff_ids.length} rootfs.diff_ids`);
    }
    const layers = item.Layers.map((p, i) => layerDescriptor(spool, p, i, config));
    const names = (item.RepoTags ?? []).map((t) => {
      const ref = tryParseReference(t);
      if (!ref || ref.digest) throw invalid(`invalid tag "${t}" in manifest.json`);
      return referenceString(ref);
    });
    const same = known.find((k) => k.manifest.config.digest === configBlob.digest &&
      k.manifest.layers.length === layers.length && k.manifest.layers.every((l, i) => l.digest === layers[i]!.digest));
    const image: NewImage = same ? { manifest: same.bytes } : { config: spool.bytes(item.Config), layers };
    const prev = byConfig.get(configBlob.digest);
    if (prev) prev.names.push(...names.filter((n) => !prev.names.includes(n)));
    else byConfig.set(configBlob.digest, { id: configBlob.digest, names, image, diffIds: [...config.rootfs.diff_ids], blobs: layers.map((l) => l.digest) });
  }
  for (const p of byConfig.values()) p.image.names = p.names;
  return [...byConfig.values()];
}

/** The image manifests an OCI layout's index.json points at (through nested indexes), with their raw bytes. */
function ociManifests(spool: Spool): { desc: Descriptor; names: string[]; bytes: Buffer; manifest: Manifest }[] {
  const layout = spool.json<{ imageLayoutVersion?: unknown }>('oci-layout');
  if (typeof layout?.imageLayoutVersion !== 'string') throw invalid('oci-layout has no imageLayoutVersion');
  const index = spool.json<ImageIndex>('index.json');
  if (!Array.isArray(index?.manifests)) throw invalid('index.json is not an image index');
  return index.manifests.map((top) => {
    const desc = pickManifest(spool, top);
    const bytes = spool.bytes(blobPath(desc.digest));
    if (sha256(bytes) !== desc.digest) throw invalid(`digest mismatch for ${desc.digest}: got ${sha256(bytes)}`);
    const manifest = JSON.parse(bytes.toString('utf8')) as Manifest;
    if (manifest.schemaVersion !== 2 || !manifest.config || !Array.isArray(manifest.layers)) {
      throw invalid(`${desc.digest} is not an image manifest`);
    }
    return { desc, names: namesFromAnnotations(top), bytes, manifest };
  });
}

/** A manifest descriptor as is, or the one for this platform from a nested index / manifest list. */
function pickManifest(spool: Spool, desc: Descriptor, depth = 0): Descriptor {
  if (!isDigest(desc?.digest)) throw invalid(`index.json: invalid descriptor ${JSON.stringify(desc)}`);
  if (MANIFEST_MEDIA_TYPES.includes(desc.mediaType)) return desc;
  if (!INDEX_MEDIA_TYPES.includes(desc.mediaType) || depth > 4) throw invalid(`unsupported media type ${desc.mediaType} in index.json`);
  const bytes = spool.bytes(blobPath(desc.digest));
  if (sha256(bytes) !== desc.digest) throw invalid(`digest mismatch for ${desc.digest}: got ${sha256(bytes)}`);
  const nested = JSON.parse(bytes.toString('utf8')) as ImageIndex;
  const arch = hostArchitecture();
  const match = (nested.manifests ?? []).find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch);
  if (!match) throw notFound(`no matching manifest for linux/${arch} in the manifest list entries`);
  return pickManifest(spool, match, depth + 1);
}

function hostArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

/**
 * Names of an index.json entry: io.containerd.image.name, else org.opencontainers.image.ref.name when it is a
 * whole reference ("busybox:1.36", "example.com/app") rather than a bare tag ("latest").
 */
function namesFromAnnotations(desc: Descriptor): string[] {
  const full = desc.annotations?.[ANNOTATION_IMAGE_NAME];
  const refName = desc.annotations?.[ANNOTATION_REF_NAME];
  const candidate = full ?? (refName !== undefined && /[:/@]/.test(refName) ? refName : undefined);
  if (candidate === undefined) return [];
  const ref = tryParseReference(candidate);
  if (!ref) throw invalid(`invalid image name "${candidate}" in index.json`);
  return [ref.digest ? `${ref.name}@${ref.digest}` : referenceString(ref)];
}

function readOciLayout(spool: Spool): PendingImage[] {
  if (!spool.has('oci-layout')) throw invalid('oci-layout missing');
  const byManifest = new Map<Digest, PendingImage>();
  for (const { desc, names, bytes, manifest } of ociManifests(spool)) {
    const prev = byManifest.get(desc.digest);
    if (prev) {
      prev.names.push(...names.filter((n) => !prev.names.includes(n)));
      continue;
    }
    const configBlob = spool.blob(blobPath(manifest.config.digest), manifest.config);
    const config = parseConfig(spool, blobPath(configBlob.digest), configBlob.digest);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw invalid(`image ${configBlob.digest} has ${manifest.layers.length} layers but ${config.rootfs.diff_ids.length} rootfs.diff_ids`);
    }
    manifest.layers.forEach((l, i) => layerDescriptor(spool, blobPath(l.digest), i, config, l));
    byManifest.set(desc.digest, {
      id: configBlob.digest, names: [...names], image: { manifest: bytes }, diffIds: [...config.rootfs.diff_ids], blobs: manifest.layers.map((l) => l.digest),
    });
  }
  for (const p of byManifest.values()) p.image.names = p.names;
  return [...byManifest.values()];
}

// ---------------------------------------------------------------------------------------------------------------
// Saving

interface SaveItem {
  image: Image;
  /** Full normalized tagged names to record. */
  tags: Reference[];
}

/**
 * Writes the images named by `refs` as a tar to `out` (which is ended). 'docker' is what Docker 25+ writes: an
 * OCI layout plus manifest.json and repositories, so old and new `docker load` accept it; 'oci' is the plain OCI
 * layout. A ref with a tag records that tag, a bare repository name records all of its tags, an id or digest
 * records none. Blobs are written as stored. Deterministic: same images and refs, same bytes.
 */
export async function saveArchive(store: ImageStore, refs: string[], out: Writable, format: ArchiveFormat): Promise<void> {
  if (refs.length === 0) throw invalidArgument('no images to save');
  const items = selectImages(store, refs);

  const blobs = new Map<string, Digest>();
  for (const { image } of items) {
    for (const d of [image.manifestDigest, image.id, ...image.manifest.layers.map((l) => l.digest)]) {
      if (!store.hasBlob(d)) throw corrupt(`image ${image.id}: blob ${d} is missing from the store`);
      blobs.set(hex(d), d);
    }
  }

  const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_OCI_INDEX, manifests: [] };
  const manifestJson: DockerManifestItem[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, tags } of items) {
    const base: Descriptor = {
      mediaType: image.manifest.mediaType ?? MEDIA_OCI_MANIFEST,
      digest: image.manifestDigest,
      size: store.blobSize(image.manifestDigest),
    };
    if (image.config.architecture && image.config.os) {
      base.platform = { architecture: image.config.architecture, os: image.config.os, ...(image.config.variant ? { variant: image.config.variant } : {}) };
    }
    if (tags.length === 0) index.manifests.push(base);
    for (const t of tags) {
      index.manifests.push({ ...base, annotations: { [ANNOTATION_IMAGE_NAME]: referenceString(t), [ANNOTATION_REF_NAME]: t.tag! } });
      const top = image.config.rootfs.diff_ids.at(-1);
      if (top) (repositories[familiarName(t)] ??= {})[t.tag!] = hex(top);
    }
    manifestJson.push({
      Config: blobPath(image.id),
      RepoTags: tags.length ? tags.map(familiarString) : null,
      Layers: image.manifest.layers.map((l) => blobPath(l.digest)),
    });
  }

  const tar = new TarWriter(out);
  const dir = (name: string): TarEntry => ({ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
  const file = (name: string, size: number): TarEntry => ({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0 });
  const text = async (name: string, s: string) => {
    const b = Buffer.from(s);
    await tar.add(file(name, b.length), b);
  };
  // Sorted like a directory walk, as Docker's archive is.
  await tar.add(dir('blobs/'));
  await tar.add(dir('blobs/sha256/'));
  for (const h of [...blobs.keys()].sort()) {
    const path = store.blobPath(blobs.get(h)!);
    await tar.add(file(`blobs/sha256/${h}`, statSync(path).size), createReadStream(path) as AsyncIterable<Buffer>);
  }
  await text('index.json', JSON.stringify(index));
  if (format === 'docker') await text('manifest.json', JSON.stringify(manifestJson) + '\n');
  await text('oci-layout', OCI_LAYOUT_CONTENT);
  if (format === 'docker' && Object.keys(repositories).length) await text('repositories', JSON.stringify(repositories) + '\n');
  await tar.finish();
}

/** Resolves refs to images (in order of first mention) with the tags each ref asks to record. */
function selectImages(store: ImageStore, refs: string[]): SaveItem[] {
  const items = new Map<Digest, SaveItem>();
  const add = (image: Image, tag?: Reference) => {
    let item = items.get(image.manifestDigest);
    if (!item) items.set(image.manifestDigest, (item = { image, tags: [] }));
    if (tag && !item.tags.some((t) => referenceString(t) === referenceString(tag))) item.tags.push(tag);
  };
  for (const r of refs) {
    const ref = r.startsWith('sha256:') || isFullId(r) ? undefined : tryParseReference(r, { defaultTag: false });
    if (ref && ref.tag === undefined && ref.digest === undefined) {
      // A bare repository name: every tag of it, like docker save.
      let found = false;
      for (const image of store.list()) {
        for (const t of image.repoTags) {
          const tr = parseReference(t);
          if (tr.name === ref.name) {
            add(image, tr);
            found = true;
          }
        }
      }
      if (!found) add(store.resolve(r));
    } else if (ref?.tag !== undefined && ref.digest === undefined) {
      add(store.resolve(r), ref);
    } else {
      add(store.resolve(r));
    }
  }
  return [...items.values()];
}
