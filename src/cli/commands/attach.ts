import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { Command } from '../context.js';
import { flag } from '../context.js';
import { conflict } from '../../base/errors.js';
import { connectAttach } from '../../runtime/attach.js';
import { attachSession, notATty, reportDetached, DETACH_KEYS_FLAG } from '../session.js';
import { parseDetachKeys } from '../detach-keys.js';

const STOPPED = 'You cannot attach to a stopped container, start it first';

/**
 * Docker's attach: the container's output (and, unless --no-stdin, its stdin if it was created with -i) through
 * its monitor's attach socket, until the container exits (its exit code) or the detach keys are typed (Docker's
 * "read escape sequence", exit 1). Every refusal exits 1.
 */
export const attach: Command = {
  spec: {
    name: 'attach', usage: 'berth attach [OPTIONS] CONTAINER',
    description: 'Attach local standard input, output, and error streams to a running container', minArgs: 1, maxArgs: 1,
    flags: [
      { name: 'no-stdin', type: 'bool', description: 'Do not attach STDIN' },
      { name: 'sig-proxy', type: 'bool', default: true, description: 'Proxy all received signals to the process' },
      DETACH_KEYS_FLAG,
    ],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    const rec = engine.containers.resolve(p.args[0]!);
    if (!rec.State.Running) throw conflict(STOPPED);
    if (rec.State.Paused) throw conflict('You cannot attach to a paused container, unpause it first');
    const noStdin = flag.bool(p, 'no-stdin');
    if (!noStdin && rec.Config.Tty && notATty(ctx)) return 1;
    const detachKeys = parseDetachKeys(flag.str(p, 'detach-keys') ?? '');
    let sock: Socket;
    try {
      sock = await connectAttach(join(engine.containers.dir(rec.Id), 'attach.sock'));
    } catch {
      throw conflict(STOPPED); // it exited since: its monitor is gone
    }
    const code = await attachSession(ctx, engine, rec, sock, {
      stdin: !noStdin && rec.Config.OpenStdin, autoRemove: rec.HostConfig.AutoRemove, sigProxy: flag.bool(p, 'sig-proxy'),
      detachKeys, nudgeSize: true,
    });
    return code === 'detached' ? reportDetached(ctx) : code;
  },
};
