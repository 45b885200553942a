import type { Command, CliContext } from '../context.js';
import { flag } from '../context.js';
import { CREATE_FLAGS, createOptions } from './container-flags.js';
import { createContainer } from '../../engine/create.js';
import { startContainer } from '../../engine/start.js';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  stopContainer, killContainer, removeContainer, waitExit, pauseContainer, unpauseContainer, checkSignal, restartMarker,
} from '../../engine/lifecycle.js';
import type { ContainerRecord } from '../../engine/container.js';
import { connectAttach } from '../../runtime/attach.js';
import { waitMonitorGone } from '../../engine/monitor-state.js';
import { attachSession, ttySize, notATty, DETACH_KEYS_FLAG } from '../session.js';
import { parseDetachKeys } from '../detach-keys.js';
import { cleanupCommand } from './cleanup.js';
import { parseBytes } from '../../base/units.js';
import { errorMessage } from '../exit.js';

/**
 * Runs `fn` for each argument like Docker's multi-container commands: prints each success, reports each failure
 * on stderr, and exits 1 if any failed.
 */
async function forEach(ctx: CliContext, refs: string[], fn: (ref: string) => Promise<string | undefined>): Promise<number> {
  let failed = 0;
  for (const ref of refs) {
    try {
      const out = await fn(ref);
      if (out !== undefined) ctx.stdout.write(`${out}\n`);
    } catch (e) {
      failed++;
      ctx.stderr.write(`Error: ${errorMessage(e)}\n`);
    }
  }
  return failed ? 1 : 0;
}

export const create: Command = {
  spec: { name: 'create', usage: 'berth create [OPTIONS] IMAGE [COMMAND] [ARG...]', description: 'Create a new container', flags: CREATE_FLAGS, minArgs: 1, interspersed: false },
  startsProcess: true,
  async run(ctx, p) {
    const rec = createContainer(ctx.engine(), createOptions(p, parseBytes));
    ctx.stdout.write(`${rec.Id}\n`);
    return 0;
  },
};

export const start: Command = {
  spec: {
    name: 'start', usage: 'berth start [OPTIONS] CONTAINER [CONTAINER...]', description: 'Start one or more stopped containers', minArgs: 1,
    flags: [
      { name: 'attach', short: 'a', type: 'bool', description: "Attach STDOUT/STDERR and forward signals" },
      { name: 'interactive', short: 'i', type: 'bool', description: "Attach container's STDIN" },
      DETACH_KEYS_FLAG,
    ],
  },
  // Docker's start reports every failure with exit 1, also a command that cannot be found.
  async run(ctx, p) {
    const engine = ctx.engine();
    const attach = flag.bool(p, 'attach') || flag.bool(p, 'interactive');
    if (attach) {
      if (p.args.length > 1) throw new Error('you cannot start and attach multiple containers at once');
      const rec = engine.containers.resolve(p.args[0]!);
      const stdin = flag.bool(p, 'interactive') && rec.Config.OpenStdin;
      if (stdin && rec.Config.Tty && notATty(ctx)) return 1;
      const detachKeys = parseDetachKeys(flag.str(p, 'detach-keys') ?? ''); // Docker's attach refuses bad ones before the start
      const size = rec.Config.Tty ? ttySize(ctx) : undefined;
      const started = await startContainer(engine, rec.Id, { attach: true, ...(size ? { ttySize: size } : {}), ...autoRemoveExit(ctx, rec) });
      let sock = started.attach;
      if (!sock) {
        // Already running: attach to it, as Docker does.
        try {
          sock = await connectAttach(join(engine.containers.dir(rec.Id), 'attach.sock'));
        } catch {
          return (await waitExit(engine, rec.Id))?.State.ExitCode ?? 0; // it exited meanwhile
        }
      }
      const code = await attachSession(ctx, engine, started.rec, sock, { stdin, autoRemove: rec.HostConfig.AutoRemove, detachKeys });
      return code === 'detached' ? 0 : code; // Docker's start -a detaches silently
    }
    const failed: string[] = [];
    for (const ref of p.args) {
      try {
        const rec = engine.containers.resolve(ref);
        await startContainer(engine, rec.Id, autoRemoveExit(ctx, rec));
        ctx.stdout.write(`${ref}\n`);
      } catch (e) {
        failed.push(ref);
        ctx.stderr.write(`Error: ${errorMessage(e)}\n`);
      }
    }
    if (failed.length) ctx.stderr.write(`Error: failed to start containers: ${failed.join(', ')}\n`);
    return failed.length ? 1 : 0;
  },
};

/** An auto-remove (--rm) container is removed by its monitor's exit command, whoever started it. */
function autoRemoveExit(ctx: CliContext, rec: ContainerRecord): { exitCommand?: string[] } {
  return rec.HostConfig.AutoRemove ? { exitCommand: cleanupCommand(ctx, rec.Id) } : {};
}

const TIME_FLAGS = [
  { name: 'time', short: 't', type: 'int' as const, description: 'Seconds to wait before killing the container' },
  { name: 'timeout', type: 'int' as const, description: 'Seconds to wait before killing the container', hidden: true },
  { name: 'signal', short: 's', type: 'string' as const, description: 'Signal to send to the container' },
];

function stopTimeout(p: Parameters<Command['run']>[1]): number | undefined {
  return flag.num(p, 'time') ?? flag.num(p, 'timeout');
}

export const stop: Command = {
  spec: { name: 'stop', usage: 'berth stop [OPTIONS] CONTAINER [CONTAINER...]', description: 'Stop one or more running containers', minArgs: 1, flags: TIME_FLAGS },
  async run(ctx, p) {
    const t = stopTimeout(p);
    const sig = flag.str(p, 'signal');
    if (sig) checkSignal(sig);
    return forEach(ctx, p.args, async (ref) => {
      await stopContainer(ctx.engine(), ref, { ...(t !== undefined ? { timeoutSec: t } : {}), ...(sig ? { signal: sig } : {}) });
      return ref;
    });
  },
};

export const restart: Command = {
  spec: { name: 'restart', usage: 'berth restart [OPTIONS] CONTAINER [CONTAINER...]', description: 'Restart one or more containers', minArgs: 1, flags: TIME_FLAGS },
  async run(ctx, p) {
    const t = stopTimeout(p);
    const sig = flag.str(p, 'signal');
    if (sig) checkSignal(sig);
    return forEach(ctx, p.args, async (ref) => {
      const engine = ctx.engine();
      const rec = engine.containers.resolve(ref);
      const marker = restartMarker(engine, rec.Id);
      writeFileSync(marker, '');
      try {
        await stopContainer(engine, rec.Id, { ...(t !== undefined ? { timeoutSec: t } : {}), ...(sig ? { signal: sig } : {}) });
        await startContainer(engine, rec.Id, autoRemoveExit(ctx, rec));
      } finally {
        rmSync(marker, { force: true });
      }
      return ref;
    });
  },
};

export const kill: Command = {
  spec: {
    name: 'kill', usage: 'berth kill [OPTIONS] CONTAINER [CONTAINER...]', description: 'Kill one or more running containers', minArgs: 1,
    flags: [{ name: 'signal', short: 's', type: 'string', description: 'Signal to send to the container', default: 'KILL' }],
  },
  async run(ctx, p) {
    const sig = checkSignal(flag.str(p, 'signal') ?? 'KILL');
    return forEach(ctx, p.args, async (ref) => {
      await killContainer(ctx.engine(), ref, sig);
      return ref;
    });
  },
};

export const rm: Command = {
  spec: {
    name: 'rm', usage: 'berth rm [OPTIONS] CONTAINER [CONTAINER...]', description: 'Remove one or more containers', minArgs: 1,
    flags: [
      { name: 'force', short: 'f', type: 'bool', description: 'Force the removal of a running container (uses SIGKILL)' },
      { name: 'volumes', short: 'v', type: 'bool', description: 'Remove anonymous volumes associated with the container' },
    ],
  },
  async run(ctx, p) {
    const force = flag.bool(p, 'force');
    return forEach(ctx, p.args, async (ref) => {
      await removeContainer(ctx.engine(), ref, { force, volumes: flag.bool(p, 'volumes') });
      return ref;
    });
  },
};

export const wait: Command = {
  spec: { name: 'wait', usage: 'berth wait CONTAINER [CONTAINER...]', description: 'Block until one or more containers stop, then print their exit codes', minArgs: 1, flags: [] },
  async run(ctx, p) {
    return forEach(ctx, p.args, async (ref) => {
      const rec = ctx.engine().containers.resolve(ref);
      const after = await waitExit(ctx.engine(), rec.Id);
      // Its monitor's cleanup too, so a `start` or `rm` right after does not race it.
      await waitMonitorGone(ctx.engine(), rec.Id);
      return String(after?.State.ExitCode ?? rec.State.ExitCode);
    });
  },
};

/** A command that applies one engine call to each container named and prints each name (pause, unpause). */
function eachContainer(name: string, description: string, fn: (engine: ReturnType<CliContext['engine']>, ref: string) => Promise<void>): Command {
  return {
    spec: { name, usage: `berth ${name} CONTAINER [CONTAINER...]`, description, minArgs: 1, flags: [] },
    async run(ctx, p) {
      return forEach(ctx, p.args, async (ref) => {
        await fn(ctx.engine(), ref);
        return ref;
      });
    },
  };
}

export const pause = eachContainer('pause', 'Pause all processes within one or more containers', pauseContainer);
export const unpause = eachContainer('unpause', 'Unpause all processes within one or more containers', unpauseContainer);

export const rename: Command = {
  spec: { name: 'rename', usage: 'berth rename CONTAINER NEW_NAME', description: 'Rename a container', minArgs: 2, maxArgs: 2, flags: [] },
  async run(ctx, p) {
    const rec = ctx.engine().containers.resolve(p.args[0]!);
    ctx.engine().containers.rename(rec.Id, p.args[1]!);
    return 0;
  },
};

export { forEach };
