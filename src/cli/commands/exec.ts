import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { Command } from '../context.js';
import { flag } from '../context.js';
import { execInContainer } from '../../engine/exec.js';
import { parseEnvFile } from '../../engine/create.js';
import { isBerthError } from '../../base/errors.js';
import { errorMessage } from '../exit.js';
import { notATty, ttySize, reportDetached, DETACH_KEYS_FLAG } from '../session.js';
import { DetachMatcher, parseDetachKeys } from '../detach-keys.js';
import type { ExecHandle } from '../../engine/exec.js';
import type { CliContext } from '../context.js';
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
      DETACH_KEYS_FLAG,
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
    let keys: Buffer;
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
      keys = parseDetachKeys(flag.str(p, 'detach-keys') ?? '', 'escape'); // Docker checks them for every exec
      // -it: berth-monitor relays the pty and berth the input (watching it for the detach keys). -t alone: the
      // runtime proxies the terminal through whichever of our stdio is one; with none, berth-monitor relays the pty.
      const relayStdin = tty && interactive && !detach;
      const relayTty = tty && !detach && !relayStdin && !ctx.stdin.isTTY && !ctx.stdout.isTTY && !ctx.stderr.isTTY;
      const size = relayStdin ? ttySize(ctx) : undefined;
      started = execInContainer(ctx.engine(), ref!, {
        cmd, env, tty, interactive, detach, relayTty, relayStdin, privileged: flag.bool(p, 'privileged'),
        ...(user !== undefined ? { user } : {}), ...(workdir !== undefined ? { workdir } : {}), ...(size ? { ttySize: size } : {}),
      });
    } catch (e) {
      if (!detach && (isBerthError(e, 'command-not-found') || isBerthError(e, 'cannot-invoke'))) throw e;
      return fail(errorMessage(e));
    }
    const { child, cleanup, failure } = started;
    const code = await new Promise<number | 'detached'>((resolve) => {
      child.on('error', () => resolve(126));
      child.on('close', (c, sig) => resolve(c ?? 128 + ((sig && constants.signals[sig]) || 0)));
      if (started.input) relayInput(ctx, started, keys, () => resolve('detached'));
    });
    if (started.input) {
      ctx.stdin.setRawMode(false);
      ctx.stdin.destroy();
    }
    if (code === 'detached') {
      cleanup();
      return reportDetached(ctx); // the process runs on, as after Docker's detach
    }
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

/**
 * `exec -it`: our terminal in raw mode, its input to the process through the relay, watching for the detach keys;
 * `detached` runs once the relay let go of our terminal.
 */
function relayInput(ctx: CliContext, h: ExecHandle, keys: Buffer, detached: () => void): void {
  const stdin = ctx.stdin;
  const input = h.input!;
  const matcher = new DetachMatcher(keys);
  stdin.setRawMode(true);
  stdin.on('data', (d: Buffer) => {
    const { forward, detach } = matcher.push(d);
    if (forward.length) input.write(forward);
    if (detach) {
      stdin.removeAllListeners('data');
      stdin.pause();
      void h.detach!().then(detached);
    }
  });
  stdin.on('end', () => {
    const rest = matcher.flush();
    if (rest.length) input.write(rest);
    input.end();
  });
}
