import type { Command } from '../context.js';
import { pruneContainers } from '../../engine/prune.js';
import { humanSize } from '../../base/units.js';

export const containerPrune: Command = {
  spec: {
    name: 'container prune', usage: 'berth container prune [OPTIONS]', description: 'Remove all stopped containers', maxArgs: 0,
    flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' }, { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "until=<timestamp>")' }],
  },
  async run(ctx) {
    const r = await pruneContainers(ctx.engine());
    if (r.deleted.length) ctx.stdout.write(`Deleted Containers:\n${r.deleted.join('\n')}\n\n`);
    ctx.stdout.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
    return 0;
  },
};
