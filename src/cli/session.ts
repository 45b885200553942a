import { join } from 'node:path';
import type { Socket } from 'node:net';
import { pumpAttach, resizeTty } from '../runtime/attach.js';
import { waitExit, removeContainer } from '../engine/lifecycle.js';
import type { Engine } from '../engine/engine.js';
import type { ContainerRecord } from '../engine/container.js';
import type { CliContext } from './context.js';
import { trace } from '../base/trace.js';

/**
 * The terminal side of an attached container: raw mode and resizes for -t, stdin for -i, signal proxying
 * (SIGINT/SIGTERM go to the container, as docker's --sig-proxy does), then the exit code.
 */
export async function attachSession(ctx: CliContext, engine: Engine, rec: ContainerRecord, sock: Socket, o: { stdin: boolean; autoRemove: boolean }): Promise<number> {
  const tty = rec.Config.Tty;
  const stdin = ctx.stdin;
  const raw = tty && o.stdin && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const ctl = join(engine.containers.dir(rec.Id), 'ctl');
  const onResize = () => resizeTty(ctl, ctx.stdout.rows ?? 24, ctx.stdout.columns ?? 80);
  if (tty && ctx.stdout.isTTY) ctx.stdout.on('resize', onResize);
  const proxy = (sig: NodeJS.Signals) => () => void engine.runtime.kill(rec.Id, sig).catch(() => undefined);
  const onInt = proxy('SIGINT');
  const onTerm = proxy('SIGTERM');
  if (!tty) {
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  }
  let exit;
  try {
    exit = await pumpAttach(sock, { stdout: ctx.stdout, stderr: ctx.stderr, ...(o.stdin ? { stdin } : {}) });
  } finally {
    if (raw) stdin.setRawMode(false);
    ctx.stdout.off('resize', onResize);
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    if (o.stdin) stdin.destroy();
  }
  trace('attach: exit frame');
  let code = exit?.exitCode;
  if (code === undefined) {
    const after = await waitExit(engine, rec.Id);
    code = after?.State.ExitCode ?? 125;
  }
  if (o.autoRemove) await removeContainer(engine, rec.Id, { force: true, volumes: true });
  trace('attach: removed');
  return code;
}

/** The terminal's size, if stdout is one that knows it (a fresh pty reports 0x0: the monitor's default applies). */
export function ttySize(ctx: CliContext): { rows: number; cols: number } | undefined {
  const { rows, columns } = ctx.stdout;
  return ctx.stdout.isTTY && rows > 0 && columns > 0 ? { rows, cols: columns } : undefined;
}
