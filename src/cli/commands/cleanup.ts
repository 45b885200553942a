import { resolve } from 'node:path';
import type { Command, CliContext } from '../context.js';
import { removeContainer } from '../../engine/lifecycle.js';

/** The command a monitor runs when a `run -d --rm` container exits: remove it, quietly and idempotently. */
export function cleanupCommand(ctx: CliContext, id: string): string[] {
  const self = process.env.BERTH_BIN ? [resolve(process.env.BERTH_BIN)] : [process.execPath, process.argv[1]!];
  return [...self, '--root', ctx.root, 'container', 'cleanup', '--rm', id];
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
      await removeContainer(ctx.engine(), p.args[0]!, { force: true, volumes: true });
    } catch {
      // already removed by an attached client
    }
    return 0;
  },
};
