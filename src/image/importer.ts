import { createReadStream } from 'node:fs';
import { invalidArgument, wrap } from '../base/errors.js';
import { applyChanges } from './changes.js';
import { parseReference } from './reference.js';
import type { ImageStore, Lease } from './store.js';
import type { Digest } from '../base/digest.js';
import { decompressed, readTar } from './tar.js';
import { MEDIA_OCI_LAYER, type ContainerConfigSpec, type Image, type ImageConfig } from './types.js';

export interface ImportOptions {
  /** Repository[:tag] to give the image; without it the image is dangling. */
  name?: string;
  /** Dockerfile-style `--change` instructions (see changes.ts). */
  changes?: string[];
  /** History comment; defaults to "Imported from <source>". */
  message?: string;
  /** Where the tar came from, for the default message: "-" (stdin or a local file, as docker says) or a URL. */
  source?: string;
  /** Defaults to linux/amd64. */
  platform?: { architecture?: string; os?: string; variant?: string };
  /** Creation time (for tests); defaults to now. */
  now?: Date;
  /**
   * Checks the new layer before the image becomes visible (berth unpacks it, which validates every entry);
   * a throw aborts the import. Without it only the tar headers are checked.
   */
  verifyLayer?: (layer: { diffId: Digest; blob: Digest }) => Promise<void>;
}

/**
 * `berth import`: a root filesystem tar (maybe gzipped) becomes an image with that tar as its single
 * uncompressed layer, like `docker import`. The tar is checked (see verifyLayer) before anything is named; a failed
 * import leaves the store as it was. Errors: invalid-argument for a bad name or change, corrupt for a damaged tar.
 */
export async function importRootfs(store: ImageStore, input: AsyncIterable<Buffer>, opts: ImportOptions = {}): Promise<Image> {
  // Validate what the user typed before reading a possibly large stream.
  if (opts.name !== undefined && parseReference(opts.name).digest) throw invalidArgument('cannot import digest reference');
  const containerConfig = applyChanges({}, opts.changes ?? []);

  const lease = store.lease();
  try {
    return await importLayer(store, lease, input, opts, containerConfig);
  } catch (e) {
    store.discard(lease); // a failed import leaves the store as it was
    throw e;
  } finally {
    lease.release();
  }
}

async function importLayer(
  store: ImageStore, lease: Lease, input: AsyncIterable<Buffer>, opts: ImportOptions, containerConfig: ContainerConfigSpec,
): Promise<Image> {
  const layer = await store.ingestBlob(decompressed(input), { lease });
  try {
    if (opts.verifyLayer) {
      await opts.verifyLayer({ diffId: layer.digest, blob: layer.digest });
    } else {
      for await (const _ of readTar(createReadStream(store.blobPath(layer.digest)) as AsyncIterable<Buffer>)) {
        // readTar skips unread bodies; reaching the end proves the headers are sound
      }
    }
  } catch (e) {
    throw wrap(e, 'import');
  }
  const created = (opts.now ?? new Date()).toISOString();
  const config: ImageConfig = {
    created,
    architecture: opts.platform?.architecture ?? 'amd64',
    os: opts.platform?.os ?? 'linux',
    ...(opts.platform?.variant ? { variant: opts.platform.variant } : {}),
    config: containerConfig,
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
    history: [{ created, created_by: '', comment: opts.message || `Imported from ${opts.source ?? '-'}` }],
  };
  return store.addImage({
    config,
    layers: [{ mediaType: MEDIA_OCI_LAYER, digest: layer.digest, size: layer.size }],
    names: opts.name !== undefined ? [opts.name] : [],
  });
}
