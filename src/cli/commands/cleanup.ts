import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command, CliContext } from '../context.js';
import { removeContainer, restartMarker } from '../../engine/lifecycle.js';

/**
 * The command a monitor runs when an auto-remove (--rm) container exits: remove it, quietly and idempotently.
 * Given to every start of such a container, so it goes away even when no berth process is attached.
 */
export function cleanupCommand(ctx: CliContext, id: string): string[] {
  return [...selfCommand(), '--root', ctx.root, 'container', 'cleanup', '--rm', id];
}

/**
 * How to run berth again: bin/berth exports its own path as BERTH_BIN (started from a V8 snapshot, process.argv
 * has no script to re-run); else node and the script it runs. Absolute: the monitor runs it from `/`.
 */
export function selfCommand(): string[] {
  const bin = process.env.BERTH_BIN;
  if (bin) return [resolve(bin)];
  return [process.execPath, resolve(process.argv[1]!)];
}

export const cleanup: Command = {
  spec: {
    name: 'container cleanup',
    usage: 'berth container cleanup [--rm] CONTAINER',
    description: 'Release what an exited container holds (run by its monitor)',
    flags: [{ name: 'rm', type: 'bool', description: 'Remove the container' }],
    minArgs: 1,
    maxArgs: 1,
  },
  async run(ctx, p) {
    try {
      const engine = ctx.engine();
      const rec = engine.containers.resolve(p.args[0]!);
      if (existsSync(restartMarker(engine, rec.Id))) return 0; // `restart` stopped it and starts it again
      // Not forced: a container started again meanwhile is left alone.
      await removeContainer(engine, rec.Id, { volumes: true });
    } catch {
      // already removed (by an attached client), or running again
    }
    return 0;
  },
};
