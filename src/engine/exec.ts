import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { conflict } from '../base/errors.js';
import { resolveUser } from '../security/users.js';
import { capabilitiesFromMask } from '../security/capabilities.js';
import { mergeEnv, expandEnvArg } from './create.js';
import { checkExecutable } from './start.js';
import type { Engine } from './engine.js';
import type { RuntimeSpec } from '../runtime/spec.js';

export interface ExecOptions {
  cmd: string[];
  env?: string[];
  user?: string;
  workdir?: string;
  tty?: boolean;
  interactive?: boolean;
  detach?: boolean;
  privileged?: boolean;
}

/**
 * Runs a process in a running container through `runtime exec`, with the container's own process settings
 * (capabilities, rlimits, no-new-privileges) and the overrides given. In the foreground the runtime proxies
 * the terminal itself. Returns the child; its exit code is the exec'd process's.
 */
export function execInContainer(engine: Engine, ref: string, o: ExecOptions): { child: ChildProcess; cleanup: () => void } {
  const rec = engine.containers.resolve(ref);
  if (!rec.State.Running) throw conflict(`container ${rec.Id} is not running`);
  if (rec.State.Paused) throw conflict(`container ${rec.Id} is paused, unpause the container before exec`);
  const dir = engine.containers.dir(rec.Id);
  const bundle = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as RuntimeSpec;
  const rootfs = rec.GraphDriver.Data.MergedDir;
  const proc = structuredClone(bundle.process!);
  const user = resolveUser(rootfs, o.user ?? rec.Config.User ?? '');
  const userEnv = (o.env ?? []).flatMap((e) => expandEnvArg(e));
  proc.args = o.cmd;
  proc.env = mergeEnv(proc.env ?? [], userEnv);
  proc.cwd = o.workdir ?? proc.cwd ?? '/';
  proc.terminal = !!o.tty;
  proc.user = { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) };
  if (o.privileged) {
    // Every capability berth itself holds (Docker's privileged exec); seccomp stays the container's.
    const m = /CapBnd:\s*(\w+)/.exec(readFileSync('/proc/self/status', 'utf8'));
    const caps = m ? capabilitiesFromMask(m[1]!) : [];
    proc.capabilities = { bounding: caps, effective: caps, permitted: caps };
  }
  checkExecutable(rootfs, o.cmd[0]!, proc.env, proc.cwd);
  const file = join(dir, `exec-${randomBytes(6).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify(proc));
  const stdio = o.detach ? (['ignore', 'ignore', 'pipe'] as const) : ([o.interactive || o.tty ? 'inherit' : 'ignore', 'inherit', 'inherit'] as const);
  const child = engine.runtime.exec(rec.Id, file, { tty: !!o.tty, detach: !!o.detach }, [...stdio]);
  return { child, cleanup: () => rmSync(file, { force: true }) };
}
