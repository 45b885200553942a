// Builds everything berth runs: the native syscall addon, the C monitor, and the bundled CLI.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const run = (cmd, args, cwd = root) => execFileSync(cmd, args, { cwd, stdio: 'inherit' });
const newer = (src, out) => !existsSync(out) || statSync(src).mtimeMs > statSync(out).mtimeMs;

if (newer(`${root}native/berth_sys.c`, `${root}native/build/Release/berth_sys.node`)) {
  run(process.execPath, [`${root}node_modules/node-gyp/bin/node-gyp.js`, 'rebuild', '--silent'], `${root}native`);
}
run('make', ['-s', '-C', 'monitor']);

await build({
  entryPoints: [`${root}src/cli/main.ts`],
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
