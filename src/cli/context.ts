import { Engine } from '../engine/engine.js';
import type { Parsed, CommandSpec } from './args.js';

/** What a command gets: the engine (created on first use), the parsed flags, and the process streams. */
export interface CliContext {
  root: string;
  runtime: string | undefined;
  debug: boolean;
  engine(): Engine;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
}

export interface Command {
  spec: CommandSpec;
  /** True for commands that start a container process: their failures exit 125/126/127 like Docker's. */
  startsProcess?: boolean;
  run(ctx: CliContext, p: Parsed): Promise<number>;
}

export function makeContext(root: string, runtime: string | undefined, debug: boolean): CliContext {
  let engine: Engine | undefined;
  return {
    root,
    runtime,
    debug,
    engine: () => (engine ??= new Engine({ root, ...(runtime ? { runtime } : {}) })),
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
  };
}

/** Typed accessors for parsed flags. */
export const flag = {
  bool: (p: Parsed, n: string): boolean => p.flags[n] === true,
  str: (p: Parsed, n: string): string | undefined => (p.flags[n] === undefined ? undefined : String(p.flags[n])),
  strs: (p: Parsed, n: string): string[] => (Array.isArray(p.flags[n]) ? (p.flags[n] as string[]) : []),
  num: (p: Parsed, n: string): number | undefined => (p.flags[n] === undefined ? undefined : Number(p.flags[n])),
};
