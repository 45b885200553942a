import { trace } from '../../base/trace.js';
import type { Command } from '../context.js';
import { flag } from '../context.js';
import { CREATE_FLAGS, createOptions } from './container-flags.js';
import { createContainer } from '../../engine/create.js';
import { startContainer } from '../../engine/start.js';
import { removeContainer } from '../../engine/lifecycle.js';
import { attachSession, ttySize, notATty, DETACH_KEYS_FLAG } from '../session.js';
import { parseDetachKeys } from '../detach-keys.js';
import { errorMessage } from '../exit.js';
import { parseBytes } from '../../base/units.js';
import { cleanupCommand } from './cleanup.js';

export const run: Command = {
  spec: {
    name: 'run',
    usage: 'berth run [OPTIONS] IMAGE [COMMAND] [ARG...]',
    description: 'Create and run a new container from an image',
    flags: [
      { name: 'detach', short: 'd', type: 'bool', description: 'Run container in background and print container ID' },
      { name: 'sig-proxy', type: 'bool', default: true, description: 'Proxy received signals to the process' },
      DETACH_KEYS_FLAG,
      ...CREATE_FLAGS,
    ],
    minArgs: 1,
    interspersed: false,
  },
  startsProcess: true,
  async run(ctx, p) {
    const engine = ctx.engine();
    const o = createOptions(p, parseBytes);
    const detach = flag.bool(p, 'detach');
    if (!detach && o.interactive && o.tty && notATty(ctx)) return 1; // checked before anything is created, as Docker
    let keys: Buffer | undefined;
    if (!detach) {
      try {
        keys = parseDetachKeys(flag.str(p, 'detach-keys') ?? '');
      } catch (e) {
        // Docker's attach refuses them with exit 1 (not 125); berth checks before creating anything.
        ctx.stderr.write(`Error: ${errorMessage(e)}\n`);
        return 1;
      }
    }
    const rec = createContainer(engine, o);
    trace('run: created');
    // With --rm the monitor removes the container on exit even if this process is gone by then.
    const exit = o.autoRemove ? { exitCommand: cleanupCommand(ctx, rec.Id) } : {};
    try {
      if (detach) {
        await startContainer(engine, rec.Id, exit);
        ctx.stdout.write(`${rec.Id}\n`);
        return 0;
      }
      const size = o.tty ? ttySize(ctx) : undefined;
      const started = await startContainer(engine, rec.Id, { attach: true, ...(size ? { ttySize: size } : {}), ...exit });
      const code = await attachSession(ctx, engine, started.rec, started.attach!, {
        stdin: !!o.interactive, autoRemove: !!o.autoRemove, sigProxy: flag.bool(p, 'sig-proxy'), ...(keys ? { detachKeys: keys } : {}),
      });
      return code === 'detached' ? 0 : code; // Docker's run detaches silently
    } catch (e) {
      if (o.autoRemove) await removeContainer(engine, rec.Id, { force: true, volumes: true }).catch(() => undefined);
      throw e;
    }
  },
};
