import type { Command } from '../context.js';
import { flag } from '../context.js';
import { confirm } from '../prompt.js';
import { pruneFilterOf } from '../filter-flag.js';
import { pruneContainers } from '../../engine/prune.js';
import { PRUNE_FILTER_KEYS } from '../../engine/prune-filter.js';
import { humanSize } from '../../base/units.js';

/** docker/cli's question (cli/command/container/prune.go). */
const WARNING = 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?';

export const containerPrune: Command = {
  spec: {
    name: 'container prune', usage: 'berth container prune [OPTIONS]', description: 'Remove all stopped containers', maxArgs: 0,
    flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' }, { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "until=<timestamp>")' }],
  },
  async run(ctx, p) {
    pruneFilterOf(p, PRUNE_FILTER_KEYS);
    if (!flag.bool(p, 'force') && !(await confirm(ctx.stdin, ctx.stdout, WARNING))) return 0;
    const r = await pruneContainers(ctx.engine(), pruneFilterOf(p, PRUNE_FILTER_KEYS));
    if (r.deleted.length) ctx.stdout.write(`Deleted Containers:\n${r.deleted.join('\n')}\n\n`);
    ctx.stdout.write(`Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
    return 0;
  },
};
