import { existsSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { spawnProcess } from '../sys/exec.js';
import { conflict } from '../base/errors.js';
import { resolveUser } from '../security/users.js';
import { capabilitiesFromMask } from '../security/capabilities.js';
import { mergeEnv, expandEnvArg } from './create.js';
import { checkExecutable, containerHostname, processEnv } from './start.js';
import { monitorPath } from '../runtime/monitor.js';
import type { OciRuntime } from '../runtime/runc.js';
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
  /**
   * Foreground with tty only: the client has no terminal the runtime could proxy the pty through, so berth-monitor
   * (--exec-tty) takes the pty master and copies the process's output to our stdout, as Docker does for
   * `exec -t` with redirected stdio. No input reaches the process (Docker refuses -it without a terminal).
   */
  relayTty?: boolean;
  /**
   * Foreground -it: berth-monitor relays the pty (its output straight to our stdout) and takes the process's input
   * from `ExecHandle.input`, so the client can watch the input for its detach keys; `detach()` lets the process
   * run on. The terminal's size follows ours (SIGWINCH), and starts as ttySize.
   */
  relayStdin?: boolean;
  ttySize?: { rows: number; cols: number };
}

/**
 * Runs a process in a running container through `runtime exec`, with the container's own process settings
 * (capabilities, rlimits, no-new-privileges) and the overrides given. In the foreground the runtime proxies
 * the terminal itself, or berth-monitor relays it (relayTty). Detached, the process gets no stdio.
 */
export interface ExecHandle {
  /**
   * The runtime process, or berth-monitor relaying a tty: in the foreground it exits with the exec'd process's code,
   * detached once it started.
   */
  child: ChildProcess;
  /** Why a detached or relayed start failed, as the runtime said (after the child exited); undefined if it did not. */
  failure: () => string | undefined;
  /** Removes the process description (and log) once the child exited (or, relayStdin, detached). */
  cleanup: () => void;
  /** relayStdin: where the process's input goes. */
  input?: NodeJS.WritableStream;
  /**
   * relayStdin: detach from the process, which keeps running with its terminal (the relay holds it until the
   * process ends). Resolves once the relay was told; the child then no longer keeps berth alive.
   */
  detach?: () => Promise<void>;
}

export function execInContainer(engine: Engine, ref: string, o: ExecOptions): ExecHandle {
  const rec = engine.containers.resolve(ref);
  if (!rec.State.Running) throw conflict(`container ${rec.Id} is not running`);
  if (rec.State.Paused) throw conflict(`container ${rec.Id} is paused, unpause the container before exec`);
  const dir = engine.containers.dir(rec.Id);
  const bundle = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as RuntimeSpec;
  // The container's own view (its volumes, binds and tmpfs mounts included) for the user and command lookups.
  const view = `/proc/${rec.State.Pid}/root`;
  const rootfs = rec.State.Pid > 0 && existsSync(view) ? view : rec.GraphDriver.Data.MergedDir;
  const proc = structuredClone(bundle.process!);
  const user = resolveUser(rootfs, o.user ?? rec.Config.User ?? '');
  const userEnv = (o.env ?? []).flatMap((e) => expandEnvArg(e));
  proc.args = o.cmd;
  // Docker's exec environment: the daemon's (PATH, HOSTNAME, TERM with the exec's own tty) and Config.Env, then -e.
  const home = (proc.env ?? []).find((e) => e.startsWith('HOME='))?.slice(5) ?? (user.home || '/');
  proc.env = mergeEnv(processEnv(rec.Config, containerHostname(rec), home, !!o.tty), userEnv);
  proc.cwd = o.workdir ?? proc.cwd ?? '/';
  proc.terminal = !!o.tty;
  if (o.tty && o.ttySize) proc.consoleSize = { height: o.ttySize.rows, width: o.ttySize.cols };
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
  // A detached tty needs someone to hold the pty master as well (runc cannot detach with a terminal otherwise).
  if (o.tty && (o.relayTty || o.relayStdin || o.detach)) {
    return relayTty(engine.runtimeFor(rec), rec.Id, dir, file, o.detach ? 'detach' : o.relayStdin ? 'stdin' : 'output');
  }
  if (o.detach) {
    // The detached process inherits the runtime's stdio: give it none (Docker discards its output), and take the
    // runtime's own error from its log file instead of a pipe the process would keep open.
    const log = `${file.slice(0, -'.json'.length)}.log`;
    const child = spawnProcess(engine.runtimeFor(rec).bin, ['--root', engine.runtimeFor(rec).root, '--log', log, '--log-format', 'json', 'exec', '--process', file, '--detach', rec.Id], 'ignore');
    return {
      child,
      failure: () => (child.exitCode === 0 ? undefined : runtimeError(log)),
      cleanup: () => {
        rmSync(file, { force: true });
        rmSync(log, { force: true });
      },
    };
  }
  const stdin = o.interactive || o.tty ? 'inherit' : 'ignore';
  const child = engine.runtimeFor(rec).exec(rec.Id, file, { tty: !!o.tty, detach: false }, [stdin, 'inherit', 'inherit']);
  return { child, failure: () => undefined, cleanup: () => rmSync(file, { force: true }) };
}

/**
 * `exec -t` without a client terminal, `exec -d -t`, and `exec -it` (mode stdin): berth-monitor --exec-tty runs
 * `runtime exec --detach --tty --console-socket` and relays the pty to our stdout (detached: to nowhere, from a
 * process of its own; stdin: also our input to the process); it exits with the process's code (detached: 0 once the
 * process runs), and reports a runtime failure on fd 3.
 */
function relayTty(runtime: OciRuntime, id: string, dir: string, file: string, mode: 'output' | 'detach' | 'stdin'): ExecHandle {
  const tag = basename(file, '.json');
  const pidFile = join(dir, `${tag}.pid`);
  const detach = mode === 'detach';
  const child = spawnProcess(monitorPath(), [
    '--exec-tty', '--runtime', runtime.bin, '--runtime-root', runtime.root, '--id', id, '--dir', dir,
    '--process', file, '--pid-file', pidFile, '--console-name', `${tag}.sock`, '--sync-fd', '3',
    ...(detach ? ['--detach'] : mode === 'stdin' ? ['--stdin'] : []),
  ], detach ? ['ignore', 'ignore', 'ignore', 'pipe'] : [mode === 'stdin' ? 'pipe' : 'ignore', 'inherit', 'inherit', 'pipe'], { detached: detach });
  let sync = '';
  const fd3 = child.stdio[3] as Readable;
  fd3.setEncoding('utf8');
  // The relay takes SIGUSR1 as "detach" once it has reported (its signal mask is set by then).
  const synced = new Promise<void>((resolve) => {
    fd3.on('data', (d: string) => {
      sync += d;
      if (sync.includes('\n')) resolve();
    });
    fd3.on('close', () => resolve());
    child.on('exit', () => resolve());
  });
  child.stdin?.on('error', () => undefined); // the relay is gone: its exit says why
  const stdio = mode === 'stdin' ? {
    input: child.stdin!,
    detach: async () => {
      await synced;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGUSR1');
      child.stdin!.destroy();
      fd3.destroy();
      child.unref();
    },
  } : {};
  return {
    child,
    ...stdio,
    failure: () => {
      try {
        return (JSON.parse(sync.split('\n')[0] ?? '') as { error?: string }).error;
      } catch {
        return undefined;
      }
    },
    cleanup: () => {
      for (const f of [file, pidFile, join(dir, `${tag}.sock`)]) rmSync(f, { force: true });
    },
  };
}

/** The last error a runtime wrote to its --log-format json log, without the runtime's own prefixes. */
function runtimeError(log: string): string | undefined {
  let text = '';
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return undefined;
  }
  let msg: string | undefined;
  for (const line of text.split('\n')) {
    try {
      const e = JSON.parse(line) as { level?: string; msg?: string };
      if (e.level === 'error' && e.msg) msg = e.msg;
    } catch {
      // not a log entry
    }
  }
  return msg;
}
