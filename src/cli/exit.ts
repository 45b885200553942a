import { BerthError, type ErrorKind } from '../base/errors.js';

/**
 * The one table from error kinds to exit codes. Docker's CLI: 125 when the engine itself fails on run/create/start/
 * exec (and for usage errors), 126 when the command cannot be invoked, 127 when it is not found; other commands
 * exit 1 on errors.
 */
const CONTAINER_START_CODES: Partial<Record<ErrorKind, number>> = {
  'cannot-invoke': 126,
  'command-not-found': 127,
};

export function exitCodeFor(e: unknown, commandStartsProcess: boolean): number {
  if (e instanceof UsageError) return 125;
  const kind = e instanceof BerthError ? e.kind : 'internal';
  if (commandStartsProcess) return CONTAINER_START_CODES[kind] ?? 125;
  return 1;
}

/** A command line the CLI cannot parse: printed with a pointer to --help. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** One-line user message for any error. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? e.message;
  return String(e);
}
