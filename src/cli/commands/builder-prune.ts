import { join } from 'node:path';
import type { Command } from '../context.js';
import { flag } from '../context.js';
import { humanSize } from '../../base/units.js';
import { BuildCache } from '../../build/cache.js';

/** Reads one line of an answer from stdin ("" at end of input). */
async function answer(stdin: NodeJS.ReadStream): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += chunk.toString();
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0]!.trim();
}

export const builderPrune: Command = {
  spec: {
    name: 'builder prune', usage: 'berth builder prune [OPTIONS]', description: 'Remove build cache', maxArgs: 0,
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused build cache, not just dangling ones' },
      { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
      { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "until=24h")' },
      { name: 'keep-storage', type: 'string', description: 'Amount of disk space to keep for cache' },
    ],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    if (!flag.bool(p, 'force')) {
      ctx.stdout.write(`WARNING! This will remove all ${flag.bool(p, 'all') ? '' : 'dangling '}build cache. Are you sure you want to continue? [y/N] `);
      if (!/^y(es)?$/i.test(await answer(ctx.stdin))) return 0;
    }
    // berth's cache entries are all unused between builds: dangling and all mean the same here.
    const r = new BuildCache(join(engine.paths.root, 'build-cache')).prune();
    if (r.entries.length) {
      ctx.stdout.write('Deleted build cache objects:\n');
      for (const id of r.entries) ctx.stdout.write(`${id.slice(0, 25)}\n`);
      ctx.stdout.write('\n');
    }
    ctx.stdout.write(`Total reclaimed space: ${humanSize(r.bytes)}\n`);
    return 0;
  },
};
