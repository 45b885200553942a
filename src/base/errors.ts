/**
 * One error type for the whole library. Every failure that reaches a user carries a kind;
 * the CLI maps kinds to exit codes (src/cli/exit.ts) and the API maps them to HTTP status.
 */
export type ErrorKind =
  | 'invalid-argument' // bad flag, malformed reference, broken input file
  | 'not-found' // no such image, container, volume
  | 'conflict' // name in use, container running, image in use
  | 'unavailable' // runtime missing, kernel feature absent
  | 'corrupt' // digest mismatch, malicious tar, damaged store
  | 'cannot-invoke' // command exists but cannot be executed (126)
  | 'command-not-found' // command not found in the container (127)
  | 'internal';

export class BerthError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'BerthError';
  }
}

export const invalidArgument = (msg: string, cause?: unknown) => new BerthError('invalid-argument', msg, { cause });
export const notFound = (msg: string, cause?: unknown) => new BerthError('not-found', msg, { cause });
export const conflict = (msg: string, cause?: unknown) => new BerthError('conflict', msg, { cause });
export const unavailable = (msg: string, cause?: unknown) => new BerthError('unavailable', msg, { cause });
export const corrupt = (msg: string, cause?: unknown) => new BerthError('corrupt', msg, { cause });
export const internal = (msg: string, cause?: unknown) => new BerthError('internal', msg, { cause });

export function isBerthError(e: unknown, kind?: ErrorKind): e is BerthError {
  return e instanceof BerthError && (kind === undefined || e.kind === kind);
}

/** Node's errno code of a system error, or undefined. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string'
    ? (e as { code: string }).code
    : undefined;
}

/** Prefix an error's message with context while keeping its kind. */
export function wrap(e: unknown, context: string): BerthError {
  if (e instanceof BerthError) return new BerthError(e.kind, `${context}: ${e.message}`, { cause: e });
  const msg = e instanceof Error ? e.message : String(e);
  return new BerthError('internal', `${context}: ${msg}`, { cause: e });
}
