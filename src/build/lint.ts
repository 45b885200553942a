/**
 * Build checks, BuildKit-style: rules are data (id, description, docs URL) and findings are warnings that carry the
 * rule id, so the `# check=skip=...;error=true` directive can drop or escalate them. Also warns about --build-arg
 * values that look like secrets (build args end up in the image history).
 */
import { type Diagnostic, sortDiagnostics, warning } from './diagnostic.js';
import { expand } from './expand.js';
import type { Instruction } from './instructions.js';
import { parsePortSpec } from './instructions.js';
import type { CheckDirective, ParseResult } from './parser.js';
import { PLATFORM_ARGS } from './stages.js';

export interface LintRule {
  id: string;
  description: string;
  url: string;
}

const rule = (id: string, slug: string, description: string): LintRule => ({
  id,
  description,
  url: `https://docs.docker.com/go/dockerfile/rule/${slug}/`,
});

/** The rules berth checks, named as BuildKit names them so `# check=skip=` lists work unchanged. */
export const LINT_RULES = {
  SecretsUsedInArgOrEnv: rule(
    'SecretsUsedInArgOrEnv',
    'secrets-used-in-arg-or-env',
    'Sensitive data should not be used in the ARG or ENV commands',
  ),
  MaintainerDeprecated: rule(
    'MaintainerDeprecated',
    'maintainer-deprecated',
    'The MAINTAINER instruction is deprecated, use a label instead to define an image author',
  ),
  JSONArgsRecommended: rule(
    'JSONArgsRecommended',
    'json-args-recommended',
    'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals',
  ),
  StageNameCasing: rule('StageNameCasing', 'stage-name-casing', 'Stage names should be lowercase'),
  FromAsCasing: rule('FromAsCasing', 'from-as-casing', "The 'as' keyword should match the case of the 'from' keyword"),
  NoEmptyContinuation: rule(
    'NoEmptyContinuation',
    'no-empty-continuation',
    'Empty continuation lines will become errors in a future release',
  ),
  ConsistentInstructionCasing: rule(
    'ConsistentInstructionCasing',
    'consistent-instruction-casing',
    'All commands within the Dockerfile should use the same casing (either upper or lower)',
  ),
  DuplicateStageName: rule('DuplicateStageName', 'duplicate-stage-name', 'Stage names should be unique'),
  ReservedStageName: rule('ReservedStageName', 'reserved-stage-name', 'Reserved words should not be used as stage names'),
  LegacyKeyValueFormat: rule(
    'LegacyKeyValueFormat',
    'legacy-key-value-format',
    'Legacy key/value format with whitespace separator should not be used',
  ),
  MultipleInstructionsDisallowed: rule(
    'MultipleInstructionsDisallowed',
    'multiple-instructions-disallowed',
    'Multiple instructions of the same type should not be used in the same stage',
  ),
  UndefinedArgInFrom: rule('UndefinedArgInFrom', 'undefined-arg-in-from', 'FROM command must use declared ARGs'),
  ExposeProtoCasing: rule('ExposeProtoCasing', 'expose-proto-casing', 'Protocol in EXPOSE instruction should be lowercase'),
  ExposeInvalidFormat: rule(
    'ExposeInvalidFormat',
    'expose-invalid-format',
    'IP address and host-port mapping should not be used in EXPOSE instruction. ' +
      'This will become an error in a future release',
  ),
} as const satisfies Record<string, LintRule>;

export type LintRuleId = keyof typeof LINT_RULES;

/** Names that suggest a secret: these words as a whole part of the name (split on `_`, `-`, `.` and camelCase). */
const SECRET_NAME =
  /(?:^|_)(pass|password|passwd|pwd|secret|secrets|token|api_?key|apikey|private_?key|credential|credentials)(?:_|$)/;
const PUBLIC_NAME = /(?:^|_)public(?:_|$)/;

/** Whether an ARG/ENV/--build-arg name looks like it holds a secret (DB_PASSWORD, githubToken, API-KEY, ...). */
export function looksLikeSecretName(name: string): boolean {
  const n = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[-.]/g, '_');
  return SECRET_NAME.test(n) && !PUBLIC_NAME.test(n);
}

const SECRET_VALUE_PATTERNS: readonly RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /^AKIA[0-9A-Z]{16}$/, // AWS access key id
  /^gh[pousr]_[A-Za-z0-9]{36,}$/, // GitHub tokens
  /^github_pat_[A-Za-z0-9_]{40,}$/,
  /^glpat-[A-Za-z0-9_-]{20,}$/, // GitLab
  /^xox[abprs]-[A-Za-z0-9-]{10,}$/, // Slack
  /^sk-[A-Za-z0-9_-]{20,}$/, // OpenAI-style secret keys
  /^npm_[A-Za-z0-9]{36}$/,
  /^eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}$/, // JWT
];

/**
 * Whether a value is shaped like a credential: a known token format, a private key, or a long random-looking string
 * that mixes upper case, lower case and digits (plain hex digests, paths and URLs are not flagged).
 */
export function looksLikeSecretValue(value: string): boolean {
  if (SECRET_VALUE_PATTERNS.some((re) => re.test(value))) return true;
  if (value.length < 32 || !/^[A-Za-z0-9+/=_-]+$/.test(value)) return false;
  if (!/[A-Z]/.test(value) || !/[a-z]/.test(value) || !/[0-9]/.test(value)) return false;
  return entropy(value) >= 4.5;
}

function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

const SECRET_ADVICE = 'use RUN --mount=type=secret with `--secret` instead';

function lint(id: LintRuleId, message: string, at: { line: number; column: number }): Diagnostic {
  return warning(message, at, { rule: id });
}

/**
 * The build checks over a parsed Dockerfile and its typed instructions, unfiltered (the parser reports
 * NoEmptyContinuation itself; applyCheckDirective() applies `# check=` to both, see frontend.ts).
 */
export function lintDockerfile(parsed: ParseResult, instructions: readonly Instruction[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  checkCasing(parsed, out);
  const globalArgs = new Set<string>(PLATFORM_ARGS);
  const stageNames = new Map<string, number>();
  let seenFrom = false;
  let stage: Instruction[] = [];
  const endStage = () => {
    checkMultiple(stage, out);
    stage = [];
  };
  for (const instr of instructions) {
    switch (instr.kind) {
      case 'FROM': {
        endStage();
        seenFrom = true;
        const referenced = new Set<string>();
        for (const text of [instr.platform ?? '', instr.image]) {
          const r = expand(text, new Map(), { escape: parsed.directives.escape });
          if (r.ok) r.unset.forEach((n) => referenced.add(n));
        }
        for (const name of referenced) {
          if (!globalArgs.has(name)) out.push(lint('UndefinedArgInFrom', `FROM argument '${name}' is not declared`, instr));
        }
        if (instr.stageNameText !== undefined && instr.stageName !== undefined) {
          if (instr.stageNameText !== instr.stageName) {
            out.push(lint('StageNameCasing', `Stage name '${instr.stageNameText}' should be lowercase`, instr));
          }
          if (instr.stageName === 'scratch' || instr.stageName === 'context') {
            const msg = `Stage name should not use the same name as reserved stage "${instr.stageName}"`;
            out.push(lint('ReservedStageName', msg, instr));
          }
          if (stageNames.has(instr.stageName)) {
            out.push(
              lint('DuplicateStageName', `Duplicate stage name "${instr.stageName}", stage names should be unique`, instr),
            );
          }
          stageNames.set(instr.stageName, instr.line);
          const from = instr.raw.keywordText;
          const as = instr.asText ?? '';
          const upper = (s: string) => s === s.toUpperCase();
          const lower = (s: string) => s === s.toLowerCase();
          if ((upper(from) && !upper(as)) || (lower(from) && !lower(as))) {
            out.push(lint('FromAsCasing', `'${as}' and '${from}' keywords' casing do not match`, instr));
          }
        }
        break;
      }
      case 'ARG':
        if (!seenFrom) instr.args.forEach((a) => globalArgs.add(a.name));
        for (const a of instr.args) checkSecret('ARG', a.name, a.default, instr, out);
        break;
      case 'ENV':
        for (const p of instr.pairs) checkSecret('ENV', p.key, p.value, instr, out);
        if (instr.legacy) out.push(lint('LegacyKeyValueFormat', legacyMessage('ENV'), instr));
        break;
      case 'LABEL':
        if (instr.legacy) out.push(lint('LegacyKeyValueFormat', legacyMessage('LABEL'), instr));
        break;
      case 'MAINTAINER':
        out.push(lint('MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label', instr));
        break;
      case 'CMD':
      case 'ENTRYPOINT':
        if (instr.command.form === 'shell' && !stage.some((i) => i.kind === 'SHELL')) {
          out.push(
            lint(
              'JSONArgsRecommended',
              `JSON arguments recommended for ${instr.kind} to prevent unintended behavior related to OS signals`,
              instr,
            ),
          );
        }
        break;
      case 'EXPOSE':
        for (const port of instr.ports) {
          if (port.includes('$')) continue;
          const spec = parsePortSpec(port);
          if (typeof spec === 'string') continue;
          if (spec.hostPart !== undefined) {
            const msg = `EXPOSE instruction should not define an IP address or host-port mapping, found '${port}'`;
            out.push(lint('ExposeInvalidFormat', msg, instr));
          }
          const proto = port.includes('/') ? port.slice(port.lastIndexOf('/') + 1) : '';
          if (proto !== proto.toLowerCase()) {
            const msg = `Defined protocol '${port}' in EXPOSE instruction should be lowercase`;
            out.push(lint('ExposeProtoCasing', msg, instr));
          }
        }
        break;
      default:
        break;
    }
    if (instr.kind !== 'FROM') stage.push(instr);
  }
  endStage();
  return sortDiagnostics(out);
}

function legacyMessage(cmd: string): string {
  return `"${cmd} key=value" should be used instead of legacy "${cmd} key value" format`;
}

function checkSecret(
  kind: 'ARG' | 'ENV',
  name: string,
  value: string | undefined,
  at: { line: number; column: number },
  out: Diagnostic[],
): void {
  const plain = value === undefined ? undefined : unquote(value);
  if (looksLikeSecretName(name) || (plain !== undefined && !plain.includes('$') && looksLikeSecretValue(plain))) {
    out.push(
      lint(
        'SecretsUsedInArgOrEnv',
        `Do not use ARG or ENV instructions for sensitive data (${kind} "${name}"): ${SECRET_ADVICE}`,
        at,
      ),
    );
  }
}

function unquote(v: string): string {
  const r = expand(v, new Map(), { keepUnset: true });
  return r.ok ? r.value : v;
}

/** CMD, ENTRYPOINT and HEALTHCHECK more than once in a stage: all but the last are flagged. */
function checkMultiple(stage: readonly Instruction[], out: Diagnostic[]): void {
  for (const kind of ['CMD', 'ENTRYPOINT', 'HEALTHCHECK'] as const) {
    const all = stage.filter((i) => i.kind === kind);
    for (const i of all.slice(0, -1)) {
      out.push(
        lint(
          'MultipleInstructionsDisallowed',
          `Multiple ${kind} instructions should not be used in the same stage because only the last one will be used`,
          i,
        ),
      );
    }
  }
}

/** Keywords should all be upper case or all lower case: the minority casing (and mixed case) is flagged. */
function checkCasing(parsed: ParseResult, out: Diagnostic[]): void {
  const all = parsed.instructions.flatMap((i) => (i.child ? [i, i.child] : [i]));
  let upper = 0;
  let lower = 0;
  for (const i of all) {
    if (i.keywordText === i.keywordText.toUpperCase()) upper++;
    else if (i.keywordText === i.keywordText.toLowerCase()) lower++;
  }
  const majorityUpper = upper >= lower;
  for (const i of all) {
    const expected = majorityUpper ? i.keywordText.toUpperCase() : i.keywordText.toLowerCase();
    if (i.keywordText !== expected) {
      const casing = majorityUpper ? 'uppercase' : 'lowercase';
      const msg = `Command '${i.keywordText}' should match the case of the command majority (${casing})`;
      out.push(lint('ConsistentInstructionCasing', msg, i));
    }
  }
}

/** Drops findings of skipped rules and, with `error=true`, turns the rest into errors. */
export function applyCheckDirective(diagnostics: readonly Diagnostic[], check: CheckDirective | undefined): Diagnostic[] {
  if (check === undefined) return [...diagnostics];
  return diagnostics
    .filter((d) => d.rule === undefined || !(check.skipAll || check.skip.includes(d.rule)))
    .map((d) => (check.error && d.rule !== undefined ? { ...d, severity: 'error' as const } : d));
}

/**
 * Warnings for `--build-arg` values that look like secrets (by name or by value). They have no position (line 0)
 * since they come from the command line.
 */
export function lintBuildArgs(buildArgs: ReadonlyMap<string, string>): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const [name, value] of buildArgs) {
    if (looksLikeSecretName(name) || looksLikeSecretValue(value)) {
      out.push(
        warning(
          `--build-arg ${name} looks like a secret; build args are kept in the image history: ` +
            `use RUN --mount=type=secret and \`--secret id=${name}\` instead`,
          { line: 0, column: 0 },
          { rule: 'SecretsUsedInArgOrEnv' },
        ),
      );
    }
  }
  return out;
}
