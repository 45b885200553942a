/**
 * Diagnostics: the build front end reports every expected failure (syntax errors, bad flags, lint findings) as data
 * with a position instead of throwing, so one pass can report all problems and an editor or the CLI can point at them.
 */

export type Severity = 'error' | 'warning';

/**
 * One finding. `line` and `column` are 1-based and point at the first character concerned (a column counts UTF-16
 * code units, as JavaScript strings do). `rule` names the lint rule (BuildKit's check names, e.g.
 * "JSONArgsRecommended") when the finding comes from one; parse errors have none.
 */
export interface Diagnostic {
  severity: Severity;
  message: string;
  line: number;
  column: number;
  endLine?: number;
  rule?: string;
}

/** A position in the Dockerfile, 1-based. */
export interface Position {
  line: number;
  column: number;
}

export function error(message: string, at: Position, extra?: Partial<Diagnostic>): Diagnostic {
  return { severity: 'error', message, line: at.line, column: at.column, ...extra };
}

export function warning(message: string, at: Position, extra?: Partial<Diagnostic>): Diagnostic {
  return { severity: 'warning', message, line: at.line, column: at.column, ...extra };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** Diagnostics sorted by position, errors before warnings on the same spot. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort(
    (a, b) => a.line - b.line || a.column - b.column || (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1),
  );
}

/**
 * Docker's one-line rendering: errors as "dockerfile parse error on line 3: <message>", warnings as
 * "<rule>: <message> (line 3)" (the form `docker build` prints under "WARNING:"). Line 0 means "not from the
 * Dockerfile" (a --build-arg finding) and is printed without a line.
 */
export function formatDiagnostic(d: Diagnostic): string {
  if (d.line === 0) return d.rule ? `${d.rule}: ${d.message}` : d.message; // not from the Dockerfile (--build-arg)
  if (d.severity === 'error') return `dockerfile parse error on line ${d.line}: ${d.message}`;
  return d.rule ? `${d.rule}: ${d.message} (line ${d.line})` : `${d.message} (line ${d.line})`;
}

/**
 * The option closest to `value` by edit distance (< 3), as BuildKit's "did you mean" suggestions pick it, or
 * undefined when nothing is close or `value` is itself an option. With caseSensitive false the suggestion takes the
 * casing of `value` when that is all-lower or all-upper.
 */
export function suggest(value: string, options: readonly string[], caseSensitive: boolean): string | undefined {
  const v = caseSensitive ? value : value.toLowerCase();
  let best: string | undefined;
  let min = 3;
  for (const option of [...options].sort()) {
    const o = caseSensitive ? option : option.toLowerCase();
    if (o === v) return undefined;
    const d = levenshtein(v, o);
    if (d < min) {
      min = d;
      best = caseSensitive ? o : matchCase(o, value);
    }
  }
  return best;
}

function matchCase(option: string, original: string): string {
  if (original === original.toLowerCase()) return option.toLowerCase();
  if (original === original.toUpperCase()) return option.toUpperCase();
  return option;
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** Appends " (did you mean X?)" when a suggestion exists. */
export function withSuggestion(message: string, value: string, options: readonly string[], caseSensitive: boolean): string {
  const s = suggest(value, options, caseSensitive);
  return s === undefined ? message : `${message} (did you mean ${s}?)`;
}
