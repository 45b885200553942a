import { startupSnapshot } from 'node:v8';
import { runCli } from './main.js';

/**
 * Entry point of the startup snapshot (dist/berth.blob): the bundle is evaluated once at build time, so a berth
 * command starts without parsing or evaluating any module. Run as `node --snapshot-blob dist/berth.blob -- ARGS`.
 */
if (startupSnapshot.isBuildingSnapshot()) {
  startupSnapshot.setDeserializeMainFunction(() => {
    void runCli(process.argv.slice(process.argv[1] === '--' ? 2 : 1));
  });
} else {
  void runCli(process.argv.slice(2));
}
