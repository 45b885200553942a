import type { Command } from '../context.js';
import { flag } from '../context.js';
import { formatRows } from '../template.js';
import { inspectEach } from './inspect.js';
import { forEach } from './lifecycle.js';
import { parseLabels } from '../../engine/create.js';
import { volumeUsers } from '../../engine/lifecycle.js';
import { humanSize } from '../../base/units.js';
import { pruneVolumes } from '../../engine/prune.js';
import { confirmUnlessForced, pruneReport } from '../prune-report.js';
import { pruneFilterOf } from '../filter-flag.js';
import { invalidArgument } from '../../base/errors.js';

/** What `volume prune --filter` takes: labels, and the API's `all` (what --all sets). */
const VOLUME_PRUNE_KEYS = ['label', 'label!', 'all'];

const FORMAT = { name: 'format', short: 'f', type: 'string' as const, description: 'Format output using a custom template' };

export const volumeCreate: Command = {
  spec: {
    name: 'volume create', usage: 'berth volume create [OPTIONS] [VOLUME]', description: 'Create a volume', maxArgs: 1,
    flags: [
      { name: 'label', type: 'strings', description: 'Set metadata for a volume' },
      { name: 'driver', short: 'd', type: 'string', description: 'Specify volume driver name', default: 'local' },
      { name: 'name', type: 'string', description: 'Specify volume name', hidden: true },
    ],
  },
  async run(ctx, p) {
    const driver = flag.str(p, 'driver') ?? 'local';
    if (driver !== 'local') throw new Error(`plugin "${driver}" not found`);
    const v = ctx.engine().volumes.create(p.args[0] ?? flag.str(p, 'name'), { labels: parseLabels(flag.strs(p, 'label')) });
    ctx.stdout.write(`${v.Name}\n`);
    return 0;
  },
};

export const volumeLs: Command = {
  spec: {
    name: 'volume ls', usage: 'berth volume ls [OPTIONS]', description: 'List volumes', maxArgs: 0,
    flags: [{ name: 'quiet', short: 'q', type: 'bool', description: 'Only display volume names' }, { name: 'format', type: 'string', description: 'Format output using a custom template' },
      { name: 'filter', short: 'f', type: 'strings', description: 'Provide filter values (e.g. "dangling=true")' }],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    let vols = engine.volumes.list();
    for (const f of flag.strs(p, 'filter')) {
      const [k, v = ''] = [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)];
      if (k === 'dangling') vols = vols.filter((x) => (volumeUsers(engine, x.Name).length === 0) === (v === 'true' || v === '1'));
      else if (k === 'name') vols = vols.filter((x) => x.Name.includes(v));
      else if (k === 'label') vols = vols.filter((x) => (v.includes('=') ? x.Labels[v.split('=')[0]!] === v.slice(v.indexOf('=') + 1) : v in x.Labels));
      else throw new Error(`invalid filter '${k}'`);
    }
    if (flag.bool(p, 'quiet')) {
      for (const v of vols) ctx.stdout.write(`${v.Name}\n`);
      return 0;
    }
    const rows = vols.map((v) => ({ Driver: v.Driver, Name: v.Name, Mountpoint: v.Mountpoint, Scope: v.Scope, Labels: Object.entries(v.Labels).map(([k, x]) => `${k}=${x}`).join(',') }));
    ctx.stdout.write(formatRows(flag.str(p, 'format'), rows, 'table {{.Driver}}\t{{.Name}}', { Driver: 'DRIVER', Name: 'VOLUME NAME', Mountpoint: 'MOUNTPOINT', Scope: 'SCOPE', Labels: 'LABELS' }));
    return 0;
  },
};

export const volumeInspect: Command = {
  spec: { name: 'volume inspect', usage: 'berth volume inspect [OPTIONS] VOLUME [VOLUME...]', description: 'Display detailed information on one or more volumes', minArgs: 1, flags: [FORMAT] },
  async run(ctx, p) {
    return inspectEach(ctx, p.args, flag.str(p, 'format'), (n) => {
      const { Anonymous: _a, ...v } = ctx.engine().volumes.get(n);
      return v;
    });
  },
};

export const volumeRm: Command = {
  spec: { name: 'volume rm', usage: 'berth volume rm [OPTIONS] VOLUME [VOLUME...]', description: 'Remove one or more volumes', minArgs: 1, flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Force the removal of one or more volumes' }] },
  async run(ctx, p) {
    const engine = ctx.engine();
    return forEach(ctx, p.args, async (n) => {
      engine.volumes.remove(n, volumeUsers(engine, n), flag.bool(p, 'force'));
      return n;
    });
  },
};

export const volumePrune: Command = {
  spec: {
    name: 'volume prune', usage: 'berth volume prune [OPTIONS]', description: 'Remove unused local volumes', maxArgs: 0,
    flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' }, { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused volumes, not just anonymous ones' },
      { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "label=<label>")' }],
  },
  async run(ctx, p) {
    const filter = pruneFilterOf(p, VOLUME_PRUNE_KEYS);
    if (filter.all !== undefined && flag.bool(p, 'all')) throw invalidArgument('conflicting options: cannot specify both --all and --filter all=1');
    const all = flag.bool(p, 'all') || filter.all === true;
    // docker/cli's questions (cli/command/volume/prune.go), chosen by the flag alone.
    const warning = flag.bool(p, 'all') ? 'WARNING! This will remove all local volumes not used by at least one container.' : 'WARNING! This will remove anonymous local volumes not used by at least one container.';
    if (!(await confirmUnlessForced(ctx, p, `${warning}\nAre you sure you want to continue?`))) return 0;
    const r = pruneVolumes(ctx.engine(), { all, filter });
    ctx.stdout.write(pruneReport([['Deleted Volumes:', r.deleted]], humanSize(r.reclaimed)));
    return 0;
  },
};
