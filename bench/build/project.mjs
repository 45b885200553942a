// The build benchmark's input: a two-stage Dockerfile over a small generated "C project", and the one-file edit
// that the "one source file changed" rebuild measures. Same seed, same bytes, on every run.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { prng } from './prng.mjs';

/** The base image every builder imports from scripts/make-busybox-image.sh's tar. */
export const BASE_IMAGE = 'localhost/berth-bench-base:latest';
/** What every build is tagged as. */
export const TAG = 'localhost/berth-bench-app:latest';

const MODULES = ['core', 'net', 'util', 'fmt'];
const FILES_PER_MODULE = 50;
/** The file the "one source file changed" rebuild edits. */
export const EDITED = 'src/core/core_025.c';

/**
 * Stage 1 "compiles": concatenates the sources in a fixed order, compresses them into one artifact and checksums
 * every source (busybox tools only). Stage 2 copies the one artifact, drops root and runs it via exec form.
 */
export const DOCKERFILE = `# berth build benchmark (bench/build): two stages, about 200 small sources, one artifact
FROM ${BASE_IMAGE} AS build
WORKDIR /build
COPY src/ src/
RUN mkdir -p /out && find src -type f -name '*.c' | sort > /out/files \\
 && xargs cat < /out/files | gzip -6 > /out/app.gz \\
 && xargs sha256sum < /out/files > /out/SUMS && wc -l < /out/SUMS

FROM ${BASE_IMAGE}
COPY --from=build /out/app.gz /app/app.gz
USER 1000
ENTRYPOINT ["/bin/gzip", "-dc", "/app/app.gz"]
`;

const WORDS = ['buf', 'len', 'ctx', 'node', 'next', 'err', 'flags', 'size', 'map', 'key', 'val', 'out', 'in', 'fd', 'tmp', 'cur'];

/** One pseudo-C source file of 300 B to about 6 KB. */
function source(rand, module, i) {
  const pick = () => WORDS[Math.floor(rand() * WORDS.length)];
  const lines = [`/* ${module}_${i}.c: generated for the berth build benchmark */`, '#include <stddef.h>', ''];
  const fns = 1 + Math.floor(rand() * 8);
  for (let f = 0; f < fns; f++) {
    lines.push(`int ${module}_${i}_${pick()}${f}(int ${pick()}, size_t ${pick()}) {`);
    const body = 1 + Math.floor(rand() * 12);
    for (let b = 0; b < body; b++) lines.push(`  ${pick()} = ${pick()} + ${Math.floor(rand() * 1e6)}; /* ${pick()} ${pick()} */`);
    lines.push(`  return ${pick()};`, '}', '');
  }
  return lines.join('\n');
}

/** Writes the Dockerfile and src/<module>/<module>_NNN.c (200 files) into `dir`. Returns the number of sources. */
export function writeProject(dir) {
  const rand = prng(0x6265_7274); // "bert"
  writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
  let n = 0;
  for (const m of MODULES) {
    for (let i = 0; i < FILES_PER_MODULE; i++, n++) {
      const p = join(dir, 'src', m, `${m}_${String(i).padStart(3, '0')}.c`);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, source(rand, m, i));
    }
  }
  return n;
}

/**
 * Returns `edit(n)`: rewrites EDITED in `dir` as its original text plus a line naming `n`, so every call makes
 * content no build has seen before (a cache can never hit on it).
 */
export function editor(dir) {
  const path = join(dir, EDITED);
  const original = readFileSync(path, 'utf8');
  return (n) => writeFileSync(path, `${original}/* edit ${n} */\n`);
}
