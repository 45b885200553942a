import type { Command } from '../context.js';
import { flag } from '../context.js';
import { execInContainer } from '../../engine/exec.js';

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
    const { child, cleanup } = execInContainer(ctx.engine(), ref!, {
      cmd, env: flag.strs(p, 'env'), tty: flag.bool(p, 'tty'), interactive: flag.bool(p, 'interactive'), detach: flag.bool(p, 'detach'),
      ...(user !== undefined ? { user } : {}), ...(workdir !== undefined ? { workdir } : {}),
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const code = await new Promise<number>((resolve) => child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 126))));
    cleanup();
    if (flag.bool(p, 'detach') && code !== 0) {
      ctx.stderr.write(`Error: ${stderr.trim().split('\n').pop()}\n`);
      return 126;
    }
    return code;
  },
};
