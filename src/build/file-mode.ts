import { invalidArgument } from '../base/errors.js';

/** A `--chmod` as a change of mode: the new permission bits of an entry, given its current bits and whether it is a directory. */
export type ModeChange = (mode: number, isDir: boolean) => number;

const CLASS_BITS = { u: 0o700, g: 0o070, o: 0o007 } as const;
const CLASS_SHIFT = { u: 6, g: 3, o: 0 } as const;
type Who = keyof typeof CLASS_BITS;

/**
 * Parses COPY/ADD `--chmod`: an octal mode up to 7777 (set as it is), or chmod(1)'s symbolic form, clauses like
 * `u=rwX,go=rX` or `+x` (`[ugoa]*` then actions `[-+=]` with `[rwxXst]*` or a class `[ugo]` to copy). A missing
 * class means all of them (no umask applies, as in BuildKit). Throws invalid-argument naming the parameter.
 */
export function parseModeChange(spec: string): ModeChange {
  if (/^[0-7]+$/.test(spec)) {
    const n = parseInt(spec, 8);
    if (n > 0o7777) throw invalidArgument(`invalid chmod parameter: '${spec}'. it should be octal string and between 0 and 07777`);
    return () => n;
  }
  if (/^\d+$/.test(spec)) throw invalidArgument(`invalid chmod parameter: '${spec}'. it should be octal string and between 0 and 07777`);
  const clauses = spec.split(',').map((c) => parseClause(c, spec));
  return (mode, isDir) => clauses.reduce((m, apply) => apply(m, isDir), mode & 0o7777);
}

function parseClause(clause: string, spec: string): ModeChange {
  const bad = () => invalidArgument(`invalid chmod parameter: '${spec}'`);
  const whoText = /^[ugoa]*/.exec(clause)![0];
  const who: Who[] = whoText === '' || whoText.includes('a') ? ['u', 'g', 'o'] : ([...new Set(whoText)] as Who[]);
  const mask = who.reduce((m, w) => m | CLASS_BITS[w], 0);
  const actions: { op: string; perms: string }[] = [];
  let rest = clause.slice(whoText.length);
  if (rest === '') throw bad();
  while (rest !== '') {
    const op = rest[0]!;
    if (!'+-='.includes(op)) throw bad();
    const copy = /^[ugo]/.exec(rest.slice(1));
    const perms = copy ? copy[0] : /^[rwxXst]*/.exec(rest.slice(1))![0];
    actions.push({ op, perms });
    rest = rest.slice(1 + perms.length);
  }
  return (mode, isDir) => {
    let m = mode;
    for (const { op, perms } of actions) {
      let bits = 0;
      if (/^[ugo]$/.test(perms)) {
        const v = (m >> CLASS_SHIFT[perms as Who]) & 7;
        bits = ((v << 6) | (v << 3) | v) & mask;
      } else {
        let rwx = 0;
        for (const p of perms) {
          if (p === 'r') rwx |= 4;
          else if (p === 'w') rwx |= 2;
          else if (p === 'x') rwx |= 1;
          else if (p === 'X' && (isDir || (m & 0o111) !== 0)) rwx |= 1;
          else if (p === 's') bits |= (who.includes('u') ? 0o4000 : 0) | (who.includes('g') ? 0o2000 : 0);
          else if (p === 't') bits |= who.includes('o') ? 0o1000 : 0;
        }
        bits |= ((rwx << 6) | (rwx << 3) | rwx) & mask;
      }
      if (op === '+') m |= bits;
      else if (op === '-') m &= ~bits;
      else {
        // "=" clears the classes' bits first, and their set-id bits but on directories (as GNU chmod does).
        const clear = mask | (who.includes('u') && !isDir ? 0o4000 : 0) | (who.includes('g') && !isDir ? 0o2000 : 0) | (who.includes('o') ? 0o1000 : 0);
        m = (m & ~clear) | bits;
      }
    }
    return m;
  };
}
