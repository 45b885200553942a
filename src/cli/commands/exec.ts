import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { Command } from '../context.js';
import { flag } from '../context.js';
import { execInContainer } from '../../engine/exec.js';
import { parseEnvFile } from '../../engine/create.js';
import { isBerthError } from '../../base/errors.js';
import { errorMessage } from '../exit.js';
import { notATty } from '../session.js';
import { classifyStartError } from '../../runtime/runc.js';

/**
 * Docker's exit codes for exec: the process's own code; 126/127 when the command cannot be invoked or found;
 * 1 for everything the engine refuses (no such container, not running, paused, bad flags) and for a failed
 * detached start.
 */
export const exec: Command = {
  spec: {
    name: 'exec', usage: 'berth exec [OPTIONS] CONTAINER COMMAND [ARG...]', description: 'Execute a command in a running container', minArgs: 2, interspersed: false,
    flags: [
      { name: 'detach', short: 'd', type: 'bool', description: 'Detached mode: run command in the background' },
      { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
      { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
      { name: 'env', short: 'e', type: 'strings', description: 'Set environment variables' },
      { name: 'env-file', type: 'strings', description: 'Read in a file of environment variables' },
      { name: 'user', short: 'u', type: 'string', description: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
      { name: 'workdir', short: 'w', type: 'string', description: 'Working directory inside the container' },
      { name: 'privileged', type: 'bool', description: 'Give extended privileges to the command' },
    ],
  },
  startsProcess: true,
  async run(ctx, p) {
    const [ref, ...cmd] = p.args;
    const user = flag.str(p, 'user');
    const workdir = flag.str(p, 'workdir');
    const detach = flag.bool(p, 'detach');
    const tty = flag.bool(p, 'tty');
    const interactive = flag.bool(p, 'interactive');
    const fail = (msg: string) => {
      ctx.stderr.write(`Error: ${msg}\n`);
      return 1;
    };
    let started;
    try {
      ctx.engine().containers.resolve(ref!); // "No such container" before anything else, as Docker
      if (!detach && interactive && tty && notATty(ctx)) return 1;
      const env: string[] = [];
      for (const f of flag.strs(p, 'env-file')) {
        let text: string;
        try {
          text = readFileSync(f, 'utf8');
        } catch {
          return fail(`open ${f}: no such file or directory`);
        }
        env.push(...parseEnvFile(text));
      }
      env.push(...flag.strs(p, 'env'));
      // The runtime proxies the terminal through whichever of our stdio is one; with none, berth relays the pty.
      const relayTty = tty && !detach && !ctx.stdin.isTTY && !ctx.stdout.isTTY && !ctx.stderr.isTTY;
      started = execInContainer(ctx.engine(), ref!, {
        cmd, env, tty, interactive, detach, relayTty, privileged: flag.bool(p, 'privileged'),
        ...(user !== undefined ? { user } : {}), ...(workdir !== undefined ? { workdir } : {}),
      });
    } catch (e) {
      if (!detach && (isBerthError(e, 'command-not-found') || isBerthError(e, 'cannot-invoke'))) throw e;
      return fail(errorMessage(e));
    }
    const { child, cleanup, failure } = started;
    const code = await new Promise<number>((resolve) => {
      child.on('error', () => resolve(126));
      child.on('close', (c, sig) => resolve(c ?? 128 + ((sig && constants.signals[sig]) || 0)));
    });
    const why = failure();
    cleanup();
    if (detach && (code !== 0 || why !== undefined)) return fail(why ?? `exec failed: the runtime exited ${code}`);
    if (why !== undefined) {
      // A relayed tty whose runtime failed to start the process: Docker's 127 (not found) or 126.
      ctx.stderr.write(`Error: ${why}\n`);
      return isBerthError(classifyStartError(why), 'command-not-found') ? 127 : 126;
    }
    return code;
  },
};
