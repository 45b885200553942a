/**
 * The Dockerfile parser: text -> parser directives + raw instructions, with every position kept and every problem
 * reported as a diagnostic. It never throws. It handles what BuildKit's frontend/dockerfile/parser does: directives at
 * the top only, comments, line continuations with the escape character (comment and empty lines inside a continuation
 * are skipped, the latter with a NoEmptyContinuation warning), builder flags (`--from=...`) split off the arguments,
 * heredocs for RUN/COPY/ADD (also under ONBUILD), and ONBUILD's nested instruction. What the arguments mean is
 * instructions.ts's business.
 */
import { type Diagnostic, type Position, error, warning } from './diagnostic.js';
import { expand } from './expand.js';
import { parseGoBool, parseJsonArray } from './words.js';

/** The `# check=` directive: which lint rules to skip and whether lint warnings fail the build. */
export interface CheckDirective {
  skip: string[];
  skipAll: boolean;
  error: boolean;
  experimental: string[];
}

export interface Directives {
  /** `# syntax=` value as written (BuildKit would pull that frontend; berth only records it). */
  syntax?: string;
  /** The escape character: `\` unless `# escape=` says "`". */
  escape: '\\' | '`';
  check?: CheckDirective;
}

/** A builder flag as written before the arguments: `--mount=type=cache,target=/x` -> name "mount". */
export interface RawFlag {
  name: string;
  /** Undefined for a bare `--link`; "" for `--link=`. Quotes and backslashes are already processed. */
  value?: string;
  line: number;
  column: number;
}

/**
 * A here-document attached to RUN, COPY or ADD. `content` is the body as the instruction uses it (leading tabs
 * stripped for `<<-`), `rawContent` the lines exactly as written; both end with a newline per line.
 */
export interface Heredoc {
  name: string;
  content: string;
  rawContent: string;
  /** `<<-NAME`: leading tabs are stripped from body lines and the terminator. */
  chomp: boolean;
  /** Any part of the delimiter word was quoted: the body is not expanded. */
  quoted: boolean;
  /** `3<<EOF`: the file descriptor, when given. */
  fd?: number;
  /** First body line and the terminator line. */
  line: number;
  endLine: number;
}

/** Where a piece of the joined instruction text came from (continuation lines are joined into one string). */
export interface Segment {
  offset: number;
  line: number;
  column: number;
}

/**
 * One instruction before interpretation. `original` is the logical line (continuations joined, comment lines
 * inside the continuation dropped, escape characters at line ends removed); `rawArgs` is the argument text after
 * the keyword and flags, trimmed, found at `argsOffset` in `original`.
 */
export interface RawInstruction {
  /** Upper-cased keyword. */
  keyword: string;
  /** The keyword as written (for casing checks). */
  keywordText: string;
  rawArgs: string;
  argsOffset: number;
  original: string;
  flags: RawFlag[];
  heredocs: Heredoc[];
  line: number;
  column: number;
  endLine: number;
  /** ONBUILD's trigger instruction. */
  child?: RawInstruction;
  /** Comment lines directly above the instruction, without the `#` (BuildKit's description comments). */
  comments: string[];
  segments: Segment[];
}

export interface ParseResult {
  directives: Directives;
  instructions: RawInstruction[];
  diagnostics: Diagnostic[];
}

/** Instructions whose shell form may carry heredocs. */
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);

/** The position of `offset` in an instruction's `original` text. */
export function positionAt(instr: Pick<RawInstruction, 'segments' | 'line' | 'column'>, offset: number): Position {
  let seg: Segment | undefined;
  for (const s of instr.segments) {
    if (s.offset <= offset) seg = s;
    else break;
  }
  if (seg === undefined) return { line: instr.line, column: instr.column };
  return { line: seg.line, column: seg.column + (offset - seg.offset) };
}

/** The position of an instruction's argument text (or of `delta` characters into it). */
export function argsPosition(instr: RawInstruction, delta = 0): Position {
  return positionAt(instr, instr.argsOffset + delta);
}

export function parseDockerfile(text: string): ParseResult {
  return new Parser(text).parse();
}

const trimLeft = (s: string): string => s.replace(/^\s+/, '');
const isCommentLine = (s: string): boolean => trimLeft(s).startsWith('#');

class Parser {
  private readonly lines: string[];
  private readonly diagnostics: Diagnostic[] = [];
  private readonly directives: Directives = { escape: '\\' };
  private directivesDone = false;
  private readonly seenDirectives = new Set<string>();

  constructor(text: string) {
    const lines = text.split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    if (lines.length > 0 && lines[0]!.startsWith('\uFEFF')) lines[0] = lines[0]!.slice(1);
    this.lines = lines;
  }

  parse(): ParseResult {
    const instructions: RawInstruction[] = [];
    let comments: string[] = [];
    let i = 0;
    while (i < this.lines.length) {
      const physical = stripNewline(this.lines[i]!);
      const lineNo = i + 1;
      const stripped = trimLeft(physical);
      const wasDirective = this.maybeDirective(stripped, lineNo);
      i++;
      if (stripped.startsWith('#')) {
        if (!wasDirective) {
          const c = stripped.slice(1).trim();
          if (c === '') comments = [];
          else comments.push(c);
        }
        continue;
      }
      if (stripped === '') {
        comments = [];
        continue;
      }
      const column = physical.length - stripped.length + 1;
      let [part, continues] = this.trimContinuation(stripped);
      if (!continues && part === '') continue;
      const segments: Segment[] = [{ offset: 0, line: lineNo, column }];
      let logical = part;
      let endLine = lineNo;
      let emptyContinuation: number | undefined;
      while (continues && i < this.lines.length) {
        const next = stripNewline(this.lines[i]!);
        const nextNo = i + 1;
        i++;
        endLine = nextNo;
        if (isCommentLine(next)) continue;
        if (next.trim() === '') {
          emptyContinuation ??= nextNo;
          continue;
        }
        [part, continues] = this.trimContinuation(next);
        segments.push({ offset: logical.length, line: nextNo, column: 1 });
        logical += part;
      }
      if (emptyContinuation !== undefined) {
        this.diagnostics.push(
          warning('Empty continuation line', { line: emptyContinuation, column: 1 }, { rule: 'NoEmptyContinuation' }),
        );
      }
      const instr = buildInstruction(logical, 0, segments, endLine, comments);
      comments = [];
      instructions.push(instr);
      i = this.readHeredocs(instr, logical, i);
    }
    if (instructions.length === 0) {
      this.diagnostics.push(error('file with no instructions', { line: Math.max(1, this.lines.length), column: 1 }));
    }
    return { directives: this.directives, instructions, diagnostics: this.diagnostics };
  }

  /** BuildKit's directive rule: only `#key=value` lines before anything else; the first other line ends them. */
  private maybeDirective(stripped: string, line: number): boolean {
    if (this.directivesDone) return false;
    const m = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(stripped);
    const key = m?.[1]?.toLowerCase();
    if (m === null || key === undefined || !KNOWN_DIRECTIVES.has(key)) {
      this.directivesDone = true;
      return false;
    }
    const value = m[2]!;
    const at = { line, column: 1 };
    if (this.seenDirectives.has(key)) {
      this.diagnostics.push(error(`only one ${key} parser directive can be used`, at));
      return true;
    }
    this.seenDirectives.add(key);
    if (key === 'syntax') this.directives.syntax = value;
    else if (key === 'escape') {
      if (value === '\\' || value === '`') this.directives.escape = value;
      else this.diagnostics.push(error(`invalid escape token '${value}' does not match \` or \\`, at));
    } else {
      const check = parseCheckDirective(value);
      if (typeof check === 'string') this.diagnostics.push(error(check, at));
      else this.directives.check = check;
    }
    return true;
  }

  /**
   * A line ending in the escape character (trailing blanks allowed) continues on the next line. As in BuildKit, an
   * escape character preceded by another one does not continue the line.
   */
  private trimContinuation(line: string): [string, boolean] {
    const e = this.directives.escape;
    const body = line.replace(/[ \t]+$/, '');
    if (!body.endsWith(e)) return [line, false];
    if (body.length >= 2 && body[body.length - 2] === e) return [line, false];
    return [body.slice(0, -1), true];
  }

  /** Reads the bodies of the instruction's heredocs from line index `i` on; returns the next line index. */
  private readHeredocs(instr: RawInstruction, logical: string, i: number): number {
    const target = instr.keyword === 'ONBUILD' ? instr.child : instr;
    if (target === undefined || !HEREDOC_KEYWORDS.has(target.keyword) || !logical.includes('<<')) return i;
    if (parseJsonArray(target.rawArgs).kind !== 'not-json') return i;
    for (const h of heredocsFromLine(logical)) {
      const terminator = h.name;
      let raw = '';
      const first = i + 1;
      let terminated = false;
      while (i < this.lines.length) {
        const line = this.lines[i]!;
        i++;
        let candidate = stripNewline(line);
        if (h.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === terminator) {
          terminated = true;
          break;
        }
        raw += `${line}\n`;
      }
      instr.endLine = i;
      target.endLine = i;
      if (!terminated) {
        this.diagnostics.push(error('unterminated heredoc', { line: instr.line, column: instr.column }, { endLine: i }));
        return i;
      }
      const heredoc: Heredoc = {
        name: h.name,
        content: h.chomp ? raw.replace(/^\t+/gm, '') : raw,
        rawContent: raw,
        chomp: h.chomp,
        quoted: h.quoted,
        line: first,
        endLine: i,
      };
      if (h.fd !== undefined) heredoc.fd = h.fd;
      target.heredocs.push(heredoc);
      if (target !== instr) instr.heredocs.push(heredoc);
    }
    return i;
  }
}

function stripNewline(line: string): string {
  return line.replace(/[\r\n]+$/, '');
}

/** Splits keyword, flags and arguments of a logical line starting at `start` (ONBUILD recurses on its arguments). */
function buildInstruction(
  logical: string,
  start: number,
  segments: Segment[],
  endLine: number,
  comments: string[],
): RawInstruction {
  const lead = /^\s*/.exec(logical.slice(start))![0].length;
  const kwStart = start + lead;
  const kwMatch = /^[^\t\v\f\r ]*/.exec(logical.slice(kwStart))![0];
  const afterKw = kwStart + kwMatch.length;
  const restStart = afterKw + /^[\t\v\f\r ]*/.exec(logical.slice(afterKw))![0].length;
  const { flags, argsStart } = extractFlags(logical, restStart);
  const argsRaw = logical.slice(argsStart);
  const argsLead = argsRaw.length - trimLeft(argsRaw).length;
  const instr: RawInstruction = {
    keyword: kwMatch.toUpperCase(),
    keywordText: kwMatch,
    rawArgs: argsRaw.trim(),
    argsOffset: argsStart + argsLead,
    original: logical,
    flags: [],
    heredocs: [],
    line: 0,
    column: 0,
    endLine,
    comments,
    segments,
  };
  const kwPos = positionAt({ segments, line: segments[0]!.line, column: segments[0]!.column }, kwStart);
  instr.line = kwPos.line;
  instr.column = kwPos.column;
  instr.flags = flags.map((f) => ({ ...f.flag, ...positionAt(instr, f.offset) }));
  if (instr.keyword === 'ONBUILD' && instr.rawArgs !== '') {
    instr.child = buildInstruction(logical, instr.argsOffset, segments, endLine, []);
  }
  return instr;
}

/** A flag and its offset in the logical line. */
interface FoundFlag {
  flag: Omit<RawFlag, 'line' | 'column'>;
  offset: number;
}

/**
 * BuildKit's builder-flag scan: words starting with `--` before the first other word are flags; quotes and
 * backslashes in them are processed; a bare `--` ends the flags.
 */
function extractFlags(line: string, from: number): { flags: FoundFlag[]; argsStart: number } {
  const flags: FoundFlag[] = [];
  let pos = from;
  for (;;) {
    while (pos < line.length && /\s/.test(line[pos]!)) pos++;
    if (pos >= line.length) return { flags, argsStart: line.length };
    if (!line.startsWith('--', pos)) return { flags, argsStart: pos };
    const start = pos;
    let word = '';
    let quote: string | undefined;
    for (; pos < line.length; pos++) {
      const ch = line[pos]!;
      if (quote === undefined && /\s/.test(ch)) break;
      if (quote === undefined && (ch === '"' || ch === "'")) {
        quote = ch;
        continue;
      }
      if (quote !== undefined && ch === quote) {
        quote = undefined;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        word += line[pos];
        continue;
      }
      word += ch;
    }
    if (word === '--') return { flags, argsStart: pos };
    const eq = word.indexOf('=');
    const flag: Omit<RawFlag, 'line' | 'column'> =
      eq < 0 ? { name: word.slice(2) } : { name: word.slice(2, eq), value: word.slice(eq + 1) };
    flags.push({ flag, offset: start });
  }
}

export interface HeredocHeader {
  name: string;
  chomp: boolean;
  quoted: boolean;
  fd?: number;
}

/**
 * The heredoc delimiters of a line, in order. As BuildKit does it: split the line into shell words keeping quotes
 * and escapes, take the words of the form `[n]<<[-]WORD`, and call the body quoted when unquoting WORD removes quote
 * characters.
 */
export function heredocsFromLine(line: string): HeredocHeader[] {
  const collapsed = line.replace(/<<[ \t]+/g, '<<');
  const none = new Map<string, string>();
  const words = expand(collapsed, none, { rawQuotes: true, rawEscapes: true, keepUnset: true });
  if (!words.ok) return [];
  const out: HeredocHeader[] = [];
  for (const word of words.words) {
    const header = parseHeredocWord(word);
    if (header !== undefined) out.push(header);
  }
  return out;
}

/**
 * A word of the form `[n]<<[-]WORD` as a heredoc header, else undefined. The body is "quoted" (not expanded) when
 * unquoting WORD removes quote characters; WORD must be a single shell word.
 */
export function parseHeredocWord(word: string): HeredocHeader | undefined {
  const m = /^(\d*)<<(-?)\s*([^<]*)$/.exec(word);
  if (m === null || m[3] === '') return undefined;
  const none = new Map<string, string>();
  const plain = expand(m[3]!, none, { keepUnset: true });
  const raw = expand(m[3]!, none, { keepUnset: true, rawQuotes: true });
  if (!plain.ok || !raw.ok || plain.words.length !== 1 || raw.words.length !== 1) return undefined;
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  const header: HeredocHeader = {
    name: plain.words[0]!,
    chomp: m[2] === '-',
    quoted: quotes(plain.words[0]!) !== quotes(raw.words[0]!),
  };
  if (m[1] !== '') header.fd = Number(m[1]);
  return header;
}

/** BuildKit's `# check=` syntax: `skip=A,B;error=true;experimental=all`. A string result is the error. */
export function parseCheckDirective(value: string): CheckDirective | string {
  const check: CheckDirective = { skip: [], skipAll: false, error: false, experimental: [] };
  const v = value.trim();
  if (v === '') return check;
  for (const part of v.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) return `invalid check option "${part}"`;
    const key = part.slice(0, eq).trim();
    const val = part.slice(eq + 1).trim();
    if (key === 'skip') {
      if (val === 'all') check.skipAll = true;
      else check.skip.push(...val.split(',').map((s) => s.trim()).filter((s) => s !== ''));
    } else if (key === 'experimental') {
      check.experimental.push(...val.split(',').map((s) => s.trim()).filter((s) => s !== ''));
    } else if (key === 'error') {
      const b = parseGoBool(val);
      if (b === undefined) {
        return `failed to parse check option "${part}": strconv.ParseBool: parsing "${val}": invalid syntax`;
      }
      check.error = b;
    } else {
      return `invalid check option "${key}"`;
    }
  }
  return check;
}
