import type { Command } from '../context.js';
import { flag } from '../context.js';
import { formatRows } from '../template.js';
import { humanDuration, agoText, humanSize } from '../../base/units.js';
import { statusText, type ContainerRecord } from '../../engine/container.js';
import { invalidArgument } from '../../base/errors.js';
import { familiarOrId } from './image-names.js';
import type { Engine } from '../../engine/engine.js';

/** `ps` filters, Docker's names: id, name, label, status, exited, ancestor. */
export function matchesFilters(engine: Engine, c: ContainerRecord, filters: string[]): boolean {
  const groups = new Map<string, string[]>();
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i <= 0) throw invalidArgument(`Bad format of filter (expected name=value)`);
    const k = f.slice(0, i);
    if (!['id', 'name', 'label', 'status', 'exited', 'ancestor', 'before', 'since'].includes(k)) throw invalidArgument(`invalid filter '${k}'`);
    groups.set(k, [...(groups.get(k) ?? []), f.slice(i + 1)]);
  }
  // Values of one key are OR'ed, keys are AND'ed (Docker).
  for (const [k, vals] of groups) {
    const ok = vals.some((v) => {
      switch (k) {
        case 'id': return c.Id.startsWith(v);
        case 'name': return c.Name.slice(1).includes(v);
        case 'label': {
          const j = v.indexOf('=');
          return j < 0 ? v in c.Config.Labels : c.Config.Labels[v.slice(0, j)] === v.slice(j + 1);
        }
        case 'status': return c.State.Status === v;
        case 'exited': return c.State.Status === 'exited' && String(c.State.ExitCode) === v;
        case 'ancestor': {
          try {
            return engine.images.resolve(v).id === c.Image;
          } catch {
            return c.Config.Image === v;
          }
        }
        default: return true;
      }
    });
    if (!ok) return false;
  }
  return true;
}

function quoteCommand(c: ContainerRecord): string {
  const cmd = [c.Path, ...c.Args].join(' ');
  return `"${cmd.length > 20 ? cmd.slice(0, 19) + '…' : cmd}"`;
}

export const ps: Command = {
  spec: {
    name: 'ps', usage: 'berth ps [OPTIONS]', description: 'List containers', maxArgs: 0,
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Show all containers (default shows just running)' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only display container IDs' },
      { name: 'filter', short: 'f', type: 'strings', description: 'Filter output based on conditions provided' },
      { name: 'format', type: 'string', description: 'Format output using a custom template' },
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
      { name: 'latest', short: 'l', type: 'bool', description: 'Show the latest created container (includes all states)' },
      { name: 'last', short: 'n', type: 'int', description: 'Show n last created containers (includes all states)' },
      { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' },
    ],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    const filters = flag.strs(p, 'filter');
    const all = flag.bool(p, 'all') || flag.bool(p, 'latest') || flag.num(p, 'last') !== undefined || filters.some((f) => f.startsWith('status=') || f.startsWith('exited='));
    let list = engine.containers.list()
      .filter((c) => all || c.State.Running)
      .filter((c) => matchesFilters(engine, c, filters))
      .sort((a, b) => b.Created.localeCompare(a.Created));
    if (flag.bool(p, 'latest')) list = list.slice(0, 1);
    const last = flag.num(p, 'last');
    if (last !== undefined && last >= 0) list = list.slice(0, last);
    const noTrunc = flag.bool(p, 'no-trunc');
    if (flag.bool(p, 'quiet')) {
      for (const c of list) ctx.stdout.write(`${noTrunc ? c.Id : c.Id.slice(0, 12)}\n`);
      return 0;
    }
    const now = Date.now();
    const rows = list.map((c) => ({
      ID: noTrunc ? c.Id : c.Id.slice(0, 12),
      Image: c.Config.Image || familiarOrId(engine, c.Image),
      Command: noTrunc ? `"${[c.Path, ...c.Args].join(' ')}"` : quoteCommand(c),
      CreatedAt: new Date(c.Created).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC'),
      RunningFor: agoText(new Date(c.Created), now),
      Ports: '',
      State: c.State.Status,
      Status: statusText(c.State, now, humanDuration),
      Size: flag.bool(p, 'size') ? humanSize(0) : '',
      Names: c.Name.slice(1),
      Labels: Object.entries(c.Config.Labels).map(([k, v]) => `${k}=${v}`).join(','),
      Mounts: c.Mounts.map((m) => m.Name ?? m.Source).join(','),
      Networks: c.HostConfig.NetworkMode,
    }));
    const headers = {
      ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Ports: 'PORTS',
      State: 'STATE', Status: 'STATUS', Size: 'SIZE', Names: 'NAMES', Labels: 'LABELS', Mounts: 'MOUNTS', Networks: 'NETWORKS',
    };
    const def = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';
    ctx.stdout.write(formatRows(flag.str(p, 'format'), rows, def, headers));
    return 0;
  },
};
