import type { Command } from '../context.js';
import { flag } from '../context.js';
import { humanSize } from '../../base/units.js';
import { parseCachePruneFilters } from '../../build/cache-prune.js';
import { pruneBuildCache } from '../../engine/disk-usage.js';
import { confirmUnlessForced, pruneReport } from '../prune-report.js';
import { filterFlagPairs } from '../filter-flag.js';

const WARNING_DANGLING = 'WARNING! This will remove all dangling build cache. Are you sure you want to continue?';
const WARNING_ALL = 'WARNING! This will remove all build cache. Are you sure you want to continue?';

export const builderPrune: Command = {
  spec: {
    name: 'builder prune', usage: 'berth builder prune [OPTIONS]', description: 'Remove build cache', maxArgs: 0,
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused build cache, not just dangling ones' },
      { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
      { name: 'filter', type: 'strings', valueName: 'filter', description: 'Provide filter values (e.g. "until=24h")' },
      { name: 'keep-storage', type: 'bytes', description: 'Amount of disk space to keep for cache' },
    ],
  },
  async run(ctx, p) {
    const pairs = filterFlagPairs(p);
    const all = flag.bool(p, 'all');
    // Checked before asking, so a mistyped filter never waits for an answer.
    const options = { all, ...parseCachePruneFilters(pairs, new Date()), keepBytes: flag.num(p, 'keep-storage') ?? 0 };
    if (!(await confirmUnlessForced(ctx, p, all ? WARNING_ALL : WARNING_DANGLING))) return 0;
    const r = pruneBuildCache(ctx.engine(), options);
    ctx.stdout.write(pruneReport([['Deleted build cache objects:', r.deleted]], humanSize(r.reclaimed, 4)));
    return 0;
  },
};
