// Builds everything berth runs: the native syscall addon, the C monitor, and the bundled CLI.
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync, statSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const run = (cmd, args, cwd = root) => execFileSync(cmd, args, { cwd, stdio: 'inherit' });
const newer = (src, out) => !existsSync(out) || statSync(src).mtimeMs > statSync(out).mtimeMs;

if (newer(`${root}native/berth_sys.c`, `${root}native/build/Release/berth_sys.node`)) {
  run(process.execPath, [`${root}node_modules/node-gyp/bin/node-gyp.js`, 'rebuild', '--silent'], `${root}native`);
}
run('make', ['-s', '-C', 'monitor']);

await build({
  entryPoints: [`${root}src/cli/entry.ts`],
  outfile: `${root}dist/berth.mjs`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  // ESM bundles have no require(); the addon loader uses createRequire, and ajv is CommonJS.
  banner: { js: "import { createRequire as __berthCreateRequire } from 'node:module'; const require = __berthCreateRequire(import.meta.url);" },
});

// The startup snapshot: the same code as a CommonJS bundle, evaluated once here and saved with V8's heap, so that
// each berth command skips module loading (about 30 ms of every command's start).
await build({
  entryPoints: [`${root}src/cli/snapshot-entry.ts`],
  outfile: `${root}dist/berth.cjs`,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  define: { 'import.meta.url': '__berthImportMetaUrl' },
  banner: { js: "const __berthImportMetaUrl = require('url').pathToFileURL(__filename).href;" },
});
// Written aside and renamed: a berth starting meanwhile (tests, benchmarks) reads the old blob or the new, never half.
execFileSync(process.execPath, ['--snapshot-blob', `${root}dist/berth.blob.new`, '--build-snapshot', `${root}scripts/snapshot-main.cjs`], {
  cwd: `${root}dist`,
  stdio: ['ignore', 'ignore', 'pipe'],
});
renameSync(`${root}dist/berth.blob.new`, `${root}dist/berth.blob`);
