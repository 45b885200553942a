import type { Command } from '../context.js';
import { flag } from '../context.js';
import { formatRows } from '../template.js';
import { humanSize } from '../../base/units.js';
import { diskUsage, type UsageRow } from '../../engine/disk-usage.js';

/** Docker's RECLAIMABLE cell: the size, and its share of the total when there is a total. */
function reclaimable(r: UsageRow, percent: boolean): string {
  const s = humanSize(r.reclaimable);
  return percent && r.size > 0 ? `${s} (${Math.floor((r.reclaimable * 100) / r.size)}%)` : s;
}

export const systemDf: Command = {
  spec: {
    name: 'system df', usage: 'berth system df [OPTIONS]', description: 'Show docker disk usage', maxArgs: 0,
    flags: [{ name: 'format', type: 'string', description: 'Format output using a custom template' }],
  },
  async run(ctx, p) {
    const u = diskUsage(ctx.engine());
    const rows = ([['Images', u.images, true], ['Containers', u.containers, true], ['Local Volumes', u.volumes, true], ['Build Cache', u.buildCache, false]] as const)
      .map(([type, r, pct]) => ({ Type: type, TotalCount: String(r.total), Active: String(r.active), Size: humanSize(r.size), Reclaimable: reclaimable(r, pct) }));
    ctx.stdout.write(formatRows(flag.str(p, 'format'), rows, 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
      { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' }));
    return 0;
  },
};
