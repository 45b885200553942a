import type { Command } from '../context.js';
import { flag } from '../context.js';
import { streamLogs } from '../../engine/logs.js';
import { parseSince } from '../../base/units.js';

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
    // A reader that goes away (`logs -f | head`) ends the command quietly instead of crashing it.
    const gone = new AbortController();
    const onError = (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      gone.abort();
    };
    ctx.stdout.on('error', onError);
    ctx.stderr.on('error', onError);
    await streamLogs(ctx.engine(), p.args[0]!, {
      follow: flag.bool(p, 'follow'),
      signal: gone.signal,
      timestamps: flag.bool(p, 'timestamps'),
      ...(tail !== 'all' ? { tail: Number.isNaN(Number(tail)) ? -1 : Number(tail) } : {}),
      ...(since ? { since: parseSince(since, now) } : {}),
      ...(until ? { until: parseSince(until, now) } : {}),
    }, ctx.stdout, ctx.stderr);
    return 0;
  },
};
