import { mkdirSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnProcess } from '../sys/exec.js';
import * as spec from '../runtime/spec.js';
import { removeCgroups } from '../runtime/cgroups.js';
import { resolveInRoot } from '../storage/rootpath.js';
import { resolveUser } from '../security/users.js';
import type { Engine } from '../engine/engine.js';

/** What a `RUN` step executes, after the builder resolved its command, environment and mounts. */
export interface RunStep {
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  network: 'none' | 'host';
  mounts: spec.Mount[];
  onOutput(stream: 'stdout' | 'stderr', data: Buffer): void;
}

function hostNofileHard(): number {
  const m = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? 1048576 : Number(m[1]);
}

/**
 * Runs a build step's command in the mounted step root with the runtime in the foreground (`runc run`), with
 * Docker's default confinement (capabilities, seccomp, masked paths) and no network unless asked. Returns the
 * command's exit code. The runtime state and cgroup are removed afterwards, also on failure.
 */
export async function runStep(engine: Engine, rootfs: string, step: RunStep): Promise<number> {
  const id = `berth-build-${randomBytes(8).toString('hex')}`;
  const bundle = join(engine.paths.tmp, id);
  const cgroup = `/${id}`;
  mkdirSync(bundle, { recursive: true });
  // Docker creates the working directory of RUN if it is missing.
  mkdirSync(resolveInRoot(rootfs, step.cwd), { recursive: true });
  const etc = join(bundle, 'etc');
  mkdirSync(etc);
  writeFileSync(join(etc, 'hosts'), '127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  writeFileSync(join(etc, 'hostname'), 'buildkitsandbox\n');
  let resolv = '';
  try {
    resolv = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // none on the host
  }
  writeFileSync(join(etc, 'resolv.conf'), resolv);
  const user = resolveUser(rootfs, step.user);
  const env = step.env.some((e) => e.startsWith('PATH=')) ? step.env : ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...step.env];
  const s = spec.buildSpec(
    spec.withArgs(step.args),
    spec.withEnv(env),
    spec.withCwd(step.cwd),
    spec.withUser(user),
    spec.withRootfs(rootfs, false),
    spec.withRlimits({ nofile: hostNofileHard() }),
    spec.withCgroupsPath(cgroup),
    spec.withHostname('buildkitsandbox'),
    ...(step.network === 'host' ? [spec.withoutNamespace('network')] : []),
    spec.withMounts([
      spec.bindMount(join(etc, 'hosts'), '/etc/hosts', { readonly: true }),
      spec.bindMount(join(etc, 'hostname'), '/etc/hostname', { readonly: true }),
      spec.bindMount(join(etc, 'resolv.conf'), '/etc/resolv.conf', { readonly: true }),
      ...step.mounts,
    ]),
  );
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(s));
  try {
    const child = spawnProcess(engine.runtime.bin, ['--root', engine.runtime.root, 'run', '--bundle', bundle, id], ['ignore', 'pipe', 'pipe']);
    child.stdout!.on('data', (d: Buffer) => step.onOutput('stdout', d));
    child.stderr!.on('data', (d: Buffer) => step.onOutput('stderr', d));
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    if (existsSync(join(engine.runtime.root, id))) await engine.runtime.delete(id);
    removeCgroups(cgroup);
    rmSync(bundle, { recursive: true, force: true });
  }
}
