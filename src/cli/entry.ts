import { runCli } from './main.js';

// The berth command: `node dist/berth.mjs ARGS...`.
void runCli(process.argv.slice(2));
