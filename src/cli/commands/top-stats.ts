import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from '../context.js';
import { flag } from '../context.js';
import { conflict } from '../../base/errors.js';
import { execFile } from '../../sys/exec.js';
import { readStats, containerCgroupPath } from '../../runtime/cgroups.js';
import { alignColumns } from '../table.js';
import { formatRows } from '../template.js';
import { bytesSize } from '../../base/units.js';
import type { ContainerRecord } from '../../engine/container.js';

export const top: Command = {
  spec: { name: 'top', usage: 'berth top CONTAINER [ps OPTIONS]', description: 'Display the running processes of a container', minArgs: 1, interspersed: false, flags: [] },
  async run(ctx, p) {
    const engine = ctx.engine();
    const rec = engine.containers.resolve(p.args[0]!);
    if (!rec.State.Running) throw conflict(`container ${rec.Id} is not running`);
    const pids = new Set((await engine.runtimeFor(rec).pids(rec.Id)).map(String));
    const psArgs = p.args.length > 1 ? p.args.slice(1) : ['-ef'];
    const out = (await execFile('ps', psArgs)).stdout.split('\n').filter(Boolean);
    const header = out[0]!.trim().split(/\s+/);
    const pidCol = header.indexOf('PID');
    const rows = [header];
    for (const line of out.slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (pidCol >= 0 && pids.has(cols[pidCol]!)) {
        // The last column (CMD) may contain spaces: keep it whole.
        rows.push([...cols.slice(0, header.length - 1), cols.slice(header.length - 1).join(' ')]);
      }
    }
    ctx.stdout.write(alignColumns(rows) + '\n');
    return 0;
  },
};

function cpuTotalNs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const ticks = line.split(/\s+/).slice(1, 8).map(Number).reduce((a, b) => a + b, 0);
  return ticks * 1e7; // USER_HZ is 100
}

function sample(rec: ContainerRecord) {
  return { s: readStats(containerCgroupPath(rec.Id)), sys: cpuTotalNs() };
}

export const stats: Command = {
  spec: {
    name: 'stats', usage: 'berth stats [OPTIONS] [CONTAINER...]', description: 'Display a snapshot of container resource usage statistics',
    flags: [
      { name: 'no-stream', type: 'bool', description: 'Disable streaming stats and only pull the first result' },
      { name: 'all', short: 'a', type: 'bool', description: 'Show all containers (default shows just running)' },
      { name: 'format', type: 'string', description: 'Format output using a custom template' },
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
    ],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    const recs = p.args.length ? p.args.map((r) => engine.containers.resolve(r)) : engine.containers.list().filter((c) => flag.bool(p, 'all') || c.State.Running);
    const ncpu = cpus().length;
    for (;;) {
      const before = recs.map(sample);
      await sleep(500);
      const rows = recs.map((rec, i) => {
        const a = before[i]!;
        const b = sample(rec);
        const running = engine.containers.read(rec.Id)?.State.Running ?? false;
        const cpu = running && b.sys > a.sys ? ((b.s.cpuUsageNs - a.s.cpuUsageNs) / (b.sys - a.sys)) * ncpu * 100 : 0;
        const limit = Number.isFinite(b.s.memoryLimit) && b.s.memoryLimit < 2 ** 62 ? b.s.memoryLimit : (hostMemTotal());
        return {
          Container: rec.Id.slice(0, 12), ID: rec.Id.slice(0, 12), Name: rec.Name.slice(1),
          CPUPerc: `${Math.max(0, cpu).toFixed(2)}%`,
          MemUsage: running ? `${bytesSize(b.s.memoryUsage)} / ${bytesSize(limit)}` : '0B / 0B',
          MemPerc: running && limit ? `${((b.s.memoryUsage / limit) * 100).toFixed(2)}%` : '0.00%',
          NetIO: '0B / 0B', BlockIO: '0B / 0B', PIDs: String(running ? b.s.pids : 0),
        };
      });
      const headers = { Container: 'CONTAINER', ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' };
      const def = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
      const text = formatRows(flag.str(p, 'format'), rows, def, headers);
      if (flag.bool(p, 'no-stream')) {
        ctx.stdout.write(text);
        return 0;
      }
      ctx.stdout.write(`\x1b[2J\x1b[H${text}`);
    }
  },
};

let memTotal: number | undefined;
function hostMemTotal(): number {
  if (memTotal === undefined) {
    const m = /MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    memTotal = m ? Number(m[1]) * 1024 : 0;
  }
  return memTotal;
}
