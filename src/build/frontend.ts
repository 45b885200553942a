/**
 * The build front end in one call: Dockerfile text -> directives, typed instructions, stage graph and every
 * diagnostic (parse errors, instruction errors, graph errors, lint findings with `# check=` applied), sorted by
 * position. The executor builds only when `ok` is true.
 */
import { type Diagnostic, hasErrors, sortDiagnostics } from './diagnostic.js';
import { type Instruction, parseInstructions } from './instructions.js';
import { applyCheckDirective, lintBuildArgs, lintDockerfile } from './lint.js';
import { type ParseResult, parseDockerfile } from './parser.js';
import { type GraphOptions, type StageGraph, buildStageGraph, unusedBuildArgs } from './stages.js';

export interface FrontendResult {
  parsed: ParseResult;
  instructions: Instruction[];
  graph: StageGraph;
  diagnostics: Diagnostic[];
  /** No error among the diagnostics. */
  ok: boolean;
  /** --build-arg names no ARG declares (Docker prints a warning listing them). */
  unusedBuildArgs: string[];
}

export function loadDockerfile(text: string, options: Omit<GraphOptions, 'escape'> = {}): FrontendResult {
  const parsed = parseDockerfile(text);
  const { instructions, diagnostics: instrDiagnostics } = parseInstructions(parsed);
  const graph = buildStageGraph(instructions, { ...options, escape: parsed.directives.escape });
  const lint = [...lintDockerfile(parsed, instructions), ...lintBuildArgs(options.buildArgs ?? new Map())];
  const all = [...parsed.diagnostics, ...instrDiagnostics, ...graph.diagnostics, ...lint];
  const diagnostics = sortDiagnostics(applyCheckDirective(all, parsed.directives.check));
  return {
    parsed,
    instructions,
    graph,
    diagnostics,
    ok: !hasErrors(diagnostics),
    unusedBuildArgs: unusedBuildArgs(graph, options.buildArgs ?? new Map()),
  };
}
