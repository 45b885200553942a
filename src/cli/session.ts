import { join } from 'node:path';
import type { Socket } from 'node:net';
import { pumpAttach, resizeTty } from '../runtime/attach.js';
import { waitExit, awaitAutoRemove } from '../engine/lifecycle.js';
import type { Engine } from '../engine/engine.js';
import type { ContainerRecord } from '../engine/container.js';
import type { CliContext } from './context.js';
import type { FlagSpec } from './args.js';
import { DetachMatcher, parseDetachKeys } from './detach-keys.js';

/** The signals an attached client forwards to the container (Docker's --sig-proxy; not KILL/STOP, not CHLD/PIPE/WINCH). */
export const PROXIED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGALRM'];

/** --detach-keys of run, start, attach and exec. */
export const DETACH_KEYS_FLAG: FlagSpec = { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' };

export interface SessionOptions {
  stdin: boolean;
  autoRemove: boolean;
  sigProxy?: boolean;
  /** The detach sequence (parseDetachKeys); Docker's ctrl-p,ctrl-q when absent. Only a tty with stdin has one. */
  detachKeys?: Buffer;
  /** Resize the tty to one more row and column first, so the program redraws (Docker's attach does). */
  nudgeSize?: boolean;
}

/**
 * The terminal side of an attached container: raw mode and resizes for -t, stdin for -i, signal proxying
 * (without a tty, the signals above go to the container, as docker's --sig-proxy does), then the exit code.
 * With a tty and stdin, typing the detach keys ends the session with 'detached' and leaves the container running.
 * With autoRemove the container is removed before returning (unless its monitor's exit command did it first).
 */
export async function attachSession(
  ctx: CliContext, engine: Engine, rec: ContainerRecord, sock: Socket, o: SessionOptions,
): Promise<number | 'detached'> {
  const tty = rec.Config.Tty;
  // process.stdin is only touched when used: creating it costs time and can keep the process alive.
  const stdin = o.stdin ? ctx.stdin : undefined;
  const raw = tty && !!stdin?.isTTY;
  if (raw) stdin!.setRawMode(true);
  const ctl = join(engine.containers.dir(rec.Id), 'ctl');
  const onResize = () => resizeTty(ctl, ctx.stdout.rows || 24, ctx.stdout.columns || 80);
  if (tty && ctx.stdout.isTTY) {
    ctx.stdout.on('resize', onResize);
    const size = ttySize(ctx);
    if (o.nudgeSize && size) {
      resizeTty(ctl, size.rows + 1, size.cols + 1);
      resizeTty(ctl, size.rows, size.cols);
    }
  }
  const matcher = tty && stdin ? new DetachMatcher(o.detachKeys ?? parseDetachKeys('')) : undefined;
  const handlers = new Map<NodeJS.Signals, () => void>();
  if (!tty && o.sigProxy !== false) {
    for (const sig of PROXIED_SIGNALS) {
      const h = () => void engine.runtimeFor(rec).kill(rec.Id, sig).catch(() => undefined);
      handlers.set(sig, h);
      process.on(sig, h);
    }
  }
  let end;
  try {
    end = await pumpAttach(sock, {
      stdout: ctx.stdout, stderr: ctx.stderr, ...(stdin ? { stdin } : {}),
      ...(matcher ? { filter: (d: Buffer) => matcher.push(d), flush: () => matcher.flush() } : {}),
    });
  } finally {
    if (raw) stdin!.setRawMode(false);
    ctx.stdout.off('resize', onResize);
    for (const [sig, h] of handlers) process.off(sig, h);
    stdin?.destroy();
  }
  if (end.detached) return 'detached';
  let code = end.exit?.exitCode;
  if (code === undefined) {
    const after = await waitExit(engine, rec.Id);
    code = after?.State.ExitCode ?? 125;
  }
  if (o.autoRemove) await awaitAutoRemove(engine, rec);
  return code;
}

/**
 * What Docker's attach and exec do after the detach keys: the client's error "read escape sequence", exit 1
 * (run and start exit 0 silently).
 */
export function reportDetached(ctx: CliContext): number {
  ctx.stderr.write('read escape sequence\n');
  return 1;
}

/** The terminal's size, if stdout is one that knows it (a fresh pty reports 0x0: the monitor's default applies). */
export function ttySize(ctx: CliContext): { rows: number; cols: number } | undefined {
  const { rows, columns } = ctx.stdout;
  return ctx.stdout.isTTY && rows > 0 && columns > 0 ? { rows, cols: columns } : undefined;
}

/**
 * Docker's check before attaching stdin to a tty (run -it, start -ai, exec -it): stdin must be a terminal.
 * Docker exits 1 on it, not 125: callers print the error and return that.
 */
export function notATty(ctx: CliContext): boolean {
  if (ctx.stdin.isTTY) return false;
  ctx.stderr.write('Error: the input device is not a TTY\n');
  return true;
}
