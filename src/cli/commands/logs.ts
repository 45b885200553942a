import type { Command } from '../context.js';
import { flag } from '../context.js';
import { streamLogs } from '../../engine/logs.js';
import { parseSince } from '../units.js';

export const logs: Command = {
  spec: {
    name: 'logs', usage: 'berth logs [OPTIONS] CONTAINER', description: 'Fetch the logs of a container', minArgs: 1, maxArgs: 1,
    flags: [
      { name: 'follow', short: 'f', type: 'bool', description: 'Follow log output' },
      { name: 'tail', short: 'n', type: 'string', description: 'Number of lines to show from the end of the logs', default: 'all' },
      { name: 'since', type: 'string', description: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
      { name: 'until', type: 'string', description: 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
      { name: 'timestamps', short: 't', type: 'bool', description: 'Show timestamps' },
      { name: 'details', type: 'bool', description: 'Show extra details provided to logs' },
    ],
  },
  async run(ctx, p) {
    const tail = flag.str(p, 'tail') ?? 'all';
    const now = new Date();
    const since = flag.str(p, 'since');
    const until = flag.str(p, 'until');
    await streamLogs(ctx.engine(), p.args[0]!, {
      follow: flag.bool(p, 'follow'),
      timestamps: flag.bool(p, 'timestamps'),
      ...(tail !== 'all' ? { tail: Number.isNaN(Number(tail)) ? -1 : Number(tail) } : {}),
      ...(since ? { since: Number(parseSince(since, now)) / 1e9 } : {}),
      ...(until ? { until: Number(parseSince(until, now)) / 1e9 } : {}),
    }, ctx.stdout, ctx.stderr);
    return 0;
  },
};
