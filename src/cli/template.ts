/**
 * Go text/template for Docker's `--format`, written from the language spec: actions, pipelines, variables,
 * if/else if/with/range (with else, break, continue), parenthesised pipelines, trim markers and comments, Go's
 * builtin functions (and, or, not, len, index, slice, print, printf, println, eq, ne, lt, le, gt, ge, html, js,
 * urlquery, call) plus Docker's (json, split, join, title, lower, upper, pad, truncate). `define`/`template`/
 * `block` are not supported.
 *
 * Data model (JS values stand in for Go values):
 * - `undefined` is Go's missing value: it prints "<no value>"; `null` is nil and prints "<nil>".
 * - A `Map` or a plain object is a Go map for field access (`.Key`), `index`, `range` (sorted keys) and printing
 *   (`map[k:v]`). For `json`, a `Map` encodes with sorted keys like a Go map while a plain object keeps its key
 *   order like a Go struct, so callers control the order of inspect-style output.
 * - A function-valued property is a method: `{{.Label "com.example"}}` calls it with the arguments.
 * - Integer-valued numbers print as Go ints, other numbers as Go float64 (`%v` → shortest `%g`).
 *
 * Errors are BerthError invalid-argument: parse errors read `template parsing error: template: :LINE: MSG`,
 * execution errors `template: :LINE:COL: executing "" at <NODE>: MSG`, as Docker prints them.
 */
import { BerthError, invalidArgument } from '../base/errors.js';
import { tabwrite } from './table.js';
import { formatGoFloat, formatRfc3339Nano } from '../base/units.js';

// =============================================================================================================
// Lexer

type TokKind =
  | 'field' // .Name
  | 'var' // $ or $name
  | 'ident' // function name or keyword
  | 'string'
  | 'number'
  | 'bool'
  | 'nil'
  | 'dot'
  | 'lparen'
  | 'rparen'
  | 'pipe'
  | 'declare'
  | 'assign'
  | 'comma';

interface Tok {
  kind: TokKind;
  /** Decoded value: field/var/ident name, string contents, number text. */
  val: string;
  /** Source text. */
  src: string;
  pos: number;
  /** Whether white space precedes the token (decides whether `.Field` chains onto the term before it). */
  space: boolean;
}

type Item = { kind: 'text'; text: string; pos: number } | { kind: 'action'; toks: Tok[]; pos: number; end: number };

class ParseError extends Error {
  constructor(
    readonly pos: number,
    message: string,
  ) {
    super(message);
  }
}

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);
const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isAlnum = (c: string | undefined) => c !== undefined && /[\p{L}\p{Nd}_]/u.test(c);

const NUMBER_RE =
  /^[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)/;

function unquoteGo(src: string, pos: number): string {
  let out = '';
  for (let i = 1; i < src.length - 1; i++) {
    const c = src[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = src[++i];
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"' };
    if (n !== undefined && n in simple) out += simple[n];
    else if (n === 'x' || n === 'u' || n === 'U') {
      const len = n === 'x' ? 2 : n === 'u' ? 4 : 8;
      const hex = src.slice(i + 1, i + 1 + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) throw new ParseError(pos, `invalid syntax`);
      out += n === 'x' ? String.fromCharCode(parseInt(hex, 16)) : String.fromCodePoint(parseInt(hex, 16));
      i += len;
    } else if (n !== undefined && /[0-7]/.test(n)) {
      const oct = src.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct)) throw new ParseError(pos, `invalid syntax`);
      out += String.fromCharCode(parseInt(oct, 8));
      i += 2;
    } else throw new ParseError(pos, `invalid syntax`);
  }
  return out;
}

function lex(tpl: string): Item[] {
  const items: Item[] = [];
  let i = 0;
  let trimNext = false;
  const pushText = (text: string, pos: number) => {
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (text !== '') items.push({ kind: 'text', text, pos });
  };
  const atRightDelim = (j: number): 0 | 2 | 4 => {
    if (isSpace(tpl[j]) && tpl[j + 1] === '-' && tpl.startsWith('}}', j + 2)) return 4;
    if (tpl.startsWith('}}', j)) return 2;
    return 0;
  };

  while (i < tpl.length) {
    const start = tpl.indexOf('{{', i);
    if (start < 0) {
      pushText(tpl.slice(i), i);
      break;
    }
    let j = start + 2;
    let text = tpl.slice(i, start);
    if (tpl[j] === '-' && isSpace(tpl[j + 1])) {
      text = text.replace(/[ \t\r\n]+$/, '');
      j += 2;
    }
    pushText(text, i);

    if (tpl.startsWith('/*', j)) {
      const end = tpl.indexOf('*/', j + 2);
      if (end < 0) throw new ParseError(start, 'unclosed comment');
      j = end + 2;
      const d = atRightDelim(j);
      if (d === 0) throw new ParseError(start, 'comment ends before closing delimiter');
      trimNext = d === 4;
      i = j + d;
      continue;
    }

    const toks: Tok[] = [];
    let space = false;
    const push = (kind: TokKind, val: string, from: number, to: number) => {
      toks.push({ kind, val, src: tpl.slice(from, to), pos: from, space });
      space = false;
    };
    for (;;) {
      const d = atRightDelim(j);
      if (d !== 0) {
        trimNext = d === 4;
        j += d;
        break;
      }
      if (j >= tpl.length) throw new ParseError(start, 'unclosed action');
      const c = tpl[j]!;
      const from = j;
      if (isSpace(c)) {
        space = true;
        j++;
      } else if (c === '.' && !/[0-9]/.test(tpl[j + 1] ?? '')) {
        j++;
        if (!isAlnum(tpl[j])) {
          push('dot', '.', from, j);
        } else {
          while (isAlnum(tpl[j])) j++;
          push('field', tpl.slice(from + 1, j), from, j);
        }
      } else if (c === '$') {
        j++;
        while (isAlnum(tpl[j])) j++;
        push('var', tpl.slice(from, j), from, j);
      } else if (c === '"') {
        j++;
        while (j < tpl.length && tpl[j] !== '"') {
          if (tpl[j] === '\n') throw new ParseError(from, 'unterminated quoted string');
          j += tpl[j] === '\\' ? 2 : 1;
        }
        if (j >= tpl.length) throw new ParseError(from, 'unterminated quoted string');
        j++;
        push('string', unquoteGo(tpl.slice(from, j), from), from, j);
      } else if (c === '`') {
        const end = tpl.indexOf('`', j + 1);
        if (end < 0) throw new ParseError(from, 'unterminated raw quoted string');
        j = end + 1;
        push('string', tpl.slice(from + 1, end), from, j);
      } else if (c === "'") {
        j++;
        while (j < tpl.length && tpl[j] !== "'") j += tpl[j] === '\\' ? 2 : 1;
        if (j >= tpl.length) throw new ParseError(from, 'unterminated character constant');
        j++;
        const ch = unquoteGo(tpl.slice(from, j), from);
        const cp = ch.codePointAt(0);
        if (cp === undefined || [...ch].length !== 1) throw new ParseError(from, `malformed character constant: ${tpl.slice(from, j)}`);
        push('number', String(cp), from, j);
      } else if (/[0-9]/.test(c) || ((c === '+' || c === '-' || c === '.') && /[0-9.]/.test(tpl[j + 1] ?? ''))) {
        const m = NUMBER_RE.exec(tpl.slice(j));
        if (!m || m[0] === '' || m[0] === '+' || m[0] === '-') throw new ParseError(from, `bad number syntax: "${tpl.slice(j, j + 8)}"`);
        j += m[0].length;
        if (isAlnum(tpl[j]) || tpl[j] === '.') {
          while (isAlnum(tpl[j]) || tpl[j] === '.') j++;
          throw new ParseError(from, `bad number syntax: "${tpl.slice(from, j)}"`);
        }
        push('number', m[0], from, j);
      } else if (isAlnum(c)) {
        while (isAlnum(tpl[j])) j++;
        const word = tpl.slice(from, j);
        push(word === 'true' || word === 'false' ? 'bool' : word === 'nil' ? 'nil' : 'ident', word, from, j);
      } else if (c === '(') {
        j++;
        push('lparen', '(', from, j);
      } else if (c === ')') {
        j++;
        push('rparen', ')', from, j);
      } else if (c === '|') {
        j++;
        push('pipe', '|', from, j);
      } else if (c === ',') {
        j++;
        push('comma', ',', from, j);
      } else if (c === ':' && tpl[j + 1] === '=') {
        j += 2;
        push('declare', ':=', from, j);
      } else if (c === '=') {
        j++;
        push('assign', '=', from, j);
      } else {
        throw new ParseError(from, `unexpected ${goQuoteRune(c)} in command`);
      }
    }
    items.push({ kind: 'action', toks, pos: start, end: j });
    i = j;
  }
  if (trimNext) pushText('', tpl.length);
  return items;
}

// =============================================================================================================
// AST

type Arg =
  | { t: 'field'; path: string[]; src: string; pos: number }
  | { t: 'dot'; src: string; pos: number }
  | { t: 'var'; name: string; path: string[]; src: string; pos: number }
  | { t: 'ident'; name: string; src: string; pos: number }
  | { t: 'string'; v: string; src: string; pos: number }
  | { t: 'number'; v: number; src: string; pos: number }
  | { t: 'bool'; v: boolean; src: string; pos: number }
  | { t: 'nil'; src: string; pos: number }
  | { t: 'pipe'; pipe: Pipe; path: string[]; src: string; pos: number };

interface Cmd {
  args: Arg[];
  src: string;
  pos: number;
}

interface Pipe {
  decl: string[];
  assign: boolean;
  cmds: Cmd[];
}

type Node =
  | { t: 'text'; text: string }
  | { t: 'action'; pipe: Pipe }
  | { t: 'if'; pipe: Pipe; list: Node[]; elseList?: Node[] }
  | { t: 'with'; pipe: Pipe; list: Node[]; elseList?: Node[] }
  | { t: 'range'; pipe: Pipe; list: Node[]; elseList?: Node[] }
  | { t: 'break' | 'continue' };

// =============================================================================================================
// Parser

class TokStream {
  i = 0;
  constructor(
    readonly toks: Tok[],
    readonly endPos: number,
  ) {}
  peek(): Tok | undefined {
    return this.toks[this.i];
  }
  next(): Tok | undefined {
    return this.toks[this.i++];
  }
  get pos(): number {
    return this.peek()?.pos ?? this.endPos;
  }
}

class Parser {
  private idx = 0;
  private vars: string[] = ['$'];
  private rangeDepth = 0;

  constructor(
    private readonly items: Item[],
    private readonly funcs: ReadonlySet<string>,
  ) {}

  parse(): Node[] {
    const { nodes, stop } = this.list();
    if (stop) throw new ParseError(stop.item.pos, `unexpected {{${stop.word}}}`);
    return nodes;
  }

  /** Parse nodes up to {{end}}/{{else}} (returned as `stop`) or EOF. */
  private list(): { nodes: Node[]; stop?: { word: 'end' | 'else'; rest: TokStream; item: Item } } {
    const nodes: Node[] = [];
    while (this.idx < this.items.length) {
      const item = this.items[this.idx++]!;
      if (item.kind === 'text') {
        nodes.push({ t: 'text', text: item.text });
        continue;
      }
      const ts = new TokStream(item.toks, item.end);
      const first = ts.peek();
      if (first?.kind === 'ident' && KEYWORDS.has(first.val)) {
        ts.next();
        switch (first.val) {
          case 'end':
          case 'else':
            if (first.val === 'end' && ts.peek()) throw new ParseError(ts.pos, `unexpected ${tokDesc(ts.peek()!)} in end`);
            return { nodes, stop: { word: first.val, rest: ts, item } };
          case 'if':
          case 'with':
          case 'range':
            nodes.push(this.control(first.val, ts));
            continue;
          case 'break':
          case 'continue':
            if (ts.peek()) throw new ParseError(ts.pos, `unexpected ${tokDesc(ts.peek()!)} in {{${first.val}}}`);
            if (this.rangeDepth === 0) throw new ParseError(first.pos, `{{${first.val}}} outside {{range}}`);
            nodes.push({ t: first.val });
            continue;
          default:
            throw new ParseError(first.pos, `{{${first.val}}} is not supported`);
        }
      }
      const pipe = this.pipeline(ts, 'command');
      nodes.push({ t: 'action', pipe });
    }
    return { nodes };
  }

  private control(ctx: 'if' | 'with' | 'range', ts: TokStream): Node {
    const mark = this.vars.length;
    try {
      const pipe = this.pipeline(ts, ctx);
      if (ctx === 'range') this.rangeDepth++;
      const body = this.list();
      if (ctx === 'range') this.rangeDepth--;
      if (!body.stop) throw new ParseError(Number.MAX_SAFE_INTEGER, 'unexpected EOF');
      let elseList: Node[] | undefined;
      if (body.stop.word === 'else') {
        const rest = body.stop.rest;
        const nextTok = rest.peek();
        if ((ctx === 'if' || ctx === 'with') && nextTok?.kind === 'ident' && nextTok.val === ctx) {
          rest.next();
          elseList = [this.control(ctx, rest)]; // "else if" shares the enclosing {{end}}
        } else {
          if (nextTok) throw new ParseError(rest.pos, `unexpected ${tokDesc(nextTok)} in else`);
          const tail = this.list();
          if (!tail.stop) throw new ParseError(Number.MAX_SAFE_INTEGER, 'unexpected EOF');
          if (tail.stop.word !== 'end') throw new ParseError(tail.stop.item.pos, 'expected end; found {{else}}');
          elseList = tail.nodes;
        }
      }
      return { t: ctx, pipe, list: body.nodes, ...(elseList ? { elseList } : {}) };
    } finally {
      this.vars.length = mark;
    }
  }

  private pipeline(ts: TokStream, ctx: string): Pipe {
    const pipe: Pipe = { decl: [], assign: false, cmds: [] };
    const save = ts.i;
    const v = ts.peek();
    if (v?.kind === 'var') {
      ts.next();
      const after = ts.peek();
      if (after?.kind === 'declare' || after?.kind === 'assign') {
        ts.next();
        pipe.assign = after.kind === 'assign';
        if (pipe.assign && !this.vars.includes(v.val)) throw new ParseError(v.pos, `undefined variable "${v.val}"`);
        pipe.decl.push(v.val);
      } else if (after?.kind === 'comma') {
        ts.next();
        const v2 = ts.next();
        const op = ts.next();
        if (ctx !== 'range' || v2?.kind !== 'var' || op?.kind !== 'declare') {
          throw new ParseError(v.pos, ctx === 'range' ? 'range can only initialize variables' : `too many declarations in ${ctx}`);
        }
        pipe.decl.push(v.val, v2.val);
      } else {
        ts.i = save;
      }
    }
    while (ts.peek() && ts.peek()!.kind !== 'rparen') {
      pipe.cmds.push(this.command(ts));
      const t = ts.peek();
      if (t?.kind === 'pipe') {
        ts.next();
        if (!ts.peek() || ts.peek()!.kind === 'rparen' || ts.peek()!.kind === 'pipe') throw new ParseError(ts.pos, 'missing command');
      }
    }
    if (pipe.cmds.length === 0) throw new ParseError(ts.pos, `missing value for ${ctx}`);
    for (const name of pipe.decl) if (!pipe.assign) this.vars.push(name);
    pipe.cmds.forEach((c, i) => {
      const a = c.args[0]!;
      if (i > 0 && (a.t === 'bool' || a.t === 'dot' || a.t === 'nil' || a.t === 'number' || a.t === 'string')) {
        throw new ParseError(c.pos, `non executable command in pipeline stage ${i + 1}`);
      }
      if (a.t === 'nil') throw new ParseError(c.pos, 'nil is not a command');
    });
    return pipe;
  }

  private command(ts: TokStream): Cmd {
    const args: Arg[] = [];
    const pos = ts.pos;
    while (ts.peek() && ts.peek()!.kind !== 'pipe' && ts.peek()!.kind !== 'rparen') args.push(this.operand(ts));
    if (args.length === 0) throw new ParseError(pos, 'missing value for command');
    return { args, src: args.map((a) => a.src).join(' '), pos };
  }

  private operand(ts: TokStream): Arg {
    const t = ts.next()!;
    let arg: Arg;
    switch (t.kind) {
      case 'field':
        arg = { t: 'field', path: [t.val], src: t.src, pos: t.pos };
        break;
      case 'dot':
        arg = { t: 'dot', src: '.', pos: t.pos };
        break;
      case 'var':
        if (!this.vars.includes(t.val)) throw new ParseError(t.pos, `undefined variable "${t.val}"`);
        arg = { t: 'var', name: t.val, path: [], src: t.src, pos: t.pos };
        break;
      case 'ident':
        if (KEYWORDS.has(t.val)) throw new ParseError(t.pos, `unexpected <${t.val}> in command`);
        if (!this.funcs.has(t.val)) throw new ParseError(t.pos, `function "${t.val}" not defined`);
        arg = { t: 'ident', name: t.val, src: t.src, pos: t.pos };
        break;
      case 'string':
        arg = { t: 'string', v: t.val, src: t.src, pos: t.pos };
        break;
      case 'number':
        arg = { t: 'number', v: parseNumber(t), src: t.src, pos: t.pos };
        break;
      case 'bool':
        arg = { t: 'bool', v: t.val === 'true', src: t.src, pos: t.pos };
        break;
      case 'nil':
        arg = { t: 'nil', src: 'nil', pos: t.pos };
        break;
      case 'lparen': {
        const pipe = this.pipeline(ts, 'parenthesized pipeline');
        const close = ts.next();
        if (close?.kind !== 'rparen') throw new ParseError(ts.pos, 'unclosed left paren');
        arg = { t: 'pipe', pipe, path: [], src: `(${pipeSrc(pipe)})`, pos: t.pos };
        break;
      }
      default:
        throw new ParseError(t.pos, `unexpected ${tokDesc(t)} in operand`);
    }
    // `.A.B`, `$x.A`, `(pipe).A`: field tokens glued to the term form a chain.
    while (ts.peek()?.kind === 'field' && !ts.peek()!.space) {
      const f = ts.next()!;
      if (arg.t === 'field' || arg.t === 'var' || arg.t === 'pipe') {
        arg.path.push(f.val);
        arg.src += f.src;
      } else {
        throw new ParseError(f.pos, `unexpected . after term ${JSON.stringify(arg.src)}`);
      }
    }
    return arg;
  }
}

function pipeSrc(p: Pipe): string {
  const decl = p.decl.length ? `${p.decl.join(', ')} ${p.assign ? '=' : ':='} ` : '';
  return decl + p.cmds.map((c) => c.src).join(' | ');
}

function parseNumber(t: Tok): number {
  const text = t.val.replace(/_/g, '');
  const neg = text.startsWith('-');
  const body = text.replace(/^[+-]/, '');
  let v: number;
  if (/^0[xX]/.test(body)) v = parseInt(body.slice(2), 16);
  else if (/^0[bB]/.test(body)) v = parseInt(body.slice(2), 2);
  else if (/^0[oO]/.test(body)) v = parseInt(body.slice(2), 8);
  else if (/^0[0-7]+$/.test(body)) v = parseInt(body, 8);
  else v = Number(body);
  if (Number.isNaN(v)) throw new ParseError(t.pos, `bad number syntax: "${t.src}"`);
  return neg ? -v : v;
}

function tokDesc(t: Tok): string {
  return `"${t.src}"`;
}

function goQuoteRune(c: string): string {
  return `'${c}'`;
}

// =============================================================================================================
// Go value formatting (the subset of package fmt that templates reach)

/** Go-ish type name of a value, for error messages and `%!verb(type=value)`. */
function goTypeName(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'bigint') return 'int64';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'function') return 'func';
  if (Array.isArray(v)) return '[]interface {}';
  if (v instanceof Date) return 'time.Time';
  return 'map[string]interface {}';
}

function formatNumber(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e21) return v.toFixed(0);
  return formatGoFloat(v, 'g', -1);
}

function formatGoTime(d: Date): string {
  const iso = formatRfc3339Nano(d);
  const [date, rest = ''] = iso.split('T');
  return `${date} ${rest.replace('Z', '')} +0000 UTC`;
}

/** Entries of a Go-map-like value (Map or object), sorted by key like fmt and encoding/json do. */
function mapEntries(v: object): [string, unknown][] {
  const entries: [string, unknown][] =
    v instanceof Map ? [...v.entries()].map(([k, val]) => [String(k), val]) : Object.entries(v);
  return entries.filter(([, val]) => typeof val !== 'function').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function isMapLike(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** fmt's %v. */
function sprintValue(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (typeof v === 'function') return '<func>';
  if (Array.isArray(v)) return `[${v.map(sprintValue).join(' ')}]`;
  if (v instanceof Date) return formatGoTime(v);
  return `map[${mapEntries(v)
    .map(([k, val]) => `${k}:${sprintValue(val)}`)
    .join(' ')}]`;
}

/** How the template engine prints an action's value. */
function printValue(v: unknown): string {
  return v === undefined ? '<no value>' : sprintValue(v);
}

/** Go's strconv.Quote. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (cp < 0x20 || cp === 0x7f) {
      const esc: Record<number, string> = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v' };
      out += esc[cp] ?? `\\x${cp.toString(16).padStart(2, '0')}`;
    } else if (cp < 0x80 || /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch;
    else if (cp === 0xfffd && ch !== '\ufffd') out += '\\ufffd';
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return out + '"';
}

function badVerb(verb: string, v: unknown): string {
  if (v === null || v === undefined) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(v)}=${sprintValue(v)})`;
}

interface FmtSpec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width?: number;
  prec?: number;
}

function pad(s: string, spec: FmtSpec, numeric: boolean): string {
  const len = [...s].length;
  if (spec.width === undefined || len >= spec.width) return s;
  const n = spec.width - len;
  if (spec.minus) return s + ' '.repeat(n);
  if (spec.zero && numeric) {
    const sign = /^[+\- ]/.test(s) ? s[0]! : '';
    return sign + '0'.repeat(n) + s.slice(sign.length);
  }
  return ' '.repeat(n) + s;
}

function signed(s: string, negative: boolean, spec: FmtSpec): string {
  if (negative) return '-' + s;
  if (spec.plus) return '+' + s;
  if (spec.space) return ' ' + s;
  return s;
}

function fmtInteger(v: number | bigint, verb: string, spec: FmtSpec): string {
  const neg = v < 0;
  const abs = neg ? -BigInt(v) : BigInt(v);
  let digits: string;
  switch (verb) {
    case 'd':
    case 'v':
      digits = abs.toString(10);
      break;
    case 'x':
      digits = abs.toString(16);
      if (spec.sharp) digits = '0x' + digits;
      break;
    case 'X':
      digits = abs.toString(16).toUpperCase();
      if (spec.sharp) digits = '0X' + digits;
      break;
    case 'o':
      digits = abs.toString(8);
      if (spec.sharp) digits = '0' + digits;
      break;
    case 'O':
      digits = '0o' + abs.toString(8);
      break;
    case 'b':
      digits = abs.toString(2);
      break;
    default:
      digits = abs.toString(10);
  }
  if (spec.prec !== undefined) digits = digits.padStart(spec.prec, '0');
  return pad(signed(digits, neg, spec), spec, true);
}

function fmtFloat(v: number, verb: string, spec: FmtSpec): string {
  const neg = v < 0 || Object.is(v, -0);
  const abs = Math.abs(v);
  let s: string;
  switch (verb) {
    case 'f':
    case 'F':
      s = formatGoFloat(abs, 'f', spec.prec ?? 6);
      break;
    case 'e':
    case 'E':
      s = formatGoFloat(abs, verb, spec.prec ?? 6);
      break;
    case 'g':
    case 'G':
      s = formatGoFloat(abs, verb, spec.prec ?? -1);
      break;
    default:
      s = formatNumber(abs);
  }
  return pad(signed(s, neg, spec), spec, Number.isFinite(v));
}

/** Format one operand for one verb, like fmt's printArg (composites apply the verb element-wise). */
function fmtArg(v: unknown, verb: string, spec: FmtSpec): string {
  if (verb === 'T') return pad(goTypeName(v), spec, false);
  if (v === null || v === undefined) return verb === 'v' ? pad('<nil>', spec, false) : badVerb(verb, v);
  if (Array.isArray(v)) {
    return pad(`[${v.map((e) => fmtArg(e, verb, { ...spec, width: undefined })).join(' ')}]`, spec, false);
  }
  if (isMapLike(v)) {
    if (verb === 'v' || verb === 's' || verb === 'd' || verb === 'q' || verb === 'x' || verb === 'X') {
      const inner = mapEntries(v)
        .map(([k, val]) => `${fmtArg(k, verb, { ...spec, width: undefined })}:${fmtArg(val, verb, { ...spec, width: undefined })}`)
        .join(' ');
      return pad(`map[${inner}]`, spec, false);
    }
    return badVerb(verb, v);
  }
  if (v instanceof Date) return verb === 'v' || verb === 's' ? pad(formatGoTime(v), spec, false) : badVerb(verb, v);
  if (typeof v === 'boolean') return verb === 'v' || verb === 't' ? pad(String(v), spec, false) : badVerb(verb, v);
  if (typeof v === 'string') {
    switch (verb) {
      case 'v':
      case 's': {
        const s = spec.prec !== undefined ? [...v].slice(0, spec.prec).join('') : v;
        return pad(s, spec, false);
      }
      case 'q':
        return pad(goQuote(v), spec, false);
      case 'x':
      case 'X': {
        const hex = Buffer.from(v, 'utf8').toString('hex');
        return pad(verb === 'X' ? hex.toUpperCase() : hex, spec, false);
      }
      default:
        return badVerb(verb, v);
    }
  }
  if (typeof v === 'number' || typeof v === 'bigint') {
    const isInt = typeof v === 'bigint' || Number.isInteger(v);
    switch (verb) {
      case 'v':
        return isInt ? fmtInteger(v, 'd', spec) : fmtFloat(v as number, 'g', spec);
      case 'd':
      case 'o':
      case 'O':
      case 'b':
        return isInt ? fmtInteger(v, verb, spec) : badVerb(verb, v);
      case 'x':
      case 'X':
        return isInt ? fmtInteger(v, verb, spec) : badVerb(verb, v);
      case 'c':
        return isInt ? pad(String.fromCodePoint(Number(v)), spec, false) : badVerb(verb, v);
      case 'q':
        return isInt ? pad(`'${String.fromCodePoint(Number(v))}'`, spec, false) : badVerb(verb, v);
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
        return fmtFloat(Number(v), verb, spec);
      default:
        return badVerb(verb, v);
    }
  }
  return verb === 'v' ? pad(sprintValue(v), spec, false) : badVerb(verb, v);
}

/** fmt.Sprintf for the verbs templates use: %v %s %q %d %x %X %o %b %c %t %e %f %g %T %%, flags, width, precision. */
export function goSprintf(format: string, args: unknown[]): string {
  let out = '';
  let argi = 0;
  let i = 0;
  while (i < format.length) {
    const c = format[i]!;
    if (c !== '%') {
      out += c;
      i++;
      continue;
    }
    i++;
    const spec: FmtSpec = { minus: false, plus: false, sharp: false, space: false, zero: false };
    for (; i < format.length; i++) {
      const f = format[i];
      if (f === '-') spec.minus = true;
      else if (f === '+') spec.plus = true;
      else if (f === '#') spec.sharp = true;
      else if (f === ' ') spec.space = true;
      else if (f === '0') spec.zero = !spec.minus;
      else break;
    }
    const readNum = (): number | undefined => {
      if (format[i] === '*') {
        i++;
        const a = args[argi++];
        return typeof a === 'number' ? Math.trunc(a) : undefined;
      }
      const m = /^\d+/.exec(format.slice(i));
      if (!m) return undefined;
      i += m[0].length;
      return Number(m[0]);
    };
    spec.width = readNum();
    if (spec.width !== undefined && spec.width < 0) {
      spec.minus = true;
      spec.width = -spec.width;
    }
    if (format[i] === '.') {
      i++;
      spec.prec = readNum() ?? 0;
    }
    const verb = format[i];
    if (verb === undefined) {
      out += '%!(NOVERB)';
      break;
    }
    i++;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    out += fmtArg(args[argi++], verb, spec);
  }
  if (argi < args.length) {
    out += `%!(EXTRA ${args
      .slice(argi)
      .map((a) => (a === null || a === undefined ? '<nil>' : `${goTypeName(a)}=${sprintValue(a)}`))
      .join(', ')})`;
  }
  return out;
}

/** fmt.Sprint: spaces between operands when neither side is a string. */
function goSprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    const isStr = typeof a === 'string';
    if (i > 0 && !isStr && typeof args[i - 1] !== 'string') out += ' ';
    out += sprintValue(a);
  });
  return out;
}

// =============================================================================================================
// Go encoding/json

export interface GoJsonOptions {
  /** Escape <, > and & as \u003c, \u003e, \u0026 (encoding/json's default; Docker's `json` template function turns it off). */
  escapeHtml?: boolean;
  /** Indent like json.MarshalIndent(v, "", indent). */
  indent?: string;
}

/** Convert to the JSON-ready shape Go would marshal: Maps sorted, functions and undefined fields dropped. */
function toJsonShape(v: unknown): unknown {
  if (v === undefined || v === null || typeof v === 'function') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'object') return v;
  if (v instanceof Date) return formatRfc3339Nano(v);
  if (Array.isArray(v)) return v.map(toJsonShape);
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, val] of mapEntries(v)) o[k] = toJsonShape(val);
    return o;
  }
  const withToJson = v as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return toJsonShape(withToJson.toJSON());
  const o: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    if (val === undefined || typeof val === 'function') continue;
    o[k] = toJsonShape(val);
  }
  return o;
}

/**
 * Encode like Go's encoding/json: compact (or MarshalIndent-style), Maps with sorted keys, U+2028/U+2029 escaped,
 * lone surrogates replaced by U+FFFD, optional HTML escaping.
 */
export function goJson(value: unknown, opts: GoJsonOptions = {}): string {
  let s = JSON.stringify(toJsonShape(value), null, opts.indent) ?? 'null';
  s = s.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  s = s.replace(/(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/gi, '$1\\ufffd');
  if (opts.escapeHtml) s = s.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
  return s;
}

// =============================================================================================================
// Functions

/** A function failed: reported as "error calling NAME: ...". */
class FuncError extends Error {}

/** An argument has the wrong type: Go reports these without the "error calling" prefix. */
class ArgTypeError extends FuncError {}

/** Thrown value of {{break}} / {{continue}}. */
class LoopSignal {
  constructor(readonly kind: 'break' | 'continue') {}
}

interface FuncDef {
  /** Argument count: exact, or at least `min` when variadic. */
  min: number;
  variadic?: boolean;
  fn: (...args: unknown[]) => unknown;
}

function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'bigint') return v !== 0n;
  if (typeof v === 'string') return v !== '';
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (typeof v === 'function' || v instanceof Date) return true;
  return Object.keys(v as object).length > 0;
}

function wantString(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) throw new ArgTypeError('invalid value; expected string');
  throw new ArgTypeError(`wrong type for value; expected string; got ${goTypeName(v)}`);
}

function wantInt(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new ArgTypeError(`wrong type for value; expected int; got ${goTypeName(v)}`);
}

type Kind = 'bool' | 'number' | 'string' | 'nil' | 'other';
function basicKind(v: unknown): Kind {
  if (v === undefined || v === null) return 'nil';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number' || typeof v === 'bigint') return 'number';
  if (typeof v === 'string') return 'string';
  return 'other';
}

function eq(a: unknown, ...rest: unknown[]): boolean {
  if (rest.length === 0) throw new FuncError('missing argument for comparison');
  const ka = basicKind(a);
  for (const b of rest) {
    const kb = basicKind(b);
    if (ka !== kb) {
      if (ka !== 'nil' && kb !== 'nil') throw new FuncError('incompatible types for comparison');
      continue;
    }
    if (ka === 'other') {
      if (a !== b) throw new FuncError(`non-comparable types ${goTypeName(a)}: ${sprintValue(a)}, ${goTypeName(b)}: ${sprintValue(b)}`);
      return true;
    }
    // eslint-disable-next-line eqeqeq
    if (ka === 'nil' || (ka === 'number' ? Number(a) === Number(b) : a === b)) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka === 'bool' || ka === 'nil' || ka === 'other') throw new FuncError('invalid type for comparison');
  if (ka !== kb) throw new FuncError('incompatible types for comparison');
  return ka === 'number' ? Number(a) < Number(b) : (a as string) < (b as string);
}

function goTitle(s: string): string {
  let prev = ' ';
  let out = '';
  for (const ch of s) {
    const isSep = (c: string): boolean => {
      if (c.length === 1 && c.charCodeAt(0) < 0x80) return !/[A-Za-z0-9_]/.test(c);
      if (/[\p{L}\p{Nd}]/u.test(c)) return false;
      return /\s/u.test(c);
    };
    out += isSep(prev) ? ch.toUpperCase() : ch;
    prev = ch;
  }
  return out;
}

function indexOne(item: unknown, key: unknown): unknown {
  if (item === undefined || item === null) return '';
  if (Array.isArray(item) || typeof item === 'string') {
    const n = wantIndex(key);
    const len = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
    if (n < 0 || n >= len) throw new FuncError(`index out of range: ${n}`);
    return typeof item === 'string' ? Buffer.from(item)[n] : item[n];
  }
  if (item instanceof Map) return item.has(key) ? item.get(key) : item.has(String(key)) ? item.get(String(key)) : '';
  if (isMapLike(item)) {
    const k = String(key);
    return Object.prototype.hasOwnProperty.call(item, k) ? (item as Record<string, unknown>)[k] : '';
  }
  throw new FuncError(`can't index item of type ${goTypeName(item)}`);
}

function wantIndex(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new FuncError(`cannot index slice/array with type ${goTypeName(v)}`);
}

function goLen(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (v instanceof Map) return v.size;
  if (isMapLike(v)) return Object.keys(v).length;
  if (v === undefined || v === null) throw new FuncError('len of nil pointer');
  throw new FuncError(`len of type ${goTypeName(v)}`);
}

function goSlice(item: unknown, ...idx: unknown[]): unknown {
  if (typeof item !== 'string' && !Array.isArray(item)) throw new FuncError(`can't slice item of type ${goTypeName(item)}`);
  if (idx.length > 3) throw new FuncError(`too many slice indexes: ${idx.length}`);
  if (typeof item === 'string' && idx.length === 3) throw new FuncError('cannot 3-index slice a string');
  const buf = typeof item === 'string' ? Buffer.from(item) : undefined;
  const len = buf ? buf.length : (item as unknown[]).length;
  const ns = idx.map(wantIndex);
  const lo = ns[0] ?? 0;
  const hi = ns[1] ?? len;
  if (lo < 0 || hi > len || lo > hi) throw new FuncError(`slice index out of range`);
  return buf ? buf.subarray(lo, hi).toString() : (item as unknown[]).slice(lo, hi);
}

function htmlEscape(s: string): string {
  return s.replace(/[<>&'"\0]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&#39;', '"': '&#34;', '\0': '\ufffd' })[c]!);
}

function jsEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (ch === '"') out += '\\"';
    else if ('<>&=`'.includes(ch)) out += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else if (cp < 0x20) out += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}

function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/%20/g, '+')
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Go's and Docker's functions. `and`/`or` are evaluated lazily by the executor and only declared here. */
const BASE_FUNCS: Record<string, FuncDef> = {
  and: { min: 1, variadic: true, fn: () => undefined },
  or: { min: 1, variadic: true, fn: () => undefined },
  not: { min: 1, fn: (v) => !truth(v) },
  len: { min: 1, fn: goLen },
  index: { min: 1, variadic: true, fn: (item, ...keys) => keys.reduce((cur, k) => indexOne(cur, k), item) },
  slice: { min: 1, variadic: true, fn: goSlice },
  print: { min: 0, variadic: true, fn: (...a) => goSprint(a) },
  printf: { min: 1, variadic: true, fn: (f, ...a) => goSprintf(wantString(f), a) },
  println: { min: 0, variadic: true, fn: (...a) => a.map(sprintValue).join(' ') + '\n' },
  eq: { min: 1, variadic: true, fn: (a, ...b) => eq(a, ...b) },
  ne: { min: 2, fn: (a, b) => !eq(a, b) },
  lt: { min: 2, fn: (a, b) => lt(a, b) },
  le: { min: 2, fn: (a, b) => lt(a, b) || eq(a, b) },
  gt: { min: 2, fn: (a, b) => !lt(a, b) && !eq(a, b) },
  ge: { min: 2, fn: (a, b) => !lt(a, b) },
  html: { min: 0, variadic: true, fn: (...a) => htmlEscape(goSprint(a)) },
  js: { min: 0, variadic: true, fn: (...a) => jsEscape(goSprint(a)) },
  urlquery: { min: 0, variadic: true, fn: (...a) => queryEscape(goSprint(a)) },
  call: {
    min: 1,
    variadic: true,
    fn: (f, ...a) => {
      if (typeof f !== 'function') throw new FuncError(`non-function of type ${goTypeName(f)}`);
      return (f as (...x: unknown[]) => unknown)(...a);
    },
  },
  // Docker's additions (docker/cli templates package)
  json: { min: 1, fn: (v) => goJson(v).trim() },
  split: { min: 2, fn: (s, sep) => goSplit(wantString(s), wantString(sep)) },
  join: {
    min: 2,
    fn: (a, sep) => {
      if (!Array.isArray(a)) throw new ArgTypeError(`wrong type for value; expected []string; got ${goTypeName(a)}`);
      return a.map((e) => (typeof e === 'string' ? e : sprintValue(e))).join(wantString(sep));
    },
  },
  title: { min: 1, fn: (s) => goTitle(wantString(s)) },
  lower: { min: 1, fn: (s) => wantString(s).toLowerCase() },
  upper: { min: 1, fn: (s) => wantString(s).toUpperCase() },
  pad: {
    min: 3,
    fn: (s, pre, post) => {
      const str = wantString(s);
      return str === '' ? str : ' '.repeat(Math.max(0, wantInt(pre))) + str + ' '.repeat(Math.max(0, wantInt(post)));
    },
  },
  truncate: {
    min: 2,
    fn: (s, n) => {
      const str = wantString(s);
      const len = wantInt(n);
      const buf = Buffer.from(str);
      return buf.length < len ? str : buf.subarray(0, Math.max(0, len)).toString();
    },
  },
};

function goSplit(s: string, sep: string): string[] {
  if (sep === '') return [...s];
  return s.split(sep);
}

/** Docker renders table headers with these in place of the formatting functions, so headers stay intact. */
const HEADER_FUNCS: Record<string, FuncDef> = {
  json: { min: 1, fn: (v) => v },
  split: { min: 2, fn: (v) => v },
  join: { min: 2, fn: (v) => v },
  title: { min: 1, fn: (v) => v },
  lower: { min: 1, fn: (v) => v },
  upper: { min: 1, fn: (v) => v },
  truncate: { min: 2, fn: (v) => v },
};

const FUNC_NAMES: ReadonlySet<string> = new Set(Object.keys(BASE_FUNCS));

// =============================================================================================================
// Executor

class ExecError extends Error {
  constructor(
    readonly pos: number,
    readonly context: string,
    message: string,
  ) {
    super(message);
  }
}

/** Data for rendering a table header: every field resolves to its column title. */
class HeaderRow {
  constructor(readonly headers: Record<string, string>) {}
  title(field: string): string {
    return this.headers[field] ?? defaultHeader(field);
  }
}

/** "LocalVolumes" -> "LOCAL VOLUMES", "IPAddress" -> "IP ADDRESS". */
function defaultHeader(field: string): string {
  return field
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toUpperCase();
}

interface Scope {
  name: string;
  value: unknown;
}

class Executor {
  private readonly vars: Scope[];
  private out = '';

  constructor(
    root: unknown,
    private readonly funcs: Record<string, FuncDef>,
  ) {
    this.vars = [{ name: '$', value: root }];
  }

  run(nodes: Node[], dot: unknown): string {
    this.walk(nodes, dot);
    return this.out;
  }

  private walk(nodes: Node[], dot: unknown): void {
    for (const n of nodes) this.node(n, dot);
  }

  private node(n: Node, dot: unknown): void {
    switch (n.t) {
      case 'text':
        this.out += n.text;
        return;
      case 'action': {
        const v = this.pipeline(n.pipe, dot);
        if (n.pipe.decl.length === 0) this.out += printValue(v);
        return;
      }
      case 'if':
      case 'with': {
        const mark = this.vars.length;
        try {
          const v = this.pipeline(n.pipe, dot);
          if (truth(v)) this.walk(n.list, n.t === 'with' ? v : dot);
          else if (n.elseList) this.walk(n.elseList, dot);
        } finally {
          this.vars.length = mark;
        }
        return;
      }
      case 'range':
        this.range(n, dot);
        return;
      case 'break':
      case 'continue':
        throw new LoopSignal(n.t);
    }
  }

  private range(n: Extract<Node, { t: 'range' }>, dot: unknown): void {
    const mark = this.vars.length;
    try {
      const pipe = { ...n.pipe, decl: [] };
      const v = this.pipeline(pipe, dot);
      let entries: [unknown, unknown][];
      if (v === undefined || v === null) entries = [];
      else if (Array.isArray(v)) entries = v.map((e, i) => [i, e]);
      else if (typeof v === 'number' && Number.isInteger(v)) entries = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
      else if (isMapLike(v)) entries = mapEntries(v);
      else throw new ExecError(n.pipe.cmds[0]!.pos, pipeSrc(n.pipe), `range can't iterate over ${sprintValue(v)}`);
      if (entries.length === 0) {
        if (n.elseList) this.walk(n.elseList, dot);
        return;
      }
      const [kName, vName] = n.pipe.decl;
      const base = this.vars.length;
      for (const [k, e] of entries) {
        this.vars.length = base;
        if (n.pipe.decl.length === 1) this.vars.push({ name: kName!, value: typeof v === 'number' ? k : e });
        else if (n.pipe.decl.length === 2) this.vars.push({ name: kName!, value: k }, { name: vName!, value: e });
        try {
          this.walk(n.list, e);
        } catch (sig) {
          if (!(sig instanceof LoopSignal)) throw sig;
          if (sig.kind === 'break') break;
        }
      }
    } finally {
      this.vars.length = mark;
    }
  }

  private pipeline(p: Pipe, dot: unknown): unknown {
    let value: unknown = undefined;
    let hasFinal = false;
    for (const cmd of p.cmds) {
      value = this.command(cmd, dot, hasFinal, value);
      hasFinal = true;
    }
    if (p.assign) {
      const name = p.decl[0]!;
      for (let i = this.vars.length - 1; i >= 0; i--) {
        if (this.vars[i]!.name === name) {
          this.vars[i]!.value = value;
          break;
        }
      }
    } else {
      for (const name of p.decl) this.vars.push({ name, value });
    }
    return value;
  }

  private command(cmd: Cmd, dot: unknown, hasFinal: boolean, final: unknown): unknown {
    const [first, ...rest] = cmd.args;
    const notAFunction = () => {
      if (rest.length > 0 || hasFinal) throw new ExecError(cmd.pos, cmd.src, `can't give argument to non-function ${first!.src}`);
    };
    switch (first!.t) {
      case 'field':
        return this.fieldChain(dot, first!.path, first!, cmd, rest, dot, hasFinal, final);
      case 'var': {
        const v = this.lookupVar(first!.name);
        if (first!.path.length === 0) {
          notAFunction();
          return v;
        }
        return this.fieldChain(v, first!.path, first!, cmd, rest, dot, hasFinal, final);
      }
      case 'pipe': {
        const v = this.pipeline(first!.pipe, dot);
        if (first!.path.length === 0) {
          notAFunction();
          return v;
        }
        return this.fieldChain(v, first!.path, first!, cmd, rest, dot, hasFinal, final);
      }
      case 'ident':
        return this.call(first!.name, cmd, rest, dot, hasFinal, final);
      default:
        notAFunction();
        return this.arg(first!, dot);
    }
  }

  private lookupVar(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]!.name === name) return this.vars[i]!.value;
    return undefined;
  }

  private arg(a: Arg, dot: unknown): unknown {
    switch (a.t) {
      case 'field':
        return this.fieldChain(dot, a.path, a, undefined, [], dot, false, undefined);
      case 'dot':
        return dot;
      case 'var': {
        const v = this.lookupVar(a.name);
        return a.path.length ? this.fieldChain(v, a.path, a, undefined, [], dot, false, undefined) : v;
      }
      case 'ident':
        return this.call(a.name, { args: [a], src: a.src, pos: a.pos }, [], dot, false, undefined);
      case 'string':
        return a.v;
      case 'number':
        return a.v;
      case 'bool':
        return a.v;
      case 'nil':
        return null;
      case 'pipe': {
        const v = this.pipeline(a.pipe, dot);
        return a.path.length ? this.fieldChain(v, a.path, a, undefined, [], dot, false, undefined) : v;
      }
    }
  }

  /** Evaluate `.A.B.C` from `receiver`; arguments (and the pipeline's final value) go to the last element. */
  private fieldChain(
    receiver: unknown,
    path: string[],
    node: Arg,
    cmd: Cmd | undefined,
    args: Arg[],
    dot: unknown,
    hasFinal: boolean,
    final: unknown,
  ): unknown {
    let cur = receiver;
    path.forEach((name, i) => {
      const last = i === path.length - 1;
      cur = this.field(cur, name, node, last ? args : [], dot, last && hasFinal, final, cmd);
    });
    return cur;
  }

  private field(
    receiver: unknown,
    name: string,
    node: Arg,
    args: Arg[],
    dot: unknown,
    hasFinal: boolean,
    final: unknown,
    cmd: Cmd | undefined,
  ): unknown {
    if (receiver === undefined || receiver === null) return undefined;
    if (receiver instanceof HeaderRow) return receiver.title(name);
    let value: unknown;
    let found = false;
    if (receiver instanceof Map) {
      found = receiver.has(name);
      value = receiver.get(name);
    } else if (isMapLike(receiver) && typeof receiver !== 'function') {
      for (let o: object | null = receiver; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
        if (Object.prototype.hasOwnProperty.call(o, name)) {
          found = true;
          value = (receiver as Record<string, unknown>)[name];
          break;
        }
      }
    } else {
      throw new ExecError(node.pos, node.src, `can't evaluate field ${name} in type ${goTypeName(receiver)}`);
    }
    if (typeof value === 'function') {
      const argv = args.map((a) => this.arg(a, dot));
      if (hasFinal) argv.push(final);
      try {
        return (value as (...a: unknown[]) => unknown).apply(receiver, argv);
      } catch (e) {
        throw new ExecError(node.pos, cmd?.src ?? node.src, `error calling ${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (args.length > 0 || hasFinal) {
      throw new ExecError(node.pos, node.src, `${name} is not a method but has arguments`);
    }
    return found ? value : undefined;
  }

  private call(name: string, cmd: Cmd, args: Arg[], dot: unknown, hasFinal: boolean, final: unknown): unknown {
    const def = this.funcs[name]!;
    const argc = args.length + (hasFinal ? 1 : 0);
    if (def.variadic ? argc < def.min : argc !== def.min) {
      throw new ExecError(
        cmd.pos,
        cmd.src,
        `wrong number of args for ${name}: want ${def.variadic ? 'at least ' : ''}${def.min} got ${argc}`,
      );
    }
    if (name === 'and' || name === 'or') {
      // Lazy like Go 1.18+: stop at the first falsy (and) / truthy (or) argument and return it.
      let v: unknown;
      for (let i = 0; i < argc; i++) {
        v = i < args.length ? this.arg(args[i]!, dot) : final;
        if (name === 'and' ? !truth(v) : truth(v)) return v;
      }
      return v;
    }
    const argv = args.map((a) => this.arg(a, dot));
    if (hasFinal) argv.push(final);
    try {
      return def.fn(...argv);
    } catch (e) {
      if (e instanceof ArgTypeError) throw new ExecError(cmd.pos, cmd.src, e.message);
      if (e instanceof FuncError) throw new ExecError(cmd.pos, cmd.src, `error calling ${name}: ${e.message}`);
      throw e;
    }
  }
}

// =============================================================================================================
// Public API

function lineOf(tpl: string, pos: number): { line: number; col: number } {
  const before = tpl.slice(0, Math.min(pos, tpl.length));
  const nl = before.lastIndexOf('\n');
  return { line: before.split('\n').length, col: Buffer.byteLength(before.slice(nl + 1)) };
}

/** A parsed template, reusable across rows. */
export class Template {
  private constructor(
    private readonly source: string,
    private readonly nodes: Node[],
  ) {}

  /** Parse `source`; throws BerthError invalid-argument `template parsing error: ...`. */
  static parse(source: string): Template {
    try {
      return new Template(source, new Parser(lex(source), FUNC_NAMES).parse());
    } catch (e) {
      if (e instanceof ParseError) {
        const pos = e.pos === Number.MAX_SAFE_INTEGER ? source.length : e.pos;
        throw invalidArgument(`template parsing error: template: :${lineOf(source, pos).line}: ${e.message}`);
      }
      throw e;
    }
  }

  /** Render with `data` as dot and `$`; throws BerthError invalid-argument `template: :L:C: executing ...`. */
  execute(data: unknown): string {
    return this.run(data, BASE_FUNCS);
  }

  /** Render a table header: fields resolve to `headers[name]` (or a title derived from the name). */
  executeHeader(headers: Record<string, string>): string {
    return this.run(new HeaderRow(headers), { ...BASE_FUNCS, ...HEADER_FUNCS });
  }

  private run(data: unknown, funcs: Record<string, FuncDef>): string {
    try {
      return new Executor(data, funcs).run(this.nodes, data);
    } catch (e) {
      if (e instanceof ExecError) {
        const { line, col } = lineOf(this.source, e.pos);
        const ctx = e.context.length > 20 ? `${e.context.slice(0, 20)}...` : e.context;
        throw invalidArgument(`template: :${line}:${col}: executing "" at <${ctx}>: ${e.message}`);
      }
      if (e instanceof LoopSignal) return '';
      if (e instanceof BerthError) throw e;
      throw invalidArgument(`template: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  }
}

/** Render a Go template once (`docker inspect --format` style). */
export function renderTemplate(tpl: string, data: unknown): string {
  return Template.parse(tpl).execute(data);
}

/** Whether a --format value selects Docker's table output ("table" prefix). */
export function isTableFormat(format: string): boolean {
  return format.startsWith('table');
}

/** A row as Docker's formatter contexts marshal it: a Go map, so `{{json .}}` sorts its keys. */
function rowAsMap(row: object): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const [k, v] of Object.entries(row)) m.set(k, v);
  // Methods defined on a class prototype (e.g. Label(name)) stay callable.
  for (let p = Object.getPrototypeOf(row); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k !== 'constructor' && !m.has(k)) {
        const v = (row as Record<string, unknown>)[k];
        m.set(k, typeof v === 'function' ? v.bind(row) : v);
      }
    }
  }
  return m;
}

/**
 * Render list output the way Docker's formatter does:
 * - no format (or exactly "table") uses `defaultTable`;
 * - "table ..." renders a header row (fields mapped through `headers`, e.g. `{ ID: 'CONTAINER ID' }`, otherwise
 *   derived from the field name) and one row per item, aligned like Docker's tabwriter (min width 10, padding 3);
 *   the header is printed even with no rows;
 * - "json" prints each row as compact JSON with sorted keys, one per line;
 * - anything else renders each row through the template, one line each.
 * Literal `\t` and `\n` in the format become tab and newline, and surrounding spaces are trimmed, as in Docker.
 * Every line of the result ends with "\n".
 */
export function formatRows(
  format: string | undefined,
  rows: object[],
  defaultTable: string,
  headers: Record<string, string> = {},
): string {
  let f = format === undefined || format === '' || format === 'table' ? defaultTable : format;
  const table = isTableFormat(f);
  if (table) f = f.slice('table'.length);
  else if (f === 'json') f = '{{json .}}';
  f = f.replace(/^ +| +$/g, '').replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const tpl = Template.parse(f);
  let body = '';
  for (const row of rows) body += tpl.execute(rowAsMap(row)) + '\n';
  if (!table) return body;
  return tabwrite(tpl.executeHeader(headers) + '\n' + body);
}
