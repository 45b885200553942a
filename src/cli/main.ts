import { trace } from '../base/trace.js';
import { parseArgs, helpText, splitGlobal, usageError } from './args.js';
import { makeContext, type Command } from './context.js';
import { exitCodeFor, errorMessage, UsageError } from './exit.js';
import { rootFromEnv } from '../base/paths.js';
import { isBerthError } from '../base/errors.js';
import { COMMANDS, ALIASES } from './commands/index.js';

export const VERSION = '0.1.0';

/** berth's entry point: global flags, then one command; every error becomes one line and Docker's exit code. */
export async function main(argv: string[]): Promise<number> {
  trace('main');
  const names = [...Object.keys(COMMANDS), ...Object.keys(ALIASES)];
  let split;
  try {
    split = splitGlobal(argv, names);
  } catch (e) {
    process.stderr.write(`Error: ${errorMessage(e)}\nSee 'berth --help'.\n`);
    return 125;
  }
  const g = split.globals;
  if (g.version) {
    process.stdout.write(`berth version ${VERSION}\n`);
    return 0;
  }
  const [name, ...rest] = split.command;
  if (!name || g.help) {
    process.stdout.write(topHelp());
    return 0;
  }
  const cmd: Command | undefined = COMMANDS[ALIASES[name] ?? name];
  if (!cmd) {
    process.stderr.write(`berth: '${name}' is not a berth command.\nSee 'berth --help'\n`);
    return 1;
  }
  if (rest.includes('--help') && (cmd.spec.interspersed !== false || rest.indexOf('--help') < firstPositional(rest))) {
    process.stdout.write(helpText(cmd.spec));
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs(cmd.spec, rest);
  } catch (e) {
    const msg = errorMessage(e);
    process.stderr.write(usageError(cmd.spec, msg) + '\n');
    // Docker: a wrong number of arguments exits 1, a bad flag 125.
    return /requires (at least|exactly|at most) \d+|accepts no arguments/.test(msg) ? 1 : 125;
  }
  const ctx = makeContext(rootFromEnv(g.root as string | undefined), g.runtime as string | undefined, !!g.debug);
  trace('parsed');
  try {
    return await cmd.run(ctx, parsed);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(usageError(cmd.spec, e.message) + '\n');
      return 125;
    }
    process.stderr.write(`Error: ${errorMessage(e)}\n`);
    if (ctx.debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    else if (!isBerthError(e) && e instanceof Error && process.env.BERTH_DEBUG) process.stderr.write(`${e.stack}\n`);
    return exitCodeFor(e, !!cmd.startsProcess);
  }
}

function firstPositional(args: string[]): number {
  const i = args.findIndex((a) => !a.startsWith('-'));
  return i < 0 ? args.length : i;
}

function topHelp(): string {
  const lines = Object.entries(COMMANDS)
    .filter(([n]) => !n.includes(' ') || /^(image|volume|system|builder) /.test(n) || n.startsWith('container prune'))
    .filter(([n]) => n !== 'container cleanup')
    .map(([n, c]) => `  ${n.padEnd(18)} ${c.spec.description}`);
  return `\nUsage:  berth [OPTIONS] COMMAND\n\nA container engine with Docker's commands, flags and exit codes\n\nCommands:\n${lines.join('\n')}\n\nGlobal Options:\n  --root string      State directory (default "/var/lib/berth", or $BERTH_ROOT)\n  --runtime string   OCI runtime binary (default "runc")\n  -D, --debug        Enable debug output\n  -v, --version      Print version information and quit\n\nRun 'berth COMMAND --help' for more information on a command.\n`;
}

/** Runs the CLI on argv (without node and script) and sets the process exit code. */
export function runCli(argv: string[]): Promise<void> {
  // `berth logs x | head`: a closed pipe ends the command quietly, as it does for Docker.
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  return main(argv).then(
    (code) => {
      trace('returned');
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`Error: ${errorMessage(e)}\n`);
      process.exitCode = 125;
    },
  );
}
