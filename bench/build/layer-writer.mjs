// Child process of the layer commit benchmark: commits one tree the way a berth build step does
// (src/build/layer-commit.ts StepFs.commit: writeLayerTar to a temp file, then the store's ingestBlob of it),
// timed in-process, and prints the times as JSON. Runs from berth's TypeScript sources:
//   node --import tsx bench/build/layer-writer.mjs TREE STORE_DIR
// STORE_DIR must not exist; it is created (an OCI layout) and removed again.
import { createReadStream, createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { ImageStore } from '../../src/image/store.ts';
import { writeLayerTar } from '../../src/storage/changes.ts';

const [tree, storeDir] = process.argv.slice(2);
if (!tree || !storeDir) {
  process.stderr.write('usage: node --import tsx bench/build/layer-writer.mjs TREE STORE_DIR\n');
  process.exit(2);
}
mkdirSync(storeDir);
try {
  const store = new ImageStore(join(storeDir, 'images'));
  const lease = store.lease();
  try {
    const tarPath = join(storeDir, 'layer.tar');
    const t0 = performance.now();
    const out = createWriteStream(tarPath);
    const layer = await writeLayerTar(tree, [], out);
    await finished(out);
    const t1 = performance.now();
    const blob = await store.ingestBlob(createReadStream(tarPath), { lease });
    const t2 = performance.now();
    rmSync(tarPath);
    const t3 = performance.now();
    process.stdout.write(`${JSON.stringify({
      tarMs: t1 - t0, ingestMs: t2 - t1, totalMs: t3 - t0, tarBytes: layer.size, diffId: layer.digest, blob: blob.digest,
    })}\n`);
  } finally {
    lease.release();
  }
} finally {
  rmSync(storeDir, { recursive: true, force: true });
}
