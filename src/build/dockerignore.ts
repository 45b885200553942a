/**
 * .dockerignore semantics (moby/patternmatcher and its ignorefile reader): one pattern per line; lines starting with
 * `#` are comments; patterns are cleaned like Go's filepath.Clean with a leading `/` dropped (so `/a`, `./a` and `a/`
 * all mean `a`); `*` and `?` never cross `/`, `**` spans any number of directories, `[...]` is a character class,
 * `\` escapes; a pattern that matches a directory excludes everything below it; `!pattern` re-includes, and the last
 * matching pattern wins.
 *
 * What Docker does with the build files themselves: the builder always reads the Dockerfile and the ignore file (they
 * are sent even when listed), but COPY and ADD follow the patterns, so a `.dockerignore` that lists `Dockerfile`
 * keeps it out of `COPY . .`. That is exactly `ignores()`: callers read the Dockerfile directly, not through it.
 * A `<Dockerfile>.dockerignore` next to the Dockerfile replaces the context's `.dockerignore` (ignoreFileCandidates).
 */
import { type Diagnostic, error } from './diagnostic.js';

export interface IgnorePattern {
  /** The cleaned pattern, without its `!`. */
  pattern: string;
  /** A `!` line: re-includes what earlier patterns excluded. */
  exclusion: boolean;
  /** 1-based line in the ignore file (0 for patterns given as a list). */
  line: number;
}

export interface IgnoreFile {
  patterns: IgnorePattern[];
  diagnostics: Diagnostic[];
}

/** Reads a .dockerignore; bad patterns become error diagnostics (Docker refuses the build) and are left out. */
export function parseDockerignore(text: string): IgnoreFile {
  const patterns: IgnorePattern[] = [];
  const diagnostics: Diagnostic[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (i === 0 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.startsWith('#')) continue;
    const r = normalizePattern(line);
    if (r === undefined) continue;
    if (typeof r === 'string') {
      diagnostics.push(error(r, { line: i + 1, column: 1 }));
      continue;
    }
    patterns.push({ ...r, line: i + 1 });
  }
  return { patterns, diagnostics };
}

/** One ignore-file line -> pattern, undefined for a blank line, or an error message. */
function normalizePattern(text: string): Omit<IgnorePattern, 'line'> | string | undefined {
  let p = text.trim();
  if (p === '') return undefined;
  const exclusion = p.startsWith('!');
  if (exclusion) p = p.slice(1).trim();
  if (p === '') return 'illegal exclusion pattern: "!"';
  p = cleanPath(p);
  if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
  if (!validGlob(p)) return 'syntax error in pattern';
  return { pattern: p, exclusion };
}

/** Go's path.Clean. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** Go's filepath.Match syntax check: classes closed and non-empty, ranges well formed, no trailing `\`. */
function validGlob(p: string): boolean {
  let i = 0;
  const esc = (): boolean => {
    const ch = p[i];
    if (ch === undefined || ch === '-' || ch === ']') return false;
    if (ch === '\\') {
      i++;
      if (p[i] === undefined) return false;
    }
    i++;
    return true;
  };
  while (i < p.length) {
    const ch = p[i]!;
    if (ch === '\\') {
      if (i + 1 >= p.length) return false;
      i += 2;
    } else if (ch === '[') {
      i++;
      if (p[i] === '^') i++;
      let n = 0;
      for (;;) {
        if (p[i] === ']' && n > 0) {
          i++;
          break;
        }
        const lo = p[i] === '\\' ? p[i + 1] : p[i];
        if (!esc()) return false;
        if (p[i] === '-') {
          i++;
          const hi = p[i] === '\\' ? p[i + 1] : p[i];
          if (!esc()) return false;
          if (lo !== undefined && hi !== undefined && hi < lo) return false;
        }
        n++;
      }
    } else {
      i++;
    }
  }
  return true;
}

const REGEX_ESCAPE = new Set([...'.+()|{}$']);
const escapeRe = (ch: string): string => (/[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch);

type Compiled =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'suffix'; value: string }
  | { kind: 'regexp'; re: RegExp };

/** patternmatcher's compile: exact, prefix (`a/**`), suffix (`**\/a`) or a regular expression. */
function compile(pattern: string): Compiled {
  let re = '^';
  let kind: Compiled['kind'] = 'exact';
  const chars = [...pattern];
  for (let i = 0, n = 0; i < chars.length; i++, n++) {
    const ch = chars[i]!;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        if (i + 1 >= chars.length) {
          if (kind === 'exact') kind = 'prefix';
          else {
            re += '.*';
            kind = 'regexp';
          }
        } else {
          re += '(.*/)?';
          kind = 'regexp';
        }
        if (n === 0) kind = 'suffix';
      } else {
        re += '[^/]*';
        kind = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      kind = 'regexp';
    } else if (REGEX_ESCAPE.has(ch)) {
      re += `\\${ch}`;
    } else if (ch === '\\') {
      if (i + 1 < chars.length) {
        re += escapeRe(chars[++i]!);
        kind = 'regexp';
      } else {
        re += '\\\\';
      }
    } else if (ch === '[' || ch === ']') {
      re += ch;
      kind = 'regexp';
    } else {
      re += ch;
    }
  }
  switch (kind) {
    case 'exact':
      return { kind, value: pattern };
    case 'prefix':
      return { kind, value: pattern.slice(0, -2) };
    case 'suffix':
      return { kind, value: pattern.slice(2) };
    default:
      try {
        return { kind: 'regexp', re: new RegExp(`${re}$`) };
      } catch {
        return { kind: 'exact', value: '\0' }; // validGlob rejects what JS cannot compile; never matches
      }
  }
}

function matches(c: Compiled, path: string): boolean {
  switch (c.kind) {
    case 'exact':
      return path === c.value;
    case 'prefix':
      return path.startsWith(c.value);
    case 'suffix':
      return path.endsWith(c.value) || (c.value.startsWith('/') && path === c.value.slice(1));
    case 'regexp':
      return c.re.test(path);
  }
}

export interface IgnoreMatcher {
  readonly patterns: readonly IgnorePattern[];
  /**
   * Whether `relPath` (relative to the context, `/`-separated; a leading `/` or `./` is allowed) is left out of the
   * context: the last pattern matching it or one of its parent directories decides. The context root itself is never
   * ignored. `isDir` does not change the result (Docker matches files and directories alike); it is accepted so
   * walkers can pass what they know.
   */
  ignores(relPath: string, isDir?: boolean): boolean;
  /**
   * Whether a walker must look inside `dir`: false only when `dir` is ignored and no `!` pattern can re-include
   * anything below it, so the whole subtree can be skipped. May say true when unsure.
   */
  mayMatchInside(dir: string): boolean;
}

/** A matcher from the text of an ignore file, a list of patterns, or a parsed file (bad patterns are skipped). */
export function createIgnoreMatcher(source: string | readonly string[] | IgnoreFile): IgnoreMatcher {
  let patterns: IgnorePattern[];
  if (typeof source === 'string') patterns = parseDockerignore(source).patterns;
  else if (Array.isArray(source)) {
    patterns = [];
    for (const s of source as readonly string[]) {
      const r = normalizePattern(s);
      if (r !== undefined && typeof r !== 'string') patterns.push({ ...r, line: 0 });
    }
  } else patterns = (source as IgnoreFile).patterns;
  const compiled = patterns.map((p) => ({ ...p, c: compile(p.pattern), segments: p.pattern.split('/') }));

  const ignores = (relPath: string): boolean => {
    const file = normalizePath(relPath);
    if (file === '.' || file === '') return false;
    const parts = file.split('/');
    let matched = false;
    for (const p of compiled) {
      if (p.exclusion !== matched) continue;
      let m = matches(p.c, file);
      for (let i = 1; !m && i < parts.length; i++) m = matches(p.c, parts.slice(0, i).join('/'));
      if (m) matched = !p.exclusion;
    }
    return matched;
  };

  const mayMatchInside = (dir: string): boolean => {
    if (!ignores(dir)) return true;
    const d = normalizePath(dir);
    const dirParts = d === '.' ? [] : d.split('/');
    return compiled.some((p) => p.exclusion && couldMatchBelow(p.segments, dirParts));
  };

  return { patterns, ignores: (p) => ignores(p), mayMatchInside };
}

function normalizePath(p: string): string {
  let c = cleanPath(p);
  while (c.startsWith('/')) c = c.slice(1);
  return c === '' ? '.' : c;
}

/** Could a pattern (by `/`-segments) match some path strictly below `dir`? Conservative: true when unsure. */
function couldMatchBelow(patternSegments: readonly string[], dirParts: readonly string[]): boolean {
  for (let k = 0; k < dirParts.length; k++) {
    const seg = patternSegments[k];
    if (seg === undefined) return true; // the pattern names an ancestor of dir
    if (seg.includes('**')) return true;
    const c = compile(seg);
    if (!matches(c, dirParts[k]!)) return false;
  }
  return true;
}

/**
 * Where the ignore file for a Dockerfile is looked for, first match wins: `<Dockerfile>.dockerignore` beside it,
 * then `.dockerignore` at the context root. `dockerfile` is the Dockerfile's path relative to the context.
 */
export function ignoreFileCandidates(dockerfile: string): string[] {
  return [`${dockerfile}.dockerignore`, '.dockerignore'];
}
