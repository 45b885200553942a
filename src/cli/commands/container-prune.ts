import type { Command } from '../context.js';
import { confirmUnlessForced, pruneReport } from '../prune-report.js';
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
    if (!(await confirmUnlessForced(ctx, p, WARNING))) return 0;
    const r = await pruneContainers(ctx.engine(), pruneFilterOf(p, PRUNE_FILTER_KEYS));
    ctx.stdout.write(pruneReport([['Deleted Containers:', r.deleted]], humanSize(r.reclaimed)));
    return 0;
  },
};
