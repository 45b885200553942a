import type { Command } from '../context.js';
import { removeContainer } from '../../engine/lifecycle.js';
import { humanSize } from '../../base/units.js';
import { execFile } from '../../sys/exec.js';

export const containerPrune: Command = {
  spec: {
    name: 'container prune', usage: 'berth container prune [OPTIONS]', description: 'Remove all stopped containers', maxArgs: 0,
    flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' }, { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "until=<timestamp>")' }],
  },
  async run(ctx) {
    const engine = ctx.engine();
    const removed: string[] = [];
    let freed = 0;
    for (const c of engine.containers.list()) {
      if (c.State.Running) continue;
      const r = await execFile('du', ['-sb', c.GraphDriver.Data.UpperDir], { check: false });
      freed += Number(r.stdout.split('\t')[0]) || 0;
      await removeContainer(engine, c.Id);
      removed.push(c.Id);
    }
    if (removed.length) ctx.stdout.write(`Deleted Containers:\n${removed.join('\n')}\n\n`);
    ctx.stdout.write(`Total reclaimed space: ${humanSize(freed)}\n`);
    return 0;
  },
};
