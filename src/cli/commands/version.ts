import type { Command } from '../context.js';
import { flag } from '../context.js';
import { renderTemplate } from '../template.js';
import { cgroupVersion } from '../../runtime/cgroups.js';
import { execFile } from '../../sys/exec.js';

const BERTH_VERSION = '0.1.0';

export const version: Command = {
  spec: { name: 'version', usage: 'berth version [OPTIONS]', description: 'Show the berth version information', maxArgs: 0, flags: [{ name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' }] },
  async run(ctx, p) {
    const runtime = ctx.runtime ?? 'runc';
    const rv = (await execFile(runtime, ['--version'], { check: false }).catch(() => ({ stdout: 'unavailable' }))).stdout.split('\n')[0] ?? '';
    const data = { Client: { Version: BERTH_VERSION, Os: 'linux', Arch: process.arch === 'x64' ? 'amd64' : process.arch, GoVersion: `node ${process.version}` }, Runtime: { Name: runtime, Version: rv } };
    const f = flag.str(p, 'format');
    if (f) ctx.stdout.write(renderTemplate(f, data) + '\n');
    else ctx.stdout.write(`Client: berth\n Version:    ${BERTH_VERSION}\n Node:       ${process.version}\n OS/Arch:    linux/${data.Client.Arch}\n\nRuntime:\n ${runtime}:  ${rv}\n`);
    return 0;
  },
};

export const info: Command = {
  spec: { name: 'info', usage: 'berth info [OPTIONS]', description: 'Display system-wide information', maxArgs: 0, flags: [{ name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' }] },
  async run(ctx, p) {
    const e = ctx.engine();
    const cs = e.containers.list();
    const data = {
      Containers: cs.length, ContainersRunning: cs.filter((c) => c.State.Running && !c.State.Paused).length,
      ContainersPaused: cs.filter((c) => c.State.Paused).length, ContainersStopped: cs.filter((c) => !c.State.Running).length,
      Images: e.images.list().length, Driver: 'overlay', DockerRootDir: ctx.root, CgroupVersion: String(cgroupVersion()),
      CgroupDriver: 'cgroupfs', DefaultRuntime: ctx.runtime ?? 'runc', ServerVersion: BERTH_VERSION, OperatingSystem: 'linux',
    };
    const f = flag.str(p, 'format');
    if (f) ctx.stdout.write(renderTemplate(f, data) + '\n');
    else ctx.stdout.write(Object.entries(data).map(([k, v]) => ` ${k}: ${v}`).join('\n') + '\n');
    return 0;
  },
};
