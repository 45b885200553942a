/**
 * Command-line parsing with the behaviour of Docker's CLI (spf13/cobra + spf13/pflag): declarative flag specs per
 * command, pflag's syntax and error wording, cobra/docker help text and argument-count messages.
 *
 * Syntax accepted (as pflag): `--name value`, `--name=value`, `-n value`, `-nvalue`, `-n=value`, grouped booleans
 * (`-dit`); a value-taking shorthand in a group takes the rest of the group (`-deFOO=1` is d + e "FOO=1") or, when
 * it ends the group, the next argument (`-de FOO=1`); `--` ends the flags; a lone `-` or an empty string is a
 * positional; booleans accept `--rm=false`; a value may start with "-" (`--name -x`). Unless a spec defines its own
 * `help` flag, `--help` (and `-h` when no flag uses that shorthand) sets `flags.help` and skips argument checks.
 */
import { invalidArgument } from '../base/errors.js';
import { bytesSize, formatGoDuration, parseBytes, parseGoDuration } from '../base/units.js';

export type FlagType = 'bool' | 'string' | 'strings' | 'int' | 'number' | 'duration' | 'bytes';

export interface FlagSpec {
  /** Long name, used as the key in Parsed.flags. */
  name: string;
  /** One-character shorthand. */
  short?: string;
  /**
   * Value type and its parsed form: bool → boolean; string → string; strings → string[] (repeatable, in order,
   * no comma splitting); int → integer (Go ParseInt base 0); number → float; duration → milliseconds (Go
   * duration syntax); bytes → bytes (RAMInBytes: "512m", "1.5g", "1GiB").
   */
  type: FlagType;
  /** Value when the flag is absent, already in parsed form (ms for duration, bytes for bytes). */
  default?: unknown;
  description: string;
  hidden?: boolean;
  /** Name of the value in help (pflag's back-quoted word in the usage); defaults to the type ("list" for strings). */
  valueName?: string;
  /** duration only: a bare integer means seconds (e.g. "10" = 10s). */
  bareSeconds?: boolean;
}

export interface CommandSpec {
  /** Command path below `berth`, e.g. "run" or "image ls". */
  name: string;
  /** Full use line, e.g. "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]". */
  usage: string;
  /** One-line description (cobra's Short). */
  description: string;
  flags: FlagSpec[];
  minArgs?: number;
  maxArgs?: number;
  /** Default true; false for run/create/exec: everything after the first positional belongs to the container command. */
  interspersed?: boolean;
  /** Other full command lines shown under "Aliases:", e.g. ["berth container ls", "berth ps"]. */
  aliases?: string[];
}

export interface Parsed {
  /** Every flag by long name: given value, else spec default, else false (bool) / [] (strings) / undefined. */
  flags: Record<string, unknown>;
  args: string[];
  /** Long names of the flags given on the command line (pflag's Changed). */
  changed?: ReadonlySet<string>;
}

const HELP_FLAG: FlagSpec = { name: 'help', type: 'bool', description: 'Print usage', hidden: true };

/** "berth image ls" from the use line "berth image ls [OPTIONS]": leading lower-case words. */
export function commandPath(spec: CommandSpec): string {
  const words: string[] = [];
  for (const w of spec.usage.trim().split(/\s+/)) {
    if (!/^[a-z][a-z0-9-]*$/.test(w)) break;
    words.push(w);
  }
  return words.length > 0 ? words.join(' ') : `berth ${spec.name}`.trim();
}

const ARG_COUNT_RE = /^"[^"]*" (requires (at least|at most|exactly) |accepts no arguments)/;

/**
 * The full message Docker prints for a usage error: the error, then `See 'berth stop --help'.`; argument-count
 * errors also get the use line and description, as docker's cli.RequiresMinArgs and friends print them.
 */
export function usageError(spec: CommandSpec, msg: string): string {
  const see = `See '${commandPath(spec)} --help'.`;
  if (ARG_COUNT_RE.test(msg)) return `${msg}\n${see}\n\nUsage:  ${spec.usage}\n\n${spec.description}`;
  return `${msg}\n${see}`;
}

const plural = (n: number) => (n === 1 ? 'argument' : 'arguments');

/** Docker's argument-count message for `n` positionals, or undefined when `n` is acceptable. */
function argCountMessage(spec: CommandSpec, n: number): string | undefined {
  const path = JSON.stringify(commandPath(spec));
  const { minArgs: min, maxArgs: max } = spec;
  if (max === 0) return n > 0 ? `${path} accepts no arguments.` : undefined;
  if (min !== undefined && min === max) return n !== min ? `${path} requires exactly ${min} ${plural(min)}.` : undefined;
  if (min !== undefined && max !== undefined) {
    return n < min || n > max ? `${path} requires at least ${min} and at most ${max} ${plural(max)}.` : undefined;
  }
  if (min !== undefined && n < min) return `${path} requires at least ${min} ${plural(min)}.`;
  if (max !== undefined && n > max) return `${path} requires at most ${max} ${plural(max)}.`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Value parsing (pflag Value.Set with Go's strconv wording)

function goQuote(s: string): string {
  return JSON.stringify(s);
}

function parseGoBool(s: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  throw new Error(`strconv.ParseBool: parsing ${goQuote(s)}: invalid syntax`);
}

/** Go's strconv.ParseInt(s, 0, 64). */
function parseGoInt(s: string): number {
  const m = /^([+-]?)(0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?\d)*)$/.exec(s);
  if (!m) throw new Error(`strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax`);
  const body = m[2]!.replace(/_/g, '');
  let big: bigint;
  if (/^0[xXbBoO]/.test(body)) big = BigInt(body.toLowerCase());
  else if (body.length > 1 && body.startsWith('0')) big = BigInt('0o' + body.slice(1));
  else big = BigInt(body);
  if (m[1] === '-') big = -big;
  if (big > 9223372036854775807n || big < -9223372036854775808n) {
    throw new Error(`strconv.ParseInt: parsing ${goQuote(s)}: value out of range`);
  }
  return Number(big);
}

function parseGoFloat(s: string): number {
  if (/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(s)) return Number(s);
  if (/^[+-]?(inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(s)) return NaN;
  throw new Error(`strconv.ParseFloat: parsing ${goQuote(s)}: invalid syntax`);
}

function parseValue(f: FlagSpec, raw: string): unknown {
  switch (f.type) {
    case 'bool':
      return parseGoBool(raw);
    case 'string':
    case 'strings':
      return raw;
    case 'int':
      return parseGoInt(raw);
    case 'number':
      return parseGoFloat(raw);
    case 'duration':
      if (f.bareSeconds && /^\d+$/.test(raw)) return Number(raw) * 1000;
      return parseGoDuration(raw);
    case 'bytes':
      return parseBytes(raw);
  }
}

function flagLabel(f: FlagSpec): string {
  return f.short ? `-${f.short}, --${f.name}` : `--${f.name}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

/**
 * Parse `argv` (the words after the command path) against `spec`. Throws BerthError invalid-argument with pflag's
 * or docker's exact wording (without the "See ... --help" line; see usageError).
 */
export function parseArgs(spec: CommandSpec, argv: string[]): Parsed {
  const byName = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const f of spec.flags) {
    byName.set(f.name, f);
    if (f.short) byShort.set(f.short, f);
  }
  const helpLong = !byName.has('help');
  const helpShort = helpLong && !byShort.has('h');

  const flags: Record<string, unknown> = {};
  for (const f of spec.flags) {
    if (f.default !== undefined) flags[f.name] = Array.isArray(f.default) ? [...(f.default as unknown[])] : f.default;
    else if (f.type === 'bool') flags[f.name] = false;
    else if (f.type === 'strings') flags[f.name] = [];
  }
  if (helpLong) flags.help = false;
  const changed = new Set<string>();
  const given = new Set<string>(); // strings flags replace their default on first use
  const args: string[] = [];

  const set = (f: FlagSpec, raw: string) => {
    let value: unknown;
    try {
      value = parseValue(f, raw);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw invalidArgument(`invalid argument ${goQuote(raw)} for ${goQuote(flagLabel(f))} flag: ${why}`, e);
    }
    if (f.type === 'strings') {
      const list = given.has(f.name) ? (flags[f.name] as string[]) : [];
      list.push(value as string);
      flags[f.name] = list;
    } else {
      flags[f.name] = value;
    }
    given.add(f.name);
    changed.add(f.name);
  };

  const interspersed = spec.interspersed !== false;
  let i = 0;
  while (i < argv.length) {
    const s = argv[i++]!;
    if (s.length < 2 || s[0] !== '-') {
      args.push(s);
      if (!interspersed) {
        args.push(...argv.slice(i));
        break;
      }
      continue;
    }
    if (s[1] === '-') {
      if (s.length === 2) {
        args.push(...argv.slice(i)); // "--" ends the flags
        break;
      }
      const body = s.slice(2);
      if (body[0] === '-' || body[0] === '=') throw invalidArgument(`bad flag syntax: ${s}`);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      const f = byName.get(name) ?? (name === 'help' && helpLong ? HELP_FLAG : undefined);
      if (!f) throw invalidArgument(`unknown flag: --${name}`);
      let value: string;
      if (eq >= 0) value = body.slice(eq + 1);
      else if (f.type === 'bool') value = 'true';
      else if (i < argv.length) value = argv[i++]!;
      else throw invalidArgument(`flag needs an argument: ${s}`);
      set(f, value);
      continue;
    }
    let shorts = s.slice(1);
    while (shorts.length > 0) {
      const c = shorts[0]!;
      const f = byShort.get(c) ?? (c === 'h' && helpShort ? HELP_FLAG : undefined);
      if (!f) throw invalidArgument(`unknown shorthand flag: '${c}' in -${shorts}`);
      let value: string;
      let rest = shorts.slice(1);
      if (shorts.length > 2 && shorts[1] === '=') {
        value = shorts.slice(2);
        rest = '';
      } else if (f.type === 'bool') {
        value = 'true';
      } else if (shorts.length > 1) {
        value = shorts.slice(1);
        rest = '';
      } else if (i < argv.length) {
        value = argv[i++]!;
      } else {
        throw invalidArgument(`flag needs an argument: '${c}' in -${shorts}`);
      }
      set(f, value);
      shorts = rest;
    }
  }

  if (flags.help !== true) {
    const msg = argCountMessage(spec, args.length);
    if (msg) throw invalidArgument(msg);
  }
  return { flags, args, changed };
}

// ---------------------------------------------------------------------------------------------------------------
// Help

const TYPE_NAMES: Record<FlagType, string> = {
  bool: '',
  string: 'string',
  strings: 'list',
  int: 'int',
  number: 'decimal',
  duration: 'duration',
  bytes: 'bytes',
};

/** pflag's UnquoteUsage: a back-quoted word in the description names the value. */
function unquoteUsage(f: FlagSpec): { varname: string; usage: string } {
  const m = /^([^`]*)`([^`]*)`(.*)$/s.exec(f.description);
  if (m) return { varname: m[2]!, usage: m[1]! + m[2]! + m[3]! };
  return { varname: f.valueName ?? TYPE_NAMES[f.type], usage: f.description };
}

function defaultText(f: FlagSpec): string {
  const d = f.default;
  if (d === undefined || d === null) return '';
  switch (f.type) {
    case 'bool':
      return d === true ? ' (default true)' : '';
    case 'string':
      return d === '' ? '' : ` (default ${goQuote(String(d))})`;
    case 'strings':
      return Array.isArray(d) && d.length > 0 ? ` (default [${d.join(',')}])` : '';
    case 'int':
    case 'number':
      return d === 0 ? '' : ` (default ${String(d)})`;
    case 'duration':
      return d === 0 ? '' : ` (default ${formatGoDuration(Number(d))})`;
    case 'bytes':
      return d === 0 ? '' : ` (default ${bytesSize(Number(d))})`;
  }
}

/** pflag's wrapN: split off up to `i` characters at white space, allowing `slop` more for the final piece. */
function wrapN(i: number, slop: number, s: string): [string, string] {
  if (i + slop > s.length) return [s, ''];
  const head = s.slice(0, i);
  const w = Math.max(head.lastIndexOf(' '), head.lastIndexOf('\t'), head.lastIndexOf('\n'));
  if (w <= 0) return [s, ''];
  const nl = head.lastIndexOf('\n');
  if (nl > 0 && nl < w) return [s.slice(0, nl), s.slice(nl + 1)];
  return [s.slice(0, w), s.slice(w + 1)];
}

/** pflag's wrap: wrap `s` to width `w`, continuation lines indented by `i`. */
function wrap(i: number, w: number, s: string): string {
  if (w === 0) return s.replace(/\n/g, '\n' + ' '.repeat(i));
  let width = w - i;
  let r = '';
  if (width < 24) {
    i = 16;
    width = w - i;
    r += '\n' + ' '.repeat(i);
  }
  if (width < 24) return s.replace(/\n/g, r);
  const slop = 5;
  width -= slop;
  let [line, rest] = wrapN(width, slop, s);
  r += line.replace(/\n/g, '\n' + ' '.repeat(i));
  while (rest !== '') {
    [line, rest] = wrapN(width, slop, rest);
    r += '\n' + ' '.repeat(i) + line.replace(/\n/g, '\n' + ' '.repeat(i));
  }
  return r;
}

/** The Options block: flags sorted by name, descriptions aligned, wrapped at `width` columns (0 = never). */
export function flagUsages(flags: FlagSpec[], width = 79): string {
  const visible = flags.filter((f) => !f.hidden).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries = visible.map((f) => {
    let head = f.short ? `  -${f.short}, --${f.name}` : `      --${f.name}`;
    const { varname, usage } = unquoteUsage(f);
    if (varname) head += ' ' + varname;
    return { head, usage: usage + defaultText(f) };
  });
  const maxlen = Math.max(0, ...entries.map((e) => e.head.length)) + 1;
  return entries
    .map((e) => `${e.head} ${' '.repeat(maxlen - e.head.length)} ${wrap(maxlen + 2, width, e.usage)}`.trimEnd())
    .join('\n');
}

/** `berth run --help` in the layout of docker's usage template. */
export function helpText(spec: CommandSpec, width = 79): string {
  let s = `\nUsage:  ${spec.usage}\n\n${spec.description.trim()}`;
  if (spec.aliases && spec.aliases.length > 0) s += `\n\nAliases:\n  ${spec.aliases.join(', ')}`;
  const options = flagUsages(spec.flags, width);
  if (options !== '') s += `\n\nOptions:\n${options}`;
  return s + '\n';
}

// ---------------------------------------------------------------------------------------------------------------
// Global flags and the command path

/** Flags accepted before the command (docker's root command flags, berth's own). */
export const GLOBAL_SPEC: CommandSpec = {
  name: '',
  usage: 'berth [OPTIONS] COMMAND',
  description: "A container engine with Docker's commands, flags and exit codes",
  interspersed: false,
  flags: [
    { name: 'root', type: 'string', description: 'Root directory of persistent berth state' },
    { name: 'runtime', type: 'string', description: 'Path of the OCI runtime binary' },
    { name: 'debug', short: 'D', type: 'bool', description: 'Enable debug mode' },
    {
      name: 'log-level',
      short: 'l',
      type: 'string',
      description: 'Set the logging level ("debug", "info", "warn", "error", "fatal")',
      default: 'info',
    },
    { name: 'version', short: 'v', type: 'bool', description: 'Print version information and quit' },
  ],
};

export interface GlobalSplit {
  /** Global flags by long name (root, runtime, debug, log-level, version, help). */
  globals: Record<string, unknown>;
  /** The command path as one element ("image ls"), then the command's own arguments; [] when no command. */
  command: string[];
  /** The matched command path, the first word when nothing matched, or "" when there is no command. */
  path: string;
  /** The words after the command path. */
  rest: string[];
}

/**
 * Split `argv` into global flags (up to the first positional, as docker does) and the command. `commands` lists
 * the known command paths ("run", "image ls", "system df", ...); the longest one matching the leading words wins.
 */
export function splitGlobal(argv: string[], commands: Iterable<string> = []): GlobalSplit {
  const parsed = parseArgs(GLOBAL_SPEC, argv);
  const words = parsed.args;
  if (words.length === 0) return { globals: parsed.flags, command: [], path: '', rest: [] };
  const known = new Set(commands);
  let depth = 1;
  for (let n = Math.min(3, words.length); n >= 1; n--) {
    if (known.has(words.slice(0, n).join(' '))) {
      depth = n;
      break;
    }
  }
  const path = words.slice(0, depth).join(' ');
  const rest = words.slice(depth);
  return { globals: parsed.flags, command: [path, ...rest], path, rest };
}
