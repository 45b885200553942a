import { existsSync } from 'node:fs';
import type { Command, CliContext } from '../context.js';
import { removeContainer, restartMarker } from '../../engine/lifecycle.js';

/**
 * The command a monitor runs when an auto-remove (--rm) container exits: remove it, quietly and idempotently.
 * Given to every start of such a container, so it goes away even when no berth process is attached.
 */
export function cleanupCommand(ctx: CliContext, id: string): string[] {
  return [process.execPath, process.argv[1]!, '--root', ctx.root, 'container', 'cleanup', '--rm', id];
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
