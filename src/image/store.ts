import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync,
  unlinkSync, writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { hex, isDigest, sha256, type Digest } from '../base/digest.js';
import { corrupt, errnoCode, internal, invalidArgument, isBerthError, notFound } from '../base/errors.js';
import { atomicWrite, atomicWriteJson, fsyncDir, readJsonIf, withLockSync } from '../base/fsutil.js';
import { native, LOCK_EX, LOCK_NB } from '../sys/native.js';
import {
  familiarString, idPrefixHex, isFullId, isIdPrefix, parseReference, referenceString, tryParseReference,
} from './reference.js';
import {
  MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_MANIFEST_LIST, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX,
  MEDIA_OCI_MANIFEST, type Descriptor, type Image, type ImageConfig, type ImageIndex, type Manifest,
} from './types.js';

/** Index annotation holding the full normalized name, e.g. "docker.io/library/busybox:latest" (containerd's). */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
/** Index annotation holding the tag alone, e.g. "latest" (OCI's). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

export const MANIFEST_MEDIA_TYPES: readonly string[] = [MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST];
export const INDEX_MEDIA_TYPES: readonly string[] = [MEDIA_OCI_INDEX, MEDIA_DOCKER_MANIFEST_LIST];
export const CONFIG_MEDIA_TYPES: readonly string[] = [MEDIA_OCI_CONFIG, MEDIA_DOCKER_CONFIG];

const OCI_LAYOUT = { imageLayoutVersion: '1.0.0' };
const TMP_PREFIX = '.tmp-';
const STALE_TMP_MS = 60 * 60 * 1000;

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface IngestOptions {
  /** Verified after the last byte: a mismatch is a 'corrupt' error and nothing is stored. */
  expected?: { digest?: Digest; size?: number };
  /** Protects the blob from gcBlobs until the lease is released. */
  lease?: Lease;
  /** Also compute the digest of the uncompressed content (gzip is gunzipped; plain data is its own diff id). */
  diffId?: boolean;
}

export interface IngestResult extends BlobInfo {
  /** With `diffId: true`: the uncompressed digest, or undefined for a compression berth cannot read (zstd). */
  diffId?: Digest;
  /** What the content looked like from its first bytes. */
  compression?: 'none' | 'gzip' | 'zstd';
}

/**
 * A new image for addImage: either a config plus layers (berth writes an OCI manifest), or the exact bytes of
 * a manifest (from an archive or a registry) whose config and layer blobs are already in the store. A config
 * given as bytes is stored as is, so its digest (the image ID) is preserved.
 */
export type NewImage =
  | { config: ImageConfig | Uint8Array; layers: Descriptor[]; names?: string[] }
  | { manifest: Uint8Array; names?: string[] };

/** Bytes an ingest gathers before it writes them to its temp file. */
const INGEST_BATCH = 1 << 20;

/**
 * A lease keeps blobs alive between ingest and addImage: gcBlobs never removes a blob recorded in a live lease.
 * It is a file under leases/ holding one digest per line, flocked by its owner; a lease whose lock is free
 * belongs to a crashed process and is ignored and removed by the next gcBlobs. Release it in a finally block.
 */
export class Lease {
  private fd: number | undefined;
  /** Blobs this lease's owner brought into the store (they were not there before): what discard() may remove. */
  readonly created = new Set<Digest>();
  constructor(readonly path: string) {
    // Locked before it has its name: gcBlobs takes an unlocked lease for a crashed owner's and removes it.
    const pending = join(dirname(path), `.${basename(path)}`);
    this.fd = openSync(pending, 'wx', 0o600);
    try {
      native().flock(this.fd, LOCK_EX | LOCK_NB);
      renameSync(pending, path);
    } catch (e) {
      closeSync(this.fd);
      rmSync(pending, { force: true });
      throw e;
    }
  }

  /** Called by the store under its lock, before the blob's existence is checked. */
  record(digest: Digest): void {
    if (this.fd === undefined) throw internal('lease used after release');
    writeSync(this.fd, `${digest}\n`);
  }

  release(): void {
    if (this.fd === undefined) return;
    rmSync(this.path, { force: true });
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * berth's local image store, an OCI image layout directory:
 *
 *   oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   index.json            OCI image index; one manifest descriptor per name, annotated with
 *                         io.containerd.image.name (full name) and org.opencontainers.image.ref.name (tag);
 *                         an image without any name has one descriptor without those annotations (dangling)
 *   blobs/sha256/<hex>    content, named by digest
 *   store.lock            flock serializing index updates and gcBlobs
 *   leases/<id>           live ingest leases (see Lease)
 *   .tmp-*                ingest and index temp files
 *
 * Crash safety: a blob appears only complete and verified (temp file, fsync, rename, fsync dir); index.json is
 * replaced atomically and only after every blob it references is in place, so readers need no lock. Writers of
 * index.json and gcBlobs hold store.lock. Both OCI and Docker v2 schema 2 manifests are accepted.
 */
export class ImageStore {
  private readonly cache = new Map<Digest, unknown>();

  constructor(readonly dir: string) {}

  private get blobsDir(): string { return join(this.dir, 'blobs', 'sha256'); }
  private get indexPath(): string { return join(this.dir, 'index.json'); }
  private get lockPath(): string { return join(this.dir, 'store.lock'); }
  private get leasesDir(): string { return join(this.dir, 'leases'); }

  // ---- blobs ----

  blobPath(digest: Digest): string {
    return join(this.blobsDir, hex(digest));
  }

  hasBlob(digest: Digest): boolean {
    return existsSync(this.blobPath(digest));
  }

  /** Size of a stored blob; not-found if absent. */
  blobSize(digest: Digest): number {
    try {
      return statSync(this.blobPath(digest)).size;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw notFound(`blob ${digest} not found`);
      throw e;
    }
  }

  readBlob(digest: Digest): Buffer {
    try {
      return readFileSync(this.blobPath(digest));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw notFound(`blob ${digest} not found`);
      throw e;
    }
  }

  /** A blob parsed as JSON (cached: blobs are immutable). Unparseable content is 'corrupt'. */
  readJson<T>(digest: Digest): T {
    const hit = this.cache.get(digest);
    if (hit !== undefined) return hit as T;
    const buf = this.readBlob(digest);
    let value: T;
    try {
      value = JSON.parse(buf.toString('utf8')) as T;
    } catch (e) {
      throw corrupt(`blob ${digest}: invalid JSON`, e);
    }
    this.cache.set(digest, value);
    return value;
  }

  /** Stores bytes as a blob (no-op if present) and returns its digest. */
  putBlob(data: Uint8Array, lease?: Lease): Digest {
    const digest = sha256(data);
    if (!lease && this.hasBlob(digest)) return digest;
    this.ensureLayout();
    const tmp = this.tempBlobPath();
    try {
      const fd = openSync(tmp, 'wx', 0o644);
      try {
        let off = 0;
        while (off < data.length) off += writeSync(fd, data, off, data.length - off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      this.place(tmp, digest, lease);
    } finally {
      rmSync(tmp, { force: true });
    }
    return digest;
  }

  /**
   * Streams content into a blob: temp file in the store dir, hashed while written, fsynced, verified against
   * `expected`, renamed into blobs/sha256. An existing blob is kept (the temp file is dropped).
   */
  async ingestBlob(input: AsyncIterable<Uint8Array>, opts: IngestOptions = {}): Promise<IngestResult> {
    this.ensureLayout();
    const tmp = this.tempBlobPath();
    const hash = createHash('sha256');
    const diff = opts.diffId ? new DiffHasher() : undefined;
    let size = 0;
    const fh = await open(tmp, 'wx', 0o644);
    // Small chunks (a layer tar is a header, the data and padding per file) are copied into one batch buffer and
    // written together: one write per chunk would cost a thread-pool round trip each. Copied, not kept: a producer
    // may reuse its buffer once the next chunk is pulled, and the bytes written must be the bytes hashed.
    const batch = Buffer.allocUnsafe(INGEST_BATCH);
    let pendingBytes = 0;
    const writeAll = async (data: Buffer) => {
      let off = 0;
      while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
    };
    const flush = async () => {
      const n = pendingBytes;
      pendingBytes = 0;
      if (n > 0) await writeAll(batch.subarray(0, n));
    };
    try {
      try {
        for await (const chunk of input) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          hash.update(buf);
          size += buf.length;
          if (diff) await diff.push(buf);
          if (pendingBytes + buf.length > INGEST_BATCH) await flush();
          if (buf.length >= INGEST_BATCH) await writeAll(buf);
          else {
            buf.copy(batch, pendingBytes);
            pendingBytes += buf.length;
          }
        }
        await flush();
        await fh.sync();
      } finally {
        await fh.close();
      }
      const digest: Digest = `sha256:${hash.digest('hex')}`;
      const want = opts.expected;
      if (want?.size !== undefined && want.size !== size) {
        throw corrupt(`size mismatch for ${want.digest ?? digest}: expected ${want.size} bytes, got ${size}`);
      }
      if (want?.digest !== undefined && want.digest !== digest) {
        throw corrupt(`digest mismatch for ${want.digest}: got ${digest}`);
      }
      const result: IngestResult = { digest, size };
      if (diff) {
        const d = await diff.finish(digest);
        result.compression = d.compression;
        if (d.diffId) result.diffId = d.diffId;
      }
      this.place(tmp, digest, opts.lease);
      return result;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** A temp file name for an ingest, naming this process so gcBlobs can drop it once the process is gone. */
  private tempBlobPath(): string {
    return join(this.dir, `${TMP_PREFIX}blob-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /**
   * Undoes the blobs a failed operation brought in with `lease`: each one it created is removed unless the index
   * or another live lease now refers to it. Under the store lock. The lease stays usable (and still the caller's to
   * release).
   */
  discard(lease: Lease): void {
    if (lease.created.size === 0 || !existsSync(this.blobsDir)) return;
    withLockSync(this.lockPath, () => {
      const keep = this.reachable();
      for (const d of this.liveLeaseDigests(lease.path)) keep.add(d);
      for (const d of lease.created) {
        if (keep.has(d)) continue;
        rmSync(this.blobPath(d), { force: true });
        this.cache.delete(d);
      }
      fsyncDir(this.blobsDir);
      lease.created.clear();
    });
  }

  /** Starts a lease protecting blobs ingested with it from gcBlobs. */
  lease(): Lease {
    mkdirSync(this.leasesDir, { recursive: true });
    return new Lease(join(this.leasesDir, `${process.pid}-${randomBytes(6).toString('hex')}`));
  }

  /** Moves a complete temp file to its blob path; with a lease, under the lock so gcBlobs cannot interleave. */
  private place(tmp: string, digest: Digest, lease: Lease | undefined): void {
    const put = () => {
      lease?.record(digest);
      if (this.hasBlob(digest)) return;
      renameSync(tmp, this.blobPath(digest));
      fsyncDir(this.blobsDir);
      lease?.created.add(digest);
    };
    if (lease) withLockSync(this.lockPath, put);
    else put();
  }

  private ensureLayout(): void {
    mkdirSync(this.blobsDir, { recursive: true });
    if (!existsSync(join(this.dir, 'oci-layout'))) atomicWrite(join(this.dir, 'oci-layout'), JSON.stringify(OCI_LAYOUT));
  }

  // ---- index ----

  /** The current index.json (an empty index when the store is new). */
  readIndex(): ImageIndex {
    const idx = readJsonIf<ImageIndex>(this.indexPath);
    if (idx === undefined) return { schemaVersion: 2, mediaType: MEDIA_OCI_INDEX, manifests: [] };
    if (typeof idx !== 'object' || idx === null || !Array.isArray(idx.manifests)) {
      throw corrupt(`${this.indexPath}: not an OCI image index`);
    }
    return idx;
  }

  /** Runs a mutation of index.json under the store lock and replaces the file atomically. */
  private updateIndex<T>(fn: (idx: ImageIndex) => T): T {
    return withLockSync(this.lockPath, () => {
      this.ensureLayout();
      const idx = this.readIndex();
      const result = fn(idx);
      atomicWriteJson(this.indexPath, idx);
      return result;
    });
  }

  /** Adds one image; see addImages. */
  addImage(image: NewImage): Image {
    return this.addImages([image])[0]!;
  }

  /**
   * Writes config and manifest blobs and adds the images to the index in one atomic update. A name already
   * pointing at another image moves here; an image left without names stays as a dangling entry. An image
   * added without names that is already in the index keeps its names. Image identity is the id (config
   * digest), as in Docker: a nameless manifest is not kept next to another manifest of the same id (e.g. the
   * same image with compressed layers), and addImage then returns that other one. Layer and config blobs
   * must be present ('corrupt' otherwise: e.g. a gcBlobs ran while they were ingested without a lease).
   */
  addImages(images: NewImage[]): Image[] {
    const wanted = images.map((img) => (img.names ?? []).map(normalizeName));
    const { digests, idx } = this.updateIndex((idx) => {
      // Config and manifest blobs are written under the lock so that gcBlobs cannot remove them before the index.
      const digests = images.map((img, i) => {
        const bytes = 'manifest' in img ? Buffer.from(img.manifest) : this.buildManifest(img.config, img.layers);
        const digest = this.putBlob(bytes);
        const manifest = this.readJson<Manifest>(digest);
        this.checkManifest(digest, manifest);
        const config = this.readJson<ImageConfig>(manifest.config.digest);
        const desc: Descriptor = { mediaType: manifest.mediaType ?? MEDIA_OCI_MANIFEST, digest, size: bytes.length };
        if (config.architecture && config.os) {
          desc.platform = { architecture: config.architecture, os: config.os };
          if (config.variant) desc.platform.variant = config.variant;
        }
        setNames(idx, desc, wanted[i]!, this.idOf);
        return digest;
      });
      return { digests, idx };
    });
    // A manifest not kept because another one of the same image id is there resolves to that one.
    return digests.map((d) => this.imageFromIndex(d, idx) ?? this.sameId(d, idx) ?? missing(d));
  }

  /** The image id (config digest) of a stored manifest, or undefined if unreadable. */
  private readonly idOf = (manifestDigest: string): string | undefined => {
    try {
      return this.readJson<Manifest>(manifestDigest as Digest).config?.digest;
    } catch {
      return undefined;
    }
  };

  private sameId(manifestDigest: Digest, idx: ImageIndex): Image | undefined {
    const id = this.idOf(manifestDigest);
    const other = id && idx.manifests.find((d) => this.idOf(d.digest) === id);
    return other ? this.imageFromIndex(other.digest, idx) : undefined;
  }

  /** The OCI manifest for a config and layers; writes the config blob. */
  private buildManifest(config: ImageConfig | Uint8Array, layers: Descriptor[]): Buffer {
    const configBytes = config instanceof Uint8Array ? config : Buffer.from(JSON.stringify(config));
    const configDigest = this.putBlob(configBytes);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MEDIA_OCI_MANIFEST,
      config: { mediaType: MEDIA_OCI_CONFIG, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({
        mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: l.annotations } : {}),
      })),
    };
    return Buffer.from(JSON.stringify(manifest));
  }

  private checkManifest(digest: Digest, m: Manifest): void {
    if (m?.schemaVersion !== 2 || !m.config || !Array.isArray(m.layers)) throw corrupt(`manifest ${digest}: not an image manifest`);
    if (m.mediaType !== undefined && !MANIFEST_MEDIA_TYPES.includes(m.mediaType)) {
      throw corrupt(`manifest ${digest}: unsupported media type ${m.mediaType}`);
    }
    for (const d of [m.config, ...m.layers]) {
      if (!isDigest(d.digest)) throw corrupt(`manifest ${digest}: invalid digest ${String(d.digest)}`);
      if (!this.hasBlob(d.digest)) throw corrupt(`manifest ${digest}: blob ${d.digest} missing`);
    }
    const config = this.readJson<ImageConfig>(m.config.digest);
    const diffIds = config?.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== m.layers.length) {
      const n = Array.isArray(diffIds) ? diffIds.length : 'no';
      throw corrupt(`image ${m.config.digest}: ${m.layers.length} layers but ${n} rootfs.diff_ids`);
    }
  }

  /** Every image in index order, one per manifest (names grouped). Entries whose blobs vanished are skipped. */
  list(): Image[] {
    const idx = this.readIndex();
    const seen = new Set<string>();
    const out: Image[] = [];
    for (const d of idx.manifests) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      const img = this.imageFromIndex(d.digest, idx);
      if (img) out.push(img);
    }
    return out;
  }

  /**
   * Finds an image the way Docker does: `name[:tag]` (normalized, default tag latest), `name@digest` (a
   * stored repo digest, or the manifest digest of an image in that repository), a full id with or without
   * "sha256:", or any unique prefix of the id's hex. Not found -> not-found "No such image: <familiar ref>";
   * a prefix matching several images -> invalid-argument.
   */
  resolve(refOrId: string): Image {
    const idx = this.readIndex();
    // Every image is read only when a lookup needs them all (ids, digests); a name reads just its own.
    let all: Image[] | undefined;
    const images = (): Image[] => (all ??= this.list());
    if (refOrId.startsWith('sha256:') || isFullId(refOrId)) {
      if (!isIdPrefix(refOrId)) throw invalidArgument(`invalid image ID: ${refOrId}`);
      const full = `sha256:${idPrefixHex(refOrId)}`;
      if (full.length === 71) {
        // A full id (what containers record): manifests only, no configs, until the one that matches.
        for (const d of new Set(idx.manifests.map((m) => m.digest))) {
          let m: Manifest;
          try {
            m = this.readJson<Manifest>(d);
          } catch {
            continue;
          }
          if (m.config?.digest === full) return this.imageFromIndex(d, idx) ?? noSuchImage(refOrId);
        }
        return noSuchImage(refOrId);
      }
      return byIdPrefix(images(), idPrefixHex(refOrId)) ?? noSuchImage(refOrId);
    }
    const ref = tryParseReference(refOrId);
    if (ref) {
      if (ref.digest) {
        const exact = `${ref.name}@${ref.digest}`;
        const inRepo = (i: Image) => namesOf(idx, i.manifestDigest).some((n) => repoOf(n) === ref.name);
        const hit = images().find((i) => i.manifestDigest === byName(idx, exact)) ??
          images().find((i) => i.manifestDigest === ref.digest && inRepo(i));
        if (hit) return hit;
      } else {
        const digest = byName(idx, referenceString(ref));
        const hit = digest && this.imageFromIndex(digest, idx);
        if (hit) return hit;
      }
    }
    if (isIdPrefix(refOrId)) {
      const hit = byIdPrefix(images(), refOrId);
      if (hit) return hit;
    }
    if (!ref) parseReference(refOrId); // throws Docker's message for a malformed reference
    return noSuchImage(ref ? familiarString(ref) : refOrId);
  }

  /** Like resolve but undefined when nothing matches (malformed or ambiguous input still throws). */
  find(refOrId: string): Image | undefined {
    try {
      return this.resolve(refOrId);
    } catch (e) {
      if (isBerthError(e, 'not-found')) return undefined;
      throw e;
    }
  }

  /** Points `newName` at the image `refOrId` resolves to (moving it if used elsewhere). */
  tag(refOrId: string, newName: string): Image {
    const ref = parseReference(newName);
    if (ref.digest) throw invalidArgument('refusing to create a tag with a digest reference');
    const img = this.resolve(refOrId);
    this.updateIndex((idx) => {
      const desc = idx.manifests.find((d) => d.digest === img.manifestDigest);
      if (!desc) throw noSuchImage(refOrId); // removed concurrently
      setNames(idx, desc, [referenceString(ref)], this.idOf);
    });
    return this.imageFromIndex(img.manifestDigest, this.readIndex()) ?? noSuchImage(refOrId);
  }

  /**
   * Removes one name (tag or repo digest). The image stays in the index, dangling if that was its last
   * name: deleting it is the caller's decision (removeImage). Returns the image as it is now (when the
   * manifest was dropped for another of the same id, that one).
   */
  untag(name: string): Image {
    const full = normalizeName(name);
    const ref = parseReference(name);
    const digest = this.updateIndex((idx) => {
      const hit = idx.manifests.find((d) => entryName(d) === full);
      if (!hit) throw noSuchImage(familiarString(ref));
      idx.manifests = idx.manifests.filter((d) => entryName(d) !== full);
      keepNameless(idx, hit, this.idOf);
      return hit.digest;
    });
    const idx = this.readIndex();
    return this.imageFromIndex(digest, idx) ?? this.sameId(digest, idx) ?? missing(digest);
  }

  /**
   * Removes every index entry of an image (by image id = config digest, or manifest digest), names included.
   * Blobs stay until gcBlobs. Returns the removed image; not-found if absent.
   */
  removeImage(id: Digest): Image {
    const images = this.list().filter((i) => i.id === id || i.manifestDigest === id);
    if (images.length === 0) throw noSuchImage(id);
    const drop = new Set<string>(images.map((i) => i.manifestDigest));
    this.updateIndex((idx) => {
      idx.manifests = idx.manifests.filter((d) => !drop.has(d.digest));
    });
    return images[0]!;
  }

  /**
   * Removes an image only if it still has no name, in one index update (what prune uses: a name another process
   * gave it meanwhile keeps it). Returns whether it was removed.
   */
  removeIfDangling(id: Digest): boolean {
    return this.updateIndex((idx) => {
      const entries = idx.manifests.filter((d) => this.idOf(d.digest) === id);
      if (entries.length === 0 || entries.some((d) => entryName(d) !== undefined)) return false;
      idx.manifests = idx.manifests.filter((d) => !entries.includes(d));
      return true;
    });
  }

  /**
   * Deletes blobs not reachable from index.json (manifests, nested indexes, configs, layers) and not held by a
   * live lease; also stale temp files (older than an hour) and leases of dead processes. Runs under the store
   * lock. Returns the bytes freed.
   */
  gcBlobs(): number {
    if (!existsSync(this.blobsDir)) return 0;
    return withLockSync(this.lockPath, () => {
      const keep = this.reachable();
      for (const d of this.liveLeaseDigests()) keep.add(d);

      let freed = 0;
      for (const name of readdirSync(this.blobsDir)) {
        const path = join(this.blobsDir, name);
        if (/^[a-f0-9]{64}$/.test(name)) {
          if (keep.has(`sha256:${name}`)) continue;
          freed += sizeOf(path);
          unlinkSync(path);
          this.cache.delete(`sha256:${name}`);
        } else if (name.startsWith(TMP_PREFIX)) {
          freed += removeIfStale(path);
        }
      }
      for (const name of readdirSync(this.dir)) {
        if (name.startsWith(TMP_PREFIX)) freed += removeIfStale(join(this.dir, name));
      }
      return freed;
    });
  }

  /** Digests reachable from index.json: manifests, nested indexes, configs, layers. Call under the lock. */
  private reachable(): Set<string> {
    const keep = new Set<string>();
    const walk = (d: Descriptor) => {
      if (keep.has(d.digest)) return;
      keep.add(d.digest);
      if (!this.hasBlob(d.digest)) return;
      if (INDEX_MEDIA_TYPES.includes(d.mediaType)) {
        for (const m of this.readJson<ImageIndex>(d.digest).manifests ?? []) walk(m);
      } else if (MANIFEST_MEDIA_TYPES.includes(d.mediaType)) {
        const m = this.readJson<Manifest>(d.digest);
        if (m.config) keep.add(m.config.digest);
        for (const l of m.layers ?? []) keep.add(l.digest);
      }
    };
    for (const d of this.readIndex().manifests) walk(d);
    return keep;
  }

  /** Digests recorded by leases whose owners are alive (but the lease at `except`); removes leases of crashed owners. */
  private liveLeaseDigests(except?: string): Set<string> {
    const keep = new Set<string>();
    let names: string[];
    try {
      names = readdirSync(this.leasesDir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return keep;
      throw e;
    }
    for (const name of names) {
      const path = join(this.leasesDir, name);
      if (path === except) continue;
      if (name.startsWith('.')) {
        // A lease being made (see Lease), or left by an owner that died making it.
        if (!processAlive(Number(/^\.(\d+)-/.exec(name)?.[1]))) rmSync(path, { force: true });
        continue;
      }
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue; // released meanwhile
        throw e;
      }
      try {
        try {
          native().flock(fd, LOCK_EX | LOCK_NB);
          unlinkSync(path); // lock was free: the owner is gone
          continue;
        } catch (e) {
          if (errnoCode(e) !== 'EAGAIN') throw e;
        }
        for (const line of readFileSync(fd, 'utf8').split('\n')) if (isDigest(line)) keep.add(line);
      } finally {
        closeSync(fd);
      }
    }
    return keep;
  }

  /** Builds the Image for a manifest digest from the index and blobs; undefined if not there (any more). */
  private imageFromIndex(digest: Digest, idx: ImageIndex): Image | undefined {
    if (!idx.manifests.some((d) => d.digest === digest)) return undefined;
    let manifest: Manifest;
    let config: ImageConfig;
    try {
      manifest = this.readJson<Manifest>(digest);
      config = this.readJson<ImageConfig>(manifest.config.digest);
    } catch (e) {
      if (isBerthError(e, 'not-found')) return undefined;
      throw e;
    }
    const repoTags: string[] = [];
    const repoDigests: string[] = [];
    for (const name of namesOf(idx, digest)) {
      const ref = tryParseReference(name, { defaultTag: false });
      if (!ref) continue;
      (ref.digest ? repoDigests : repoTags).push(familiarString(ref));
    }
    return {
      id: manifest.config.digest,
      manifestDigest: digest,
      manifest,
      config,
      repoTags,
      repoDigests,
      size: manifest.layers.reduce((n, l) => n + l.size, 0),
    };
  }
}

/** A stored name in full form: "docker.io/library/busybox:latest" or "docker.io/library/busybox@sha256:...". */
function normalizeName(name: string): string {
  const ref = parseReference(name);
  return ref.digest ? `${ref.name}@${ref.digest}` : referenceString(ref);
}

function entryName(d: Descriptor): string | undefined {
  return d.annotations?.[ANNOTATION_IMAGE_NAME];
}

function namesOf(idx: ImageIndex, digest: string): string[] {
  return idx.manifests.filter((d) => d.digest === digest).map(entryName).filter((n): n is string => n !== undefined);
}

function byName(idx: ImageIndex, full: string): Digest | undefined {
  return idx.manifests.find((d) => entryName(d) === full)?.digest;
}

function repoOf(fullName: string): string | undefined {
  return tryParseReference(fullName, { defaultTag: false })?.name;
}

function withoutNames(d: Descriptor): Descriptor {
  const { annotations, ...rest } = d;
  const kept = Object.fromEntries(
    Object.entries(annotations ?? {}).filter(([k]) => k !== ANNOTATION_IMAGE_NAME && k !== ANNOTATION_REF_NAME),
  );
  return Object.keys(kept).length ? { ...rest, annotations: kept } : rest;
}

function withName(d: Descriptor, full: string): Descriptor {
  const ref = parseReference(full, { defaultTag: false });
  const annotations: Record<string, string> = { ...withoutNames(d).annotations, [ANNOTATION_IMAGE_NAME]: full };
  if (ref.tag !== undefined) annotations[ANNOTATION_REF_NAME] = ref.tag;
  return { ...withoutNames(d), annotations };
}

/**
 * Makes `desc` the target of each name, in place: entries with those names elsewhere are dropped (their image
 * keeps a nameless entry if that was its last name), and `desc` ends with one entry per name, or one nameless
 * entry if it has no names.
 */
function setNames(idx: ImageIndex, desc: Descriptor, names: string[], idOf: IdOf): void {
  const bare = withoutNames(desc);
  const losers = new Map<string, Descriptor>();
  for (const name of names) {
    for (const d of idx.manifests) if (entryName(d) === name && d.digest !== desc.digest) losers.set(d.digest, d);
    idx.manifests = idx.manifests.filter((d) => entryName(d) !== name || d.digest === desc.digest);
    if (!idx.manifests.some((d) => d.digest === desc.digest && entryName(d) === name)) idx.manifests.push(withName(bare, name));
  }
  for (const d of losers.values()) keepNameless(idx, d, idOf);
  const named = idx.manifests.some((d) => d.digest === desc.digest && entryName(d) !== undefined);
  if (named) idx.manifests = idx.manifests.filter((d) => d.digest !== desc.digest || entryName(d) !== undefined);
  else keepNameless(idx, desc, idOf);
}

type IdOf = (manifestDigest: string) => string | undefined;

/**
 * After `d` lost a name: if its manifest has no entry left, add a nameless (dangling) one, unless another
 * manifest of the same image id is in the index, which then stands for the image.
 */
function keepNameless(idx: ImageIndex, d: Descriptor, idOf: IdOf): void {
  if (idx.manifests.some((e) => e.digest === d.digest)) return;
  const id = idOf(d.digest);
  if (id !== undefined && idx.manifests.some((e) => idOf(e.digest) === id)) return;
  idx.manifests.push(withoutNames(d));
}

function byIdPrefix(images: Image[], prefix: string): Image | undefined {
  const matches = images.filter((i) => hex(i.id).startsWith(prefix));
  const ids = new Set(matches.map((i) => i.id));
  if (ids.size > 1) throw invalidArgument(`Multiple IDs found with provided prefix: ${prefix}`);
  // One id can have several manifests (e.g. compressed and not): prefer a named one.
  return matches.find((i) => i.repoTags.length > 0) ?? matches[0];
}

function noSuchImage(what: string): never {
  throw notFound(`No such image: ${what}`);
}

function missing(digest: Digest): never {
  throw internal(`image ${digest} vanished from the index during the update`);
}

/** The bytes removing `path` frees: its size, or 0 while another link (the build cache's copy of a layer) keeps them. */
function sizeOf(path: string): number {
  try {
    const st = statSync(path);
    return st.nlink > 1 ? 0 : st.size;
  } catch {
    return 0;
  }
}

/** An ingest temp file of a process that is gone (killed mid-ingest) is garbage at once, others after an hour. */
function removeIfStale(path: string): number {
  try {
    const st = statSync(path);
    const owner = /^\.tmp-blob-(\d+)-/.exec(basename(path))?.[1];
    const orphan = owner !== undefined && !processAlive(Number(owner));
    if (!orphan && Date.now() - st.mtimeMs < STALE_TMP_MS) return 0;
    rmSync(path, { recursive: true, force: true });
    return st.isFile() ? st.size : 0;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 0;
    throw e;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}

/**
 * Computes the uncompressed digest of streamed content: gzip is detected from its magic bytes and gunzipped,
 * plain content is its own diff id, zstd (which Node 20 cannot read) yields none.
 */
class DiffHasher {
  private head = Buffer.alloc(0);
  private mode: 'undecided' | 'none' | 'gzip' | 'zstd' = 'undecided';
  private readonly hash = createHash('sha256');
  private gunzip: ReturnType<typeof createGunzip> | undefined;
  private error: unknown;
  private done: Promise<void> | undefined;

  async push(chunk: Buffer): Promise<void> {
    if (this.mode === 'undecided') {
      this.head = Buffer.concat([this.head, chunk]);
      if (this.head.length < 4) return;
      this.decide();
      chunk = this.head;
    }
    if (this.mode === 'gzip') await this.feed(chunk);
  }

  async finish(digest: Digest): Promise<{ diffId?: Digest; compression: 'none' | 'gzip' | 'zstd' }> {
    if (this.mode === 'undecided' && this.decide() === 'gzip') await this.feed(this.head);
    if (this.mode === 'none') return { diffId: digest, compression: 'none' };
    if (this.mode === 'zstd') return { compression: 'zstd' };
    this.gunzip!.end();
    await this.done;
    if (this.error) throw corrupt(`invalid gzip data: ${(this.error as Error).message}`, this.error);
    return { diffId: `sha256:${this.hash.digest('hex')}`, compression: 'gzip' };
  }

  private decide(): 'none' | 'gzip' | 'zstd' {
    const h = this.head;
    if (h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b) {
      this.mode = 'gzip';
      const gz = createGunzip();
      this.gunzip = gz;
      gz.on('data', (b: Buffer) => this.hash.update(b));
      this.done = new Promise((resolve) => {
        gz.on('end', resolve);
        gz.on('error', (e) => { this.error = e; resolve(); });
      });
    } else if (h.length >= 4 && h.readUInt32LE(0) === 0xfd2fb528) {
      this.mode = 'zstd';
    } else {
      this.mode = 'none';
    }
    return this.mode;
  }

  private async feed(chunk: Buffer): Promise<void> {
    if (this.error) throw corrupt(`invalid gzip data: ${(this.error as Error).message}`, this.error);
    if (!this.gunzip!.write(chunk)) {
      await new Promise<void>((resolve) => {
        const gz = this.gunzip!;
        const done = () => { gz.off('drain', done); gz.off('error', done); resolve(); };
        gz.on('drain', done);
        gz.on('error', done);
      });
    }
  }
}
