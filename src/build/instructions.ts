/**
 * Typed instructions from raw ones (BuildKit's frontend/dockerfile/instructions): each keyword's argument shape,
 * its allowed builder flags and their values are checked here, and every problem becomes a diagnostic at the
 * offending flag or argument. Values stay as written (ENV/LABEL/ARG values keep their quotes) until
 * expandInstruction() (expand-instruction.ts) substitutes variables, in the instructions the Dockerfile reference
 * lists. RUN --mount values are parsed in run-mount.ts.
 */
import { parseGoDuration } from '../base/units.js';
import { isBerthError } from '../base/errors.js';
import { signalNumber } from '../runtime/signals.js';
import { parsePortSpec } from '../image/exposed-ports.js';

export { parsePortSpec, type PortSpec } from '../image/exposed-ports.js';
import { type Diagnostic, type Position, error, warning, withSuggestion } from './diagnostic.js';
import {
  type Heredoc,
  type ParseResult,
  type RawFlag,
  type RawInstruction,
  argsPosition,
  parseHeredocWord,
} from './parser.js';
import { type RunMount, parseMount } from './run-mount.js';
import { type Word, parseJsonArray, parseWords, splitWhitespace } from './words.js';

export const KEYWORDS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;
export type Keyword = (typeof KEYWORDS)[number];

/** How RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD give their command. The shell form is run by the SHELL. */
export type CommandLine = { form: 'exec'; args: string[] } | { form: 'shell'; command: string };

interface Base {
  line: number;
  column: number;
  endLine: number;
  raw: RawInstruction;
}

export interface FromInstruction extends Base {
  kind: 'FROM';
  image: string;
  /** Lower-cased stage name from `AS name`. */
  stageName?: string;
  /** The name and the AS keyword as written (for casing checks). */
  stageNameText?: string;
  asText?: string;
  platform?: string;
}

export interface RunInstruction extends Base {
  kind: 'RUN';
  command: CommandLine;
  mounts: RunMount[];
  /** The `--mount` values as written, for re-parsing after variable expansion. */
  mountSpecs: string[];
  network?: 'default' | 'none' | 'host';
  security?: 'sandbox' | 'insecure';
  devices: string[];
  heredocs: Heredoc[];
}

export interface CmdInstruction extends Base {
  kind: 'CMD';
  command: CommandLine;
}

export interface EntrypointInstruction extends Base {
  kind: 'ENTRYPOINT';
  command: CommandLine;
}

/** A key and value as written; quotes and escapes are removed by expansion. */
export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvInstruction extends Base {
  kind: 'ENV';
  pairs: KeyValue[];
  /** `ENV key value` (the deprecated whitespace form). */
  legacy: boolean;
}

export interface LabelInstruction extends Base {
  kind: 'LABEL';
  pairs: KeyValue[];
  legacy: boolean;
}

export interface MaintainerInstruction extends Base {
  kind: 'MAINTAINER';
  maintainer: string;
}

export interface ExposeInstruction extends Base {
  kind: 'EXPOSE';
  /** As written; see parsePortSpec(). */
  ports: string[];
}

/** A heredoc used as a COPY/ADD source: a file whose content is in the Dockerfile. */
export interface InlineSource {
  name: string;
  content: string;
  expand: boolean;
}

interface CopyLike extends Base {
  /** Source paths (context paths, URLs, Git addresses, or paths in --from), heredoc sources excluded. */
  sources: string[];
  inline: InlineSource[];
  dest: string;
  /** Written in the JSON form. */
  json: boolean;
  chown?: string;
  chmod?: string;
  link: boolean;
  excludes: string[];
}

export interface CopyInstruction extends CopyLike {
  kind: 'COPY';
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends CopyLike {
  kind: 'ADD';
  checksum?: string;
  keepGitDir: boolean;
  /** Undefined: the default (local archives unpacked, remote ones not). */
  unpack?: boolean;
}

export interface VolumeInstruction extends Base {
  kind: 'VOLUME';
  paths: string[];
  json: boolean;
}

export interface UserInstruction extends Base {
  kind: 'USER';
  user: string;
}

export interface WorkdirInstruction extends Base {
  kind: 'WORKDIR';
  path: string;
}

export interface ArgDecl {
  name: string;
  /** As written (quotes kept); undefined without `=`. */
  default?: string;
}

export interface ArgInstruction extends Base {
  kind: 'ARG';
  args: ArgDecl[];
}

export interface OnbuildInstruction extends Base {
  kind: 'ONBUILD';
  /** The trigger as stored in the image config (`OnBuild`), heredoc bodies included. */
  expression: string;
  trigger?: Instruction;
}

export interface StopsignalInstruction extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}

/**
 * HEALTHCHECK as the image config holds it: test is ["NONE"], ["CMD", ...args] or ["CMD-SHELL", command];
 * durations are nanoseconds, absent when not given (the runtime defaults apply).
 */
export interface HealthcheckInstruction extends Base {
  kind: 'HEALTHCHECK';
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface ShellInstruction extends Base {
  kind: 'SHELL';
  shell: string[];
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | EnvInstruction
  | LabelInstruction
  | MaintainerInstruction
  | ExposeInstruction
  | CopyInstruction
  | AddInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | ArgInstruction
  | OnbuildInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | ShellInstruction;

export interface InstructionsResult {
  instructions: Instruction[];
  diagnostics: Diagnostic[];
}

export type { RunMount } from './run-mount.js';

/** Thrown inside one instruction's parse to stop at its first error, as BuildKit does; caught per instruction. */
class InstructionError extends Error {
  constructor(
    message: string,
    readonly at: Position,
  ) {
    super(message);
  }
}

/** Typed instructions of a parsed Dockerfile; an instruction with an error is left out (FROM is kept best-effort). */
export function parseInstructions(parsed: ParseResult): InstructionsResult {
  const diagnostics: Diagnostic[] = [];
  const instructions: Instruction[] = [];
  for (const raw of parsed.instructions) {
    const r = parseInstruction(raw, parsed.directives.escape);
    diagnostics.push(...r.diagnostics);
    if (r.instruction) instructions.push(r.instruction);
  }
  return { instructions, diagnostics };
}

/** One raw instruction -> typed instruction and its diagnostics. */
export function parseInstruction(
  raw: RawInstruction,
  escape: string,
): { instruction?: Instruction; diagnostics: Diagnostic[] } {
  const ctx = new Ctx(raw, escape);
  try {
    const instruction = dispatch(ctx);
    return { instruction, diagnostics: ctx.diagnostics };
  } catch (e) {
    if (!(e instanceof InstructionError)) throw e;
    const diagnostics = [...ctx.diagnostics, error(e.message, e.at)];
    if (raw.keyword === 'FROM') {
      const words = splitWhitespace(raw.rawArgs);
      if (words.length > 0) return { instruction: { ...ctx.base(), kind: 'FROM', image: words[0]!.text }, diagnostics };
    }
    return { diagnostics };
  }
}

type FlagKind = 'bool' | 'string' | 'strings';

/** The builder flags each instruction accepts (others: none). */
const FLAGS: Partial<Record<Keyword, Record<string, FlagKind>>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string', device: 'strings' },
  COPY: { chown: 'string', chmod: 'string', from: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  ADD: {
    chown: 'string',
    chmod: 'string',
    checksum: 'string',
    link: 'bool',
    'keep-git-dir': 'bool',
    unpack: 'bool',
    exclude: 'strings',
  },
  HEALTHCHECK: {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  },
};

interface FlagValues {
  string: Map<string, { value: string; flag: RawFlag }>;
  bool: Map<string, boolean>;
  strings: Map<string, { value: string; flag: RawFlag }[]>;
}

class Ctx {
  readonly diagnostics: Diagnostic[] = [];
  constructor(
    readonly raw: RawInstruction,
    readonly escape: string,
  ) {}

  base(): Base {
    return { line: this.raw.line, column: this.raw.column, endLine: this.raw.endLine, raw: this.raw };
  }

  /** Fails at the keyword. */
  fail(message: string): never {
    throw new InstructionError(message, { line: this.raw.line, column: this.raw.column });
  }

  /** Fails at an argument word (offset relative to rawArgs). */
  failAt(message: string, offset = 0): never {
    if (this.raw.rawArgs === '') this.fail(message);
    throw new InstructionError(message, argsPosition(this.raw, offset));
  }

  /** BuildKit's BFlags.Parse for this keyword. */
  flags(): FlagValues {
    const spec = FLAGS[this.raw.keyword as Keyword] ?? {};
    const out: FlagValues = { string: new Map(), bool: new Map(), strings: new Map() };
    const used = new Set<string>();
    for (const f of this.raw.flags) {
      const at = { line: f.line, column: f.column };
      const kind = spec[f.name];
      const written = `--${f.name}`;
      if (kind === undefined) {
        throw new InstructionError(withSuggestion(`unknown flag: ${written}`, f.name, Object.keys(spec), true), at);
      }
      if (used.has(f.name) && kind !== 'strings') throw new InstructionError(`duplicate flag specified: ${written}`, at);
      used.add(f.name);
      if (kind === 'bool') {
        if (f.value === '') throw new InstructionError(`missing a value on flag: ${written}`, at);
        const v = (f.value ?? 'true').toLowerCase();
        if (v !== 'true' && v !== 'false') {
          throw new InstructionError(`expecting boolean value for flag ${written}, not: ${f.value}`, at);
        }
        out.bool.set(f.name, v === 'true');
      } else {
        if (f.value === undefined) throw new InstructionError(`missing a value on flag: ${written}`, at);
        if (kind === 'string') out.string.set(f.name, { value: f.value, flag: f });
        else out.strings.set(f.name, [...(out.strings.get(f.name) ?? []), { value: f.value, flag: f }]);
      }
    }
    return out;
  }
}

function dispatch(ctx: Ctx): Instruction {
  const raw = ctx.raw;
  switch (raw.keyword as Keyword) {
    case 'FROM':
      return parseFrom(ctx);
    case 'RUN':
      return parseRun(ctx);
    case 'CMD':
      ctx.flags();
      return { ...ctx.base(), kind: 'CMD', command: commandLine(ctx, raw.rawArgs) };
    case 'ENTRYPOINT': {
      ctx.flags();
      const command = raw.rawArgs === '' ? { form: 'exec' as const, args: [] } : commandLine(ctx, raw.rawArgs);
      return { ...ctx.base(), kind: 'ENTRYPOINT', command };
    }
    case 'ENV':
    case 'LABEL':
      return parseKeyValues(ctx, raw.keyword as 'ENV' | 'LABEL');
    case 'MAINTAINER':
      ctx.flags();
      if (raw.rawArgs === '') ctx.fail('MAINTAINER requires exactly one argument');
      return { ...ctx.base(), kind: 'MAINTAINER', maintainer: raw.rawArgs };
    case 'EXPOSE':
      return parseExpose(ctx);
    case 'COPY':
    case 'ADD':
      return parseCopyLike(ctx);
    case 'VOLUME':
      return parseVolume(ctx);
    case 'USER':
    case 'WORKDIR':
    case 'STOPSIGNAL':
      return parseSingle(ctx);
    case 'ARG':
      return parseArg(ctx);
    case 'ONBUILD':
      return parseOnbuild(ctx);
    case 'HEALTHCHECK':
      return parseHealthcheck(ctx);
    case 'SHELL': {
      ctx.flags();
      const j = parseJsonArray(raw.rawArgs);
      if (j.kind === 'not-strings') ctx.failAt('when using JSON array syntax, arrays must be comprised of strings only');
      if (raw.rawArgs === '' || (j.kind === 'json' && j.values.length === 0)) {
        ctx.fail('SHELL requires at least one argument');
      }
      if (j.kind !== 'json') ctx.failAt('SHELL requires the arguments to be in JSON form');
      return { ...ctx.base(), kind: 'SHELL', shell: j.values };
    }
    default:
      return ctx.fail(withSuggestion(`unknown instruction: ${raw.keywordText}`, raw.keywordText, KEYWORDS, false));
  }
}

/** Exec form when the arguments are a JSON array of strings, shell form otherwise (malformed JSON included). */
function commandLine(ctx: Ctx, args: string): CommandLine {
  const j = parseJsonArray(args);
  if (j.kind === 'not-strings') ctx.failAt('when using JSON array syntax, arrays must be comprised of strings only');
  return j.kind === 'json' ? { form: 'exec', args: j.values } : { form: 'shell', command: args };
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function parseFrom(ctx: Ctx): FromInstruction {
  const words = splitWhitespace(ctx.raw.rawArgs);
  const flags = ctx.flags();
  if (words.length !== 1 && !(words.length === 3 && words[1]!.text.toLowerCase() === 'as')) {
    ctx.failAt('FROM requires either one or three arguments');
  }
  const from: FromInstruction = { ...ctx.base(), kind: 'FROM', image: words[0]!.text };
  if (words.length === 3) {
    const name = words[2]!;
    if (!STAGE_NAME.test(name.text.toLowerCase())) {
      ctx.failAt(
        `invalid name for build stage: "${name.text}", name can't start with a number or contain symbols`,
        name.offset,
      );
    }
    from.stageName = name.text.toLowerCase();
    from.stageNameText = name.text;
    from.asText = words[1]!.text;
  }
  const platform = flags.string.get('platform');
  if (platform !== undefined) from.platform = platform.value;
  return from;
}

const NETWORK_MODES = ['default', 'none', 'host'] as const;
const SECURITY_MODES = ['sandbox', 'insecure'] as const;

function parseRun(ctx: Ctx): RunInstruction {
  const flags = ctx.flags();
  if (ctx.raw.rawArgs === '') ctx.fail('RUN requires at least one argument');
  const run: RunInstruction = {
    ...ctx.base(),
    kind: 'RUN',
    command: commandLine(ctx, ctx.raw.rawArgs),
    mounts: [],
    mountSpecs: [],
    devices: (flags.strings.get('device') ?? []).map((d) => d.value),
    heredocs: ctx.raw.heredocs,
  };
  for (const { value, flag } of flags.strings.get('mount') ?? []) {
    run.mountSpecs.push(value);
    const m = parseMount(value);
    if (typeof m === 'string') {
      // A variable may still make it valid: re-checked after expansion.
      if (!value.includes('$')) throw new InstructionError(m, { line: flag.line, column: flag.column });
      continue;
    }
    run.mounts.push(m);
  }
  const network = flags.string.get('network');
  if (network !== undefined) {
    if (!(NETWORK_MODES as readonly string[]).includes(network.value)) {
      throw new InstructionError(`invalid network mode "${network.value}"`, network.flag);
    }
    run.network = network.value as RunInstruction['network'];
  }
  const security = flags.string.get('security');
  if (security !== undefined) {
    if (!(SECURITY_MODES as readonly string[]).includes(security.value)) {
      throw new InstructionError(`invalid security mode "${security.value}"`, security.flag);
    }
    run.security = security.value as RunInstruction['security'];
  }
  return run;
}

function parseKeyValues(ctx: Ctx, keyword: 'ENV' | 'LABEL'): EnvInstruction | LabelInstruction {
  ctx.flags();
  const rest = ctx.raw.rawArgs;
  const words = parseWords(rest, ctx.escape);
  if (words.length === 0) ctx.fail(`${keyword} requires at least one argument`);
  const pairs: KeyValue[] = [];
  let legacy = false;
  if (!words[0]!.text.includes('=')) {
    legacy = true;
    const m = /^(\S+)[\t\v\f\r ]+([\s\S]*)$/.exec(rest);
    if (m === null) ctx.fail(`${keyword} must have two arguments`);
    pairs.push({ key: m[1]!, value: m[2]! });
  } else {
    for (const w of words) {
      const eq = w.text.indexOf('=');
      if (eq < 0) {
        ctx.failAt(`Syntax error - can't find = in "${w.text}". Must be of the form: name=value`, w.offset);
      }
      if (eq === 0) ctx.failAt(`${keyword} names can not be blank`, w.offset);
      pairs.push({ key: w.text.slice(0, eq), value: w.text.slice(eq + 1) });
    }
  }
  return keyword === 'ENV'
    ? { ...ctx.base(), kind: 'ENV', pairs, legacy }
    : { ...ctx.base(), kind: 'LABEL', pairs, legacy };
}

function parseExpose(ctx: Ctx): ExposeInstruction {
  ctx.flags();
  const words = splitWhitespace(ctx.raw.rawArgs);
  if (words.length === 0) ctx.fail('EXPOSE requires at least one argument');
  for (const w of words) {
    if (w.text.includes('$')) continue; // checked after expansion
    const p = parsePortSpec(w.text);
    if (typeof p === 'string') ctx.failAt(p, w.offset);
  }
  return { ...ctx.base(), kind: 'EXPOSE', ports: words.map((w) => w.text) };
}

/** The words of ADD/COPY/VOLUME: a JSON array of strings, or whitespace-separated words. */
function jsonOrWords(ctx: Ctx): { words: Word[]; json: boolean } {
  const j = parseJsonArray(ctx.raw.rawArgs);
  if (j.kind === 'not-strings') ctx.failAt('when using JSON array syntax, arrays must be comprised of strings only');
  if (j.kind === 'json') return { words: j.values.map((text) => ({ text, offset: 0 })), json: true };
  return { words: splitWhitespace(ctx.raw.rawArgs), json: false };
}

/** What an ADD source refers to. */
export function sourceKind(src: string): 'local' | 'url' | 'git' {
  if (/^git@[^:]+:/.test(src) || /^(git|ssh|git\+ssh):\/\//.test(src)) return 'git';
  if (/^https?:\/\//i.test(src)) {
    const path = src.split('#')[0]!.replace(/\/+$/, '');
    return path.endsWith('.git') ? 'git' : 'url';
  }
  return 'local';
}

const CHMOD_SYMBOLIC = /^([ugoa]*([-+=]([rwxXst]*|[ugo]))+)(,[ugoa]*([-+=]([rwxXst]*|[ugo]))+)*$/;

function parseCopyLike(ctx: Ctx): CopyInstruction | AddInstruction {
  const keyword = ctx.raw.keyword as 'COPY' | 'ADD';
  const { words, json } = jsonOrWords(ctx);
  if (words.length < 2) {
    ctx.fail(
      `${keyword} requires at least two arguments, but only one was provided. Destination could not be determined.`,
    );
  }
  const flags = ctx.flags();
  const heredocs = new Map(ctx.raw.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const inline: InlineSource[] = [];
  const dest = words[words.length - 1]!;
  const heredocOf = (w: string) => {
    const header = json ? undefined : parseHeredocWord(w);
    return header === undefined ? undefined : heredocs.get(header.name);
  };
  if (heredocOf(dest.text) !== undefined) ctx.failAt(`${keyword} cannot have a heredoc as a destination`, dest.offset);
  for (const w of words.slice(0, -1)) {
    const h = heredocOf(w.text);
    if (h !== undefined) inline.push({ name: h.name, content: h.content, expand: !h.quoted });
    else sources.push(w.text);
  }
  const chmod = flags.string.get('chmod');
  if (chmod !== undefined && !chmod.value.includes('$')) {
    if (!/^[0-7]{1,4}$/.test(chmod.value) && !CHMOD_SYMBOLIC.test(chmod.value)) {
      throw new InstructionError(`invalid chmod parameter: ${chmod.value}`, chmod.flag);
    }
  }
  const common: Omit<CopyLike, 'kind'> = {
    ...ctx.base(),
    sources,
    inline,
    dest: dest.text,
    json,
    link: flags.bool.get('link') ?? false,
    excludes: (flags.strings.get('exclude') ?? []).map((e) => e.value),
  };
  const chown = flags.string.get('chown');
  if (chown !== undefined) common.chown = chown.value;
  if (chmod !== undefined) common.chmod = chmod.value;
  if (keyword === 'COPY') {
    const copy: CopyInstruction = { ...common, kind: 'COPY', parents: flags.bool.get('parents') ?? false };
    const from = flags.string.get('from');
    if (from !== undefined && from.value !== '') copy.from = from.value; // BuildKit reads `--from=` as the context
    return copy;
  }
  const add: AddInstruction = { ...common, kind: 'ADD', keepGitDir: flags.bool.get('keep-git-dir') ?? false };
  const unpack = flags.bool.get('unpack');
  if (unpack !== undefined) add.unpack = unpack;
  const checksum = flags.string.get('checksum');
  if (checksum !== undefined) {
    add.checksum = checksum.value;
    const local = sources.find((s) => !s.includes('$') && sourceKind(s) === 'local');
    if (local !== undefined || inline.length > 0) {
      throw new InstructionError("checksum can't be specified for non-HTTP(S) or non-Git sources", checksum.flag);
    }
  }
  return add;
}

function parseVolume(ctx: Ctx): VolumeInstruction {
  ctx.flags();
  const { words, json } = jsonOrWords(ctx);
  if (words.length === 0) ctx.fail('VOLUME requires at least one argument');
  const paths: string[] = [];
  for (const w of words) {
    const p = w.text.trim();
    if (p === '') ctx.failAt('VOLUME specified can not be an empty string', w.offset);
    paths.push(p);
  }
  return { ...ctx.base(), kind: 'VOLUME', paths, json };
}

/** USER, WORKDIR, STOPSIGNAL: the whole argument text is one value (BuildKit's parseString). */
function parseSingle(ctx: Ctx): UserInstruction | WorkdirInstruction | StopsignalInstruction {
  ctx.flags();
  const keyword = ctx.raw.keyword;
  const value = ctx.raw.rawArgs;
  if (value === '') ctx.fail(`${keyword} requires exactly one argument`);
  if (keyword === 'USER') return { ...ctx.base(), kind: 'USER', user: value };
  if (keyword === 'WORKDIR') return { ...ctx.base(), kind: 'WORKDIR', path: value };
  if (!value.includes('$') && signalNumber(value) === undefined) ctx.failAt(`Invalid signal: ${value}`);
  return { ...ctx.base(), kind: 'STOPSIGNAL', signal: value };
}

function parseArg(ctx: Ctx): ArgInstruction {
  ctx.flags();
  const words = parseWords(ctx.raw.rawArgs, ctx.escape);
  if (words.length === 0) ctx.fail('ARG requires at least one argument');
  const args: ArgDecl[] = [];
  for (const w of words) {
    const eq = w.text.indexOf('=');
    if (eq === 0) ctx.failAt('ARG names can not be blank', w.offset);
    args.push(eq < 0 ? { name: w.text } : { name: w.text.slice(0, eq), default: w.text.slice(eq + 1) });
  }
  return { ...ctx.base(), kind: 'ARG', args };
}

function parseOnbuild(ctx: Ctx): OnbuildInstruction {
  ctx.flags();
  const child = ctx.raw.child;
  if (ctx.raw.rawArgs === '' || child === undefined) ctx.fail('ONBUILD requires at least one argument');
  const trigger = child.keyword;
  if (trigger === 'ONBUILD') ctx.failAt('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') ctx.failAt(`${trigger} isn't allowed as an ONBUILD trigger`);
  let expression = ctx.raw.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of child.heredocs) expression += `\n${h.rawContent}${h.name}`;
  const onbuild: OnbuildInstruction = { ...ctx.base(), kind: 'ONBUILD', expression };
  // Docker only checks a trigger when it fires downstream; problems are reported here as warnings.
  const parsed = parseInstruction(child, ctx.escape);
  for (const d of parsed.diagnostics) {
    ctx.diagnostics.push({ ...d, severity: 'warning', message: `ONBUILD trigger: ${d.message}` });
  }
  if (parsed.instruction) onbuild.trigger = parsed.instruction;
  return onbuild;
}

/** Go's time.ParseDuration in nanoseconds (BuildKit's parseOptInterval: 0 means "not set", else at least 1ms). */
function healthDuration(flag: { value: string; flag: RawFlag } | undefined, name: string): number | undefined {
  if (flag === undefined || flag.value === '') return undefined;
  let ns: number;
  try {
    ns = Math.round(parseGoDuration(flag.value) * 1e6);
  } catch (e) {
    if (isBerthError(e)) throw new InstructionError(e.message, flag.flag);
    throw e;
  }
  if (ns === 0) return undefined;
  if (ns < 1e6) throw new InstructionError(`Interval "${name}" cannot be less than 1ms`, flag.flag);
  return ns;
}

function parseHealthcheck(ctx: Ctx): HealthcheckInstruction {
  const rest = ctx.raw.rawArgs;
  if (rest === '') ctx.fail('HEALTHCHECK requires at least one argument');
  const typeText = /^\S+/.exec(rest)![0];
  const type = typeText.toUpperCase();
  const cmdText = rest.slice(typeText.length).trim();
  if (type === 'NONE') {
    if (cmdText !== '') ctx.failAt('HEALTHCHECK NONE takes no arguments');
    if (ctx.raw.flags.length > 0) {
      const f = ctx.raw.flags[0]!;
      ctx.diagnostics.push(warning(`HEALTHCHECK NONE ignores its options (--${f.name})`, f));
    }
    return { ...ctx.base(), kind: 'HEALTHCHECK', test: ['NONE'] };
  }
  const flags = ctx.flags();
  if (type !== 'CMD') ctx.failAt(`Unknown type "${typeText}" in HEALTHCHECK (try CMD)`);
  const command = cmdText === '' ? undefined : commandLine(ctx, cmdText);
  if (command === undefined || (command.form === 'exec' && command.args.length === 0)) {
    ctx.failAt('Missing command after HEALTHCHECK CMD');
  }
  const hc: HealthcheckInstruction = {
    ...ctx.base(),
    kind: 'HEALTHCHECK',
    test: command.form === 'exec' ? ['CMD', ...command.args] : ['CMD-SHELL', command.command],
  };
  const set = (key: 'interval' | 'timeout' | 'startPeriod' | 'startInterval', flag: string) => {
    const v = healthDuration(flags.string.get(flag), flag);
    if (v !== undefined) hc[key] = v;
  };
  set('interval', 'interval');
  set('timeout', 'timeout');
  set('startPeriod', 'start-period');
  set('startInterval', 'start-interval');
  const retries = flags.string.get('retries');
  if (retries !== undefined && retries.value !== '') {
    if (!/^[+-]?\d+$/.test(retries.value) || Math.abs(Number(retries.value)) > 2147483647) {
      throw new InstructionError(`strconv.ParseInt: parsing "${retries.value}": invalid syntax`, retries.flag);
    }
    const n = Number(retries.value);
    if (n < 1) throw new InstructionError(`--retries must be at least 1 (not ${n})`, retries.flag);
    hc.retries = n;
  }
  return hc;
}
