/**
 * The ways Dockerfile instructions split their argument text, each keeping where every piece starts so errors can
 * point at it: whitespace-separated words (FROM, EXPOSE, shell-form COPY), quote-aware words that keep their quotes
 * for the expander (ENV, LABEL, ARG), and JSON arrays (the exec form).
 */

/** A piece of an argument string and its offset in that string. */
export interface Word {
  text: string;
  offset: number;
}

/** Split on runs of space, tab, \v, \f and \r, as BuildKit's whitespace-delimited parser does. */
export function splitWhitespace(s: string): Word[] {
  const words: Word[] = [];
  const re = /[^\t\v\f\r ]+/g;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) words.push({ text: m[0], offset: m.index });
  return words;
}

const isSpace = (ch: string): boolean => /\s/.test(ch) && ch !== '\uFEFF';

/**
 * Words separated by unquoted whitespace, with quotes and escape characters left in place (the expander removes them
 * later): `a="b c" d\ e` gives `a="b c"` and `d\ e`. An escape character at the very end is dropped.
 */
export function parseWords(s: string, escape: string): Word[] {
  const words: Word[] = [];
  let word = '';
  let start = -1;
  let quote: string | undefined;
  let blankOk = false;
  const flush = () => {
    if (start >= 0 && (blankOk || word.length > 0)) words.push({ text: word, offset: start });
    word = '';
    start = -1;
    blankOk = false;
  };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quote === undefined) {
      if (isSpace(ch)) {
        flush();
        continue;
      }
      if (start < 0) start = i;
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      } else if (ch === escape) {
        if (i + 1 === s.length) continue;
        word += ch + s[++i];
        continue;
      }
      word += ch;
    } else {
      if (ch === quote) {
        quote = undefined;
      } else if (ch === escape && quote !== "'") {
        if (i + 1 === s.length) {
          quote = undefined;
          continue;
        }
        word += ch + s[++i];
        continue;
      }
      word += ch;
    }
  }
  flush();
  return words;
}

/** The exec form: a JSON array of strings, anything that is not JSON (shell form), or JSON with non-strings. */
export type JsonArgs = { kind: 'json'; values: string[] } | { kind: 'not-json' } | { kind: 'not-strings' };

/** Docker's test for the exec form: the text starts with `[` and is a valid JSON array; elements must be strings. */
export function parseJsonArray(s: string): JsonArgs {
  const t = s.replace(/^\s+/, '');
  if (!t.startsWith('[')) return { kind: 'not-json' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(t);
  } catch {
    return { kind: 'not-json' };
  }
  if (!Array.isArray(parsed)) return { kind: 'not-json' };
  if (!parsed.every((v): v is string => typeof v === 'string')) return { kind: 'not-strings' };
  return { kind: 'json', values: parsed };
}

/** Go's strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}
