/**
 * Variable substitution as the Dockerfile builder does it (BuildKit's shell lexer): `$v`, `${v}`, `${v:-w}`,
 * `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v?msg}`, the pattern forms `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`,
 * `${v/p/r}`, `${v//p/r}`, quote removal ('...' keeps everything literal, "..." still expands `$`), and the escape
 * character (`\` or the `# escape=` one) making the next character literal. It also splits the result into words the
 * way EXPOSE and the heredoc detector need. Which instructions get expanded is decided in instructions.ts.
 */
import { invalidArgument } from '../base/errors.js';

/** Variables visible to an instruction. A missing key is "unset", which differs from "" for `${v-w}` and `${v?}`. */
export type Vars = ReadonlyMap<string, string>;

export interface ExpandOptions {
  /** The Dockerfile's escape character (the `# escape=` directive); `\` by default. */
  escape?: string;
  /**
   * Heredoc-body mode: quotes are ordinary characters and the escape character only escapes `$`, itself and `` ` ``
   * (as in a POSIX here-document), so a script keeps its quoting. BuildKit's "SkipProcessQuotes".
   */
  keepQuotes?: boolean;
  /** Leave references to unset variables as written (`$X`, `${X:-y}`) instead of substituting "". */
  keepUnset?: boolean;
  /** Keep quote characters in the output while still honouring their meaning (used to detect quoted words). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output while still honouring their meaning. */
  rawEscapes?: boolean;
}

export interface Expansion {
  /** The whole text after substitution and quote removal, inner whitespace kept. */
  value: string;
  /** The result split into words on unquoted whitespace (whitespace from substituted values splits too). */
  words: string[];
  /** Names that were looked up and found. */
  used: string[];
  /** Names that were referenced but unset (for the UndefinedVar check). */
  unset: string[];
}

export type ExpansionResult = ({ ok: true } & Expansion) | { ok: false; error: string };

/** Expands `text`; syntax errors and `${v?msg}` failures come back as `{ ok: false, error }`, never thrown. */
export function expand(text: string, vars: Vars, options: ExpandOptions = {}): ExpansionResult {
  const lexer = new Lexer(text, vars, options);
  try {
    const { value, words } = lexer.run();
    return { ok: true, value, words, used: [...lexer.used], unset: [...lexer.unset] };
  } catch (e) {
    if (e instanceof ExpandError) return { ok: false, error: `failed to process ${goQuote(text)}: ${e.message}` };
    throw e;
  }
}

/** The expanded text; throws an invalid-argument BerthError with Docker's message on failure. */
export function expandWord(text: string, vars: Vars, options?: ExpandOptions): string {
  const r = expand(text, vars, options);
  if (!r.ok) throw invalidArgument(r.error);
  return r.value;
}

/** The expanded text split into words; throws like expandWord. */
export function expandWords(text: string, vars: Vars, options?: ExpandOptions): string[] {
  const r = expand(text, vars, options);
  if (!r.ok) throw invalidArgument(r.error);
  return r.words;
}

/** Go's %q for the error messages Docker prints ("failed to process \"${a\": ..."). */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

class ExpandError extends Error {}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
const isSpace = (ch: string): boolean => /\s/.test(ch) && ch !== '\uFEFF';
const isLetter = (ch: string): boolean => /\p{L}/u.test(ch);
const isDigit = (ch: string): boolean => /\p{Nd}/u.test(ch);

/** Accumulates words the way the shell splits unquoted text: quoted pieces never split, even when empty. */
class WordSplitter {
  words: string[] = [];
  private word = '';
  private inWord = false;

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRaw(s: string): void {
    this.word += s;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class Lexer {
  private pos = 0;
  private readonly escape: string;
  readonly used = new Set<string>();
  readonly unset = new Set<string>();

  constructor(
    private readonly src: string,
    private readonly vars: Vars,
    private readonly opts: ExpandOptions,
  ) {
    this.escape = opts.escape ?? '\\';
  }

  run(): { value: string; words: string[] } {
    return this.until(undefined);
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private next(): string | undefined {
    return this.src[this.pos++];
  }

  private lookup(name: string): string | undefined {
    const v = this.vars.get(name);
    if (v === undefined) this.unset.add(name);
    else this.used.add(name);
    return v;
  }

  /** Processes up to `stop` (consumed) or the end of input when stop is undefined. */
  private until(stop: string | undefined): { value: string; words: string[] } {
    let result = '';
    const words = new WordSplitter();
    const quotes = !this.opts.keepQuotes;
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (stop !== undefined && ch === stop) {
        this.pos++;
        return { value: result, words: words.finish() };
      }
      if (ch === '$') {
        const v = this.dollar();
        result += v;
        words.addString(v);
      } else if (quotes && ch === "'") {
        const v = this.singleQuoted();
        result += v;
        words.addRaw(v);
      } else if (quotes && ch === '"') {
        const v = this.doubleQuoted();
        result += v;
        words.addRaw(v);
      } else if (ch === this.escape) {
        this.pos++;
        const escaped = this.peek();
        if (this.opts.keepQuotes && (escaped === undefined || !['$', this.escape, '`'].includes(escaped))) {
          result += ch;
          words.addRaw(ch);
          continue;
        }
        if (this.opts.rawEscapes) {
          result += ch;
          words.addRaw(ch);
        }
        if (escaped === undefined) break; // a trailing escape character is dropped
        this.pos++;
        result += escaped;
        words.addRaw(escaped);
      } else {
        this.pos++;
        result += ch;
        words.addChar(ch);
      }
    }
    if (stop !== undefined) throw new ExpandError(`unexpected end of statement while looking for matching ${stop}`);
    return { value: result, words: words.finish() };
  }

  private singleQuoted(): string {
    const raw = this.opts.rawQuotes ? "'" : '';
    this.pos++;
    let out = raw;
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new ExpandError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return out + raw;
      out += ch;
    }
  }

  private doubleQuoted(): string {
    const raw = this.opts.rawQuotes ? '"' : '';
    this.pos++;
    let out = raw;
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new ExpandError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.pos++;
        return out + raw;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.pos++;
      if (ch === this.escape) {
        if (this.opts.rawEscapes) out += ch;
        const n = this.peek();
        if (n === undefined) continue; // escape at the very end: dropped, then the missing quote is reported
        if (n === '"' || n === '$' || n === this.escape) {
          this.pos++;
          out += n;
          continue;
        }
      }
      out += ch;
    }
  }

  private name(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== undefined && isDigit(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) {
        this.pos++;
        return ch;
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += ch;
      this.pos++;
    }
    return name;
  }

  /** The rest of a `${...}` up to its closing brace, expanded; "missing '}'" when the input ends first. */
  private braceWord(): string {
    try {
      return this.until('}').value;
    } catch (e) {
      if (e instanceof ExpandError && this.peek() === undefined) throw new ExpandError("syntax error: missing '}'");
      throw e;
    }
  }

  private dollar(): string {
    this.pos++; // '$'
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      const v = this.lookup(name);
      if (v === undefined && this.opts.keepUnset) return `$${name}`;
      return v ?? '';
    }
    this.pos++; // '{'
    const first = this.peek();
    if (first === undefined) throw new ExpandError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpandError('syntax error: bad substitution');
    const name = this.name();
    if (name === '') throw new ExpandError('syntax error: bad substitution');
    const op = this.next();
    if (op === undefined) throw new ExpandError("syntax error: missing '}'");
    if (op === '}') {
      const v = this.lookup(name);
      if (v === undefined && this.opts.keepUnset) return `\${${name}}`;
      return v ?? '';
    }
    let colon = false;
    let modifier = op;
    if (op === ':') {
      colon = true;
      const m = this.next();
      if (m === undefined) throw new ExpandError("syntax error: missing '}'");
      modifier = m;
    }
    if (colon && !'-+?'.includes(modifier)) throw new ExpandError(`unsupported modifier (${modifier}) in substitution`);
    switch (modifier) {
      case '-':
      case '+':
      case '?':
        return this.defaulting(name, colon, modifier);
      case '#':
      case '%':
        return this.trimming(name, modifier);
      case '/':
        return this.replacing(name);
      default:
        throw new ExpandError(`unsupported modifier (${modifier}) in substitution`);
    }
  }

  private defaulting(name: string, colon: boolean, modifier: string): string {
    const word = this.braceWord();
    const v = this.lookup(name);
    if (v === undefined && this.opts.keepUnset) return `\${${name}${colon ? ':' : ''}${modifier}${word}}`;
    const missing = v === undefined || (colon && v === '');
    if (modifier === '-') return missing ? word : v!;
    if (modifier === '+') return missing ? '' : word;
    if (!missing) return v!;
    const fallback = v === undefined ? 'is not allowed to be unset' : 'is not allowed to be empty';
    throw new ExpandError(`${name}: ${word === '' ? fallback : word}`);
  }

  private trimming(name: string, op: string): string {
    const longest = this.peek() === op;
    if (longest) this.pos++;
    const { pattern } = this.pattern('}');
    const v = this.lookup(name);
    if (v === undefined && this.opts.keepUnset) return `\${${name}${longest ? op + op : op}${pattern}}`;
    const value = v ?? '';
    const re = globToRegExp(pattern);
    // Try every candidate prefix/suffix length, shortest or longest first.
    const lengths = [...Array(value.length + 1).keys()];
    if (longest) lengths.reverse();
    for (const n of lengths) {
      if (op === '#' && re.test(value.slice(0, n))) return value.slice(n);
      if (op === '%' && re.test(value.slice(value.length - n))) return value.slice(0, value.length - n);
    }
    return value;
  }

  private replacing(name: string): string {
    const all = this.peek() === '/';
    if (all) this.pos++;
    const { pattern, stop } = this.pattern('/}');
    const replacement = stop === '/' ? this.braceWord() : '';
    const v = this.lookup(name);
    if (v === undefined && this.opts.keepUnset) {
      return `\${${name}/${all ? '/' : ''}${pattern}${stop === '/' ? '/' + replacement : ''}}`;
    }
    const value = v ?? '';
    if (pattern === '') return value;
    const re = globToRegExp(pattern);
    let out = '';
    let i = 0;
    while (i < value.length) {
      // The longest match starting at i, as the shell takes it.
      let matched = 0;
      for (let n = value.length - i; n > 0; n--) {
        if (re.test(value.slice(i, i + n))) {
          matched = n;
          break;
        }
      }
      if (matched > 0) {
        out += replacement;
        i += matched;
        if (!all) return out + value.slice(i);
      } else {
        out += value[i];
        i++;
      }
    }
    return out;
  }

  /**
   * A glob pattern up to one of `stops` (consumed): escaped and quoted characters become literal (`\x`), `$`
   * references are expanded and stay pattern text.
   */
  private pattern(stops: string): { pattern: string; stop: string } {
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new ExpandError("syntax error: missing '}'");
      if (stops.includes(ch)) {
        this.pos++;
        return { pattern: out, stop: ch };
      }
      if (ch === '$') {
        out += this.dollar();
      } else if (ch === "'" || ch === '"') {
        const literal = ch === "'" ? this.singleQuoted() : this.doubleQuoted();
        for (const c of literal) out += '\\' + c;
      } else if (ch === this.escape && this.src[this.pos + 1] !== undefined) {
        this.pos++;
        out += '\\' + this.next();
      } else {
        this.pos++;
        out += ch;
      }
    }
  }
}

/** A shell glob (`*`, `?`, `\x` for a literal x) as an anchored regular expression. */
function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (ch === '*') re += '[\\s\\S]*';
    else if (ch === '?') re += '[\\s\\S]';
    else re += escapeRe(ch);
  }
  return new RegExp(`^${re}$`, 'u');
}

function escapeRe(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}
