/**
 * Variable substitution in typed instructions: which instructions and which of their fields the builder expands
 * (the Dockerfile reference's list), and the checks that can only run on expanded values.
 */
import { signalNumber } from '../runtime/signals.js';
import { type Diagnostic, type Position, error } from './diagnostic.js';
import { type ExpandOptions, type Vars, expand } from './expand.js';
import { type Instruction, type Keyword, parsePortSpec } from './instructions.js';
import { type RunMount, parseMount } from './run-mount.js';

/** An expansion failure at the instruction. */
class ExpandFailure extends Error {
  constructor(
    message: string,
    readonly at: Position,
  ) {
    super(message);
  }
}

/** Instructions whose arguments the builder expands (the reference's list, plus ARG defaults as BuildKit does). */
export const EXPANDED_KEYWORDS: ReadonlySet<Keyword> = new Set([
  'ADD',
  'ARG',
  'COPY',
  'ENV',
  'EXPOSE',
  'FROM',
  'LABEL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
  'ONBUILD',
]);

export type ExpandInstructionResult =
  | { ok: true; instruction: Instruction; unset: string[] }
  | { ok: false; diagnostic: Diagnostic };

/**
 * Substitutes variables in the fields Docker expands, with `vars` (the stage's ARG and ENV values at that point)
 * for every field alike. ENV/LABEL/ARG values also lose their quotes and escapes here. RUN, CMD, ENTRYPOINT,
 * SHELL, HEALTHCHECK and MAINTAINER are returned unchanged (the shell expands them); ONBUILD too, because its
 * trigger is expanded when it fires in the downstream build. COPY/ADD heredoc sources are expanded unless their
 * delimiter was quoted, keeping the body's own quotes. RUN --mount values are expanded and re-checked.
 */
export function expandInstruction(instr: Instruction, vars: Vars, escape: string = '\\'): ExpandInstructionResult {
  const unset = new Set<string>();
  const opts: ExpandOptions = { escape };
  const at: Position = { line: instr.line, column: instr.column };
  const word = (text: string, o: ExpandOptions = opts): string => {
    const r = expand(text, vars, o);
    if (!r.ok) throw new ExpandFailure(r.error, at);
    r.unset.forEach((n) => unset.add(n));
    return r.value;
  };
  const words = (text: string): string[] => {
    const r = expand(text, vars, opts);
    if (!r.ok) throw new ExpandFailure(r.error, at);
    r.unset.forEach((n) => unset.add(n));
    return r.words;
  };
  const opt = (v: string | undefined) => (v === undefined ? undefined : word(v));
  try {
    let out: Instruction;
    switch (instr.kind) {
      case 'FROM':
        out = { ...instr, image: word(instr.image) };
        if (instr.platform !== undefined) out.platform = word(instr.platform);
        break;
      case 'ENV':
      case 'LABEL':
        out = { ...instr, pairs: instr.pairs.map((p) => ({ key: word(p.key), value: word(p.value) })) };
        break;
      case 'ARG':
        out = {
          ...instr,
          args: instr.args.map((a) =>
            a.default === undefined ? { name: a.name } : { name: a.name, default: word(a.default) },
          ),
        };
        break;
      case 'EXPOSE': {
        const ports = instr.ports.flatMap((p) => words(p));
        for (const p of ports) {
          const spec = parsePortSpec(p);
          if (typeof spec === 'string') throw new ExpandFailure(spec, at);
        }
        out = { ...instr, ports };
        break;
      }
      case 'USER':
        out = { ...instr, user: word(instr.user) };
        break;
      case 'WORKDIR':
        out = { ...instr, path: word(instr.path) };
        break;
      case 'STOPSIGNAL': {
        const signal = word(instr.signal);
        if (signalNumber(signal) === undefined) throw new ExpandFailure(`Invalid signal: ${signal}`, at);
        out = { ...instr, signal };
        break;
      }
      case 'VOLUME':
        out = { ...instr, paths: instr.paths.map((p) => word(p)) };
        break;
      case 'COPY':
      case 'ADD': {
        const c = {
          ...instr,
          sources: instr.sources.map((s) => word(s)),
          dest: word(instr.dest),
          excludes: instr.excludes.map((e) => word(e)),
          inline: instr.inline.map((s) =>
            s.expand ? { ...s, content: word(s.content, { escape: '\\', keepQuotes: true }) } : s,
          ),
        };
        const chown = opt(instr.chown);
        const chmod = opt(instr.chmod);
        if (chown !== undefined) c.chown = chown;
        if (chmod !== undefined) c.chmod = chmod;
        if (c.kind === 'ADD' && c.checksum !== undefined) c.checksum = word(c.checksum);
        if (c.kind === 'COPY' && c.from !== undefined) c.from = word(c.from);
        out = c;
        break;
      }
      case 'RUN': {
        const mounts: RunMount[] = [];
        for (const spec of instr.mountSpecs) {
          const m = parseMount(word(spec));
          if (typeof m === 'string') throw new ExpandFailure(m, at);
          mounts.push(m);
        }
        out = { ...instr, mounts };
        break;
      }
      default:
        out = instr;
    }
    return { ok: true, instruction: out, unset: [...unset] };
  } catch (e) {
    if (e instanceof ExpandFailure) return { ok: false, diagnostic: error(e.message, e.at) };
    throw e;
  }
}
