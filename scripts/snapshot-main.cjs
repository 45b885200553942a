// The startup snapshot builder's entry (`node --build-snapshot scripts/snapshot-main.cjs`): evaluates
// dist/berth.cjs with every function compiled up front. V8 keeps the bytecode of compiled functions in the
// snapshot, so no berth command pays for compiling a function on its first call (about 20 ms of a build); the
// snapshot grows by about 1 MB, which costs about 3 ms to load.
const { readFileSync } = require('fs');
const { join } = require('path');
const v8 = require('v8');
const vm = require('vm');

// Node warns that `vm` (and `child_process`, which the bundle loads) is "not yet fully verified" in snapshot builder
// scripts: vm is only used here, to compile, and the integration tests run every command from this snapshot.
const file = join(__dirname, '..', 'dist', 'berth.cjs');
const source = readFileSync(file, 'utf8');
v8.setFlagsFromString('--no-lazy');
let main;
try {
  main = vm.compileFunction(source, ['require', 'module', 'exports', '__filename', '__dirname'], { filename: file });
} finally {
  // Back to lazy compilation before anything else compiles (and before the snapshot is taken: the flags are part
  // of what a snapshot must match when it is loaded).
  v8.setFlagsFromString('--lazy');
}
const mod = { exports: {} };
main(require, mod, mod.exports, file, join(__dirname, '..', 'dist'));
