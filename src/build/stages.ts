/**
 * The stage graph: instructions split into build stages at each FROM, global ARGs (before the first FROM) and their
 * scope, base images resolved to scratch / an earlier stage / an image, the dependencies COPY --from and
 * RUN --mount=from add, cycle detection, and the plan for a target: only the stages it needs, in dependency order,
 * grouped into levels whose stages can be built in parallel. Mirrors BuildKit's dockerfile2llb front half.
 */
import { type Diagnostic, error, warning } from './diagnostic.js';
import { expand } from './expand.js';
import type { ArgDecl, ArgInstruction, FromInstruction, Instruction } from './instructions.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** "linux/arm64", "linux/arm/v7". */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((s) => s !== undefined && s !== '').join('/');
}

/** Parses "linux/arm/v7" (os/arch[/variant]); undefined when malformed. */
export function parsePlatform(s: string): Platform | undefined {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) return undefined;
  const p: Platform = { os: parts[0]!.toLowerCase(), architecture: parts[1]!.toLowerCase() };
  if (parts[2] !== undefined) p.variant = parts[2].toLowerCase();
  return p;
}

/** Proxy ARGs any RUN may receive through --build-arg without declaring them (left out of history and cache). */
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];

/** The automatic platform ARGs, defined in the global scope (usable in FROM; redeclare inside a stage to use there). */
export const PLATFORM_ARGS: readonly string[] = [
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETARCH',
  'TARGETVARIANT',
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDARCH',
  'BUILDVARIANT',
];

/** Build args BuildKit itself reads; passing them never counts as "not consumed". */
export const BUILTIN_ARGS: readonly string[] = [
  'BUILDKIT_BUILD_NAME',
  'BUILDKIT_CACHE_MOUNT_NS',
  'BUILDKIT_CONTEXT_KEEP_GIT_DIR',
  'BUILDKIT_INLINE_CACHE',
  'BUILDKIT_MULTI_PLATFORM',
  'BUILDKIT_SANDBOX_HOSTNAME',
  'BUILDKIT_SYNTAX',
  'SOURCE_DATE_EPOCH',
];

/** Values of the platform ARGs for a build on `build` producing `target`. */
export function platformArgs(target: Platform, build: Platform): Map<string, string> {
  return new Map([
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
  ]);
}

/** What a stage starts from. */
export type StageBase = { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

/** Why a stage needs another one. */
export interface StageDependency {
  index: number;
  via: 'from' | 'copy' | 'mount';
  line: number;
}

export interface Stage {
  index: number;
  /** Lower-cased `AS` name. */
  name?: string;
  /** The name, or "stage-N" as BuildKit calls unnamed stages. */
  displayName: string;
  from: FromInstruction;
  /** The FROM image after global-ARG expansion. */
  baseName: string;
  /** FROM --platform after expansion. */
  platform?: string;
  base: StageBase;
  /** Instructions after FROM, unexpanded. */
  instructions: Instruction[];
  /** Stages this one needs, in first-use order, each once. */
  dependencies: StageDependency[];
  /** Images and named contexts used by COPY --from / RUN --mount=from (not stages). */
  externalSources: string[];
}

export interface StageGraph {
  /** ARG instructions before the first FROM. */
  globalArgs: ArgInstruction[];
  /** The variables FROM lines see: platform ARGs, then global ARGs with their defaults or --build-arg values. */
  globalScope: Map<string, string>;
  stages: Stage[];
  diagnostics: Diagnostic[];
}

export interface GraphOptions {
  /** `--build-arg` values. */
  buildArgs?: ReadonlyMap<string, string>;
  targetPlatform?: Platform;
  buildPlatform?: Platform;
  /** The Dockerfile's escape character. */
  escape?: string;
}

const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

/** Builds the stage graph of typed instructions. Problems are diagnostics; the graph is built as far as possible. */
export function buildStageGraph(instructions: readonly Instruction[], options: GraphOptions = {}): StageGraph {
  const buildArgs = options.buildArgs ?? new Map<string, string>();
  const escape = options.escape ?? '\\';
  const diagnostics: Diagnostic[] = [];
  const target = options.targetPlatform ?? DEFAULT_PLATFORM;
  const globalScope = platformArgs(target, options.buildPlatform ?? target);
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];

  const expandGlobal = (text: string, at: { line: number; column: number }): string => {
    const r = expand(text, globalScope, { escape });
    if (r.ok) return r.value;
    diagnostics.push(error(r.error, at));
    return text;
  };

  for (const instr of instructions) {
    if (instr.kind === 'FROM') {
      stages.push(newStage(instr, stages, expandGlobal, diagnostics));
      continue;
    }
    const current = stages[stages.length - 1];
    if (current !== undefined) {
      current.instructions.push(instr);
      continue;
    }
    if (instr.kind !== 'ARG') {
      diagnostics.push(error('no build stage in current context', instr));
      continue;
    }
    globalArgs.push(instr);
    for (const decl of instr.args) {
      const override = buildArgs.get(decl.name);
      if (override !== undefined) globalScope.set(decl.name, override);
      else if (decl.default !== undefined) globalScope.set(decl.name, expandGlobal(decl.default, instr));
    }
  }
  if (stages.length === 0 && !diagnostics.some((d) => d.severity === 'error')) {
    const last = instructions[instructions.length - 1];
    diagnostics.push(error('dockerfile contains no stages to build', last ?? { line: 1, column: 1 }));
  }

  for (const stage of stages) addSourceDependencies(stage, stages, expandGlobal);
  const cycle = findCycle(stages);
  if (cycle !== undefined) {
    diagnostics.push(error(`circular dependency detected on stage: ${cycle.displayName}`, cycle.from));
  }
  const graph = { globalArgs, globalScope, stages, diagnostics };
  diagnostics.push(...forwardFromReferences(graph));
  return graph;
}

function newStage(
  from: FromInstruction,
  earlier: readonly Stage[],
  expandGlobal: (text: string, at: FromInstruction) => string,
  diagnostics: Diagnostic[],
): Stage {
  const index = earlier.length;
  const baseName = expandGlobal(from.image, from);
  const stage: Stage = {
    index,
    displayName: from.stageName ?? `stage-${index}`,
    from,
    baseName,
    base: { kind: 'image', ref: baseName },
    instructions: [],
    dependencies: [],
    externalSources: [],
  };
  if (from.stageName !== undefined) stage.name = from.stageName;
  if (from.platform !== undefined) stage.platform = expandGlobal(from.platform, from);
  if (baseName === '') {
    diagnostics.push(error(`base name (${from.image}) should not be blank`, from));
  } else if (baseName === 'scratch') {
    stage.base = { kind: 'scratch' };
  } else {
    // FROM only sees stages defined before it; the latest one of that name wins.
    const lower = baseName.toLowerCase();
    const base = [...earlier].reverse().find((s) => s.name === lower);
    if (base !== undefined) {
      stage.base = { kind: 'stage', index: base.index };
      stage.dependencies.push({ index: base.index, via: 'from', line: from.line });
    }
  }
  return stage;
}

/** Adds the stages (or external images) that COPY --from and RUN --mount=from read. */
function addSourceDependencies(
  stage: Stage,
  stages: readonly Stage[],
  expandGlobal: (text: string, at: Instruction) => string,
): void {
  const use = (ref: string, via: 'copy' | 'mount', instr: Instruction) => {
    const value = ref.includes('$') ? expandGlobal(ref, instr) : ref;
    const target = resolveStageRef(value, stages);
    if (target === undefined) {
      if (!stage.externalSources.includes(value)) stage.externalSources.push(value);
    } else if (!stage.dependencies.some((d) => d.index === target.index)) {
      stage.dependencies.push({ index: target.index, via, line: instr.line });
    }
  };
  for (const instr of stage.instructions) {
    if (instr.kind === 'COPY' && instr.from !== undefined) use(instr.from, 'copy', instr);
    if (instr.kind === 'RUN') {
      for (const m of instr.mounts) if (m.from !== undefined && m.type !== 'secret') use(m.from, 'mount', instr);
    }
  }
}

/**
 * The stage a `--from` value names: a stage index ("0"), or a stage name (case-insensitive, the last stage of that
 * name); undefined for anything else (an image or a named context).
 */
export function resolveStageRef(ref: string, stages: readonly Stage[]): Stage | undefined {
  if (/^\d+$/.test(ref)) return stages[Number(ref)];
  const lower = ref.toLowerCase();
  return [...stages].reverse().find((s) => s.name === lower);
}

/** A stage on a dependency cycle reachable from the stages (or those in `only`), checked in file order. */
function findCycle(stages: readonly Stage[], only?: ReadonlySet<number>): Stage | undefined {
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (s: Stage): Stage | undefined => {
    const st = state.get(s.index);
    if (st === 'done') return undefined;
    if (st === 'visiting') return s;
    state.set(s.index, 'visiting');
    for (const d of s.dependencies) {
      const dep = stages[d.index];
      const found = dep === undefined ? undefined : visit(dep);
      if (found !== undefined) return found;
    }
    state.set(s.index, 'done');
    return undefined;
  };
  for (const s of stages) {
    if (only !== undefined && !only.has(s.index)) continue;
    const found = visit(s);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A stage by name (case-insensitive) or index. */
export function findStage(graph: StageGraph, nameOrIndex: string): Stage | undefined {
  return resolveStageRef(nameOrIndex, graph.stages);
}

export interface BuildPlan {
  target: Stage;
  /** The stages the target needs (itself included), dependencies first, ties by position in the file. */
  order: Stage[];
  /** The same stages in levels: every stage's dependencies are in earlier levels, so one level can run in parallel. */
  levels: Stage[][];
}

export type PlanResult = { ok: true; plan: BuildPlan } | { ok: false; diagnostic: Diagnostic };

/** The plan for `--target` (by name, case-insensitive), or for the last stage when no target is given. */
export function stagesFor(graph: StageGraph, target?: string): PlanResult {
  let t: Stage | undefined;
  if (target === undefined || target === '') t = graph.stages[graph.stages.length - 1];
  else t = [...graph.stages].reverse().find((s) => s.name === target.toLowerCase());
  if (t === undefined) {
    const msg = target ? `target stage "${target}" could not be found` : 'dockerfile contains no stages to build';
    return { ok: false, diagnostic: error(msg, { line: 1, column: 1 }) };
  }
  const needed = new Set<number>();
  const collect = (s: Stage) => {
    if (needed.has(s.index)) return;
    needed.add(s.index);
    for (const d of s.dependencies) collect(graph.stages[d.index]!);
  };
  collect(t);
  const level = new Map<number, number>();
  const levelOf = (s: Stage): number => {
    const known = level.get(s.index);
    if (known !== undefined) return known;
    let l = 0;
    for (const d of s.dependencies) l = Math.max(l, levelOf(graph.stages[d.index]!) + 1);
    level.set(s.index, l);
    return l;
  };
  const cycle = findCycle(graph.stages, needed);
  if (cycle !== undefined) {
    return { ok: false, diagnostic: error(`circular dependency detected on stage: ${cycle.displayName}`, cycle.from) };
  }
  const chosen = graph.stages.filter((s) => needed.has(s.index));
  const levels: Stage[][] = [];
  for (const s of chosen) (levels[levelOf(s)] ??= []).push(s);
  const order = levels.flat();
  return { ok: true, plan: { target: t, order, levels } };
}

/**
 * The value an ARG inside a stage takes: the --build-arg value, else its own default (still to be expanded with the
 * stage's variables by the caller), else the global value of the same name (the "redeclare a global ARG" rule),
 * else unset.
 */
export function stageArgValue(
  decl: ArgDecl,
  graph: Pick<StageGraph, 'globalScope'>,
  buildArgs: ReadonlyMap<string, string> = new Map(),
): { value?: string; source: 'build-arg' | 'default' | 'global' | 'unset' } {
  const b = buildArgs.get(decl.name);
  if (b !== undefined) return { value: b, source: 'build-arg' };
  if (decl.default !== undefined) return { value: decl.default, source: 'default' };
  const g = graph.globalScope.get(decl.name);
  if (g !== undefined) return { value: g, source: 'global' };
  return { source: 'unset' };
}

/** --build-arg names no ARG declares (Docker warns: "One or more build-args [...] were not consumed"). */
export function unusedBuildArgs(graph: StageGraph, buildArgs: ReadonlyMap<string, string>): string[] {
  const declared = new Set<string>([...PROXY_ARGS, ...BUILTIN_ARGS]);
  for (const a of graph.globalArgs) for (const d of a.args) declared.add(d.name);
  for (const s of graph.stages) {
    for (const i of s.instructions) if (i.kind === 'ARG') for (const d of i.args) declared.add(d.name);
  }
  return [...buildArgs.keys()].filter((k) => !declared.has(k)).sort();
}

/** Warnings for FROM lines naming a stage that is only defined later (BuildKit then pulls an image of that name). */
function forwardFromReferences(graph: StageGraph): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const s of graph.stages) {
    if (s.base.kind !== 'image') continue;
    const lower = s.baseName.toLowerCase();
    const later = graph.stages.find((o) => o.index > s.index && o.name === lower);
    if (later !== undefined) {
      out.push(
        warning(
          `FROM ${s.baseName} refers to stage "${later.name}" defined later (line ${later.from.line}); ` +
            `a stage can only build on stages above it, so the image "${s.baseName}" is used`,
          s.from,
        ),
      );
    }
  }
  return out;
}
