import { cpSync, existsSync, lchownSync, lstatSync, lutimesSync, mkdirSync, readFileSync, rmSync, writeFileSync, realpathSync } from 'node:fs';
import { join, posix } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { BerthError, isBerthError } from '../base/errors.js';
import type { Digest } from '../base/digest.js';
import { trace } from '../base/trace.js';
import { formatGoDuration } from '../base/units.js';
import { httpGet, type HttpGetResult } from '../base/http-get.js';
import { mountOverlay, unmount } from '../sys/mount.js';
import { resolveInRoot } from '../storage/rootpath.js';
import { resolveUser } from '../security/users.js';
import { bindMount, tmpfsMount, type Mount } from '../runtime/spec.js';
import type { Engine } from '../engine/engine.js';
import type { Lease } from '../image/store.js';
import { MEDIA_OCI_LAYER, type Descriptor, type Image, type ImageConfig, type HistoryEntry } from '../image/types.js';
import { loadDockerfile } from './frontend.js';
import { formatDiagnostic, type Diagnostic } from './diagnostic.js';
import { expandInstruction } from './expand-instruction.js';
import { parseDockerfile } from './parser.js';
import { parseInstructions } from './instructions.js';
import { exposedPortKeys, parsePortSpec } from '../image/exposed-ports.js';
import { stagesFor, stageArgValue, resolveStageRef, PROXY_ARGS, type Stage, type StageGraph } from './stages.js';
import type { Instruction, CommandLine, CopyInstruction, AddInstruction, RunInstruction } from './instructions.js';
import { createIgnoreMatcher, type IgnoreMatcher } from './dockerignore.js';
import { BuildContext, cleanSource, globIn, hasGlob, type ContextFile } from './context.js';
import { BuildCache, cacheKey, type BuildState, type CacheEntry, type StepRecord } from './cache.js';
import { StepFs, type Committed } from './layer-commit.js';
import { runStep } from './run-step.js';
import { cacheMountRequest, type CacheMountRequest } from './cache-mounts.js';
import { destNamesDir, isDirIn, linkDeferred, placeItems, walkDir, type CopyItem, type LinkSource, type PlacedFiles } from './copy.js';
import { archiveKind, extractArchive } from './add-archive.js';
import { forwardAgent } from './ssh-forward.js';
import { checkoutGit, parseGitRef, resolveGitCommit, type GitAccess, type GitRef } from './git-source.js';
import { parseModeChange, type ModeChange } from './file-mode.js';
import { parseStageInputName, SourceMissing, stageInputs } from './source-digest.js';
import { sweepStaleBuilds, SECRET_DIR, SECRET_PREFIX, SOURCE_MOUNT_PREFIX } from './sweep.js';

/** Progress of a build, as events; the CLI renders them (plain, tty, json, quiet). */
export type BuildEvent =
  | { type: 'step'; id: number; name: string }
  | { type: 'cached'; id: number }
  /** A step missed the cache: `reason` says why (`text` is the step's instruction). */
  | { type: 'miss'; id: number; text: string; reason: string }
  | { type: 'output'; id: number; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'done'; id: number; ms: number }
  | { type: 'error'; id: number; message: string }
  | { type: 'warning'; message: string }
  | { type: 'image'; id: Digest; names: string[] };

export interface Secret {
  file?: string;
  env?: string;
}

export interface BuildOptions {
  contextDir: string;
  dockerfile: string;
  /** The Dockerfile's path relative to the context (or absolute), for `<Dockerfile>.dockerignore`. */
  dockerfileRel?: string;
  /** How messages name the Dockerfile ("Dockerfile"). */
  dockerfileName?: string;
  tags?: string[];
  buildArgs?: Map<string, string>;
  target?: string;
  noCache?: boolean;
  labels?: Record<string, string>;
  secrets?: Map<string, Secret>;
  network?: 'none' | 'host';
  /** Entitlements the build grants (`--allow`): "security.insecure" lets `RUN --security=insecure` run privileged. */
  allow?: string[];
  /** ssh-agent sockets by id (`--ssh`), for `RUN --mount=type=ssh`. */
  ssh?: Map<string, string>;
  sourceDateEpoch?: number;
  /** Aborting cancels the build: running steps are killed, nothing is tagged, everything is cleaned up. */
  signal?: AbortSignal;
  onEvent?: (e: BuildEvent) => void;
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_SHELL = ['/bin/sh', '-c'];
/** Where a RUN heredoc with a "#!" line is mounted as a program (BuildKit's place). */
const PROGRAM_DIR = '/dev/pipes';
const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** A build failed: the message names the instruction, its line, and (for RUN) the exit code and last output. */
export class BuildError extends BerthError {
  /** Already shown on its step's progress line. */
  reported = false;
  constructor(message: string, readonly canceled = false) {
    super('invalid-argument', message);
  }
}

interface StageResult {
  state: BuildState;
  key: string;
  lowers: string[];
  /** A stage of this build (else an image). */
  stage: boolean;
}

/** Where a step is, for its progress line, its cache position and its messages. */
interface StepAt {
  stage: Stage;
  /**
   * 1-based position among the stage's numbered steps, as BuildKit numbers them: FROM an image, then each ADD, COPY,
   * RUN and WORKDIR (metadata instructions share the number of the step before them).
   */
  index: number;
  total: number;
  /** 1-based position among all the stage's instructions (ONBUILD triggers first): where the cache looks for its last build. */
  position: number;
  instr: Instruction;
  /** The instruction as history and progress show it. */
  text: string;
}

/** What a step that works on the filesystem needs: its cache key parts and inputs, and the work itself. */
interface FsWork {
  keyParts: string[];
  /**
   * The settings of the stage the step depends on, by name (in the key too): a miss caused by one of them names it
   * ("USER changed"). Names: env, args, user, workdir, shell, network.
   */
  settings: Record<string, string>;
  inputs: Map<string, string>;
  /** The stages whose files are among the inputs, and what is read of them (recorded, not keyed: see stageInputsOf). */
  sources?: Record<string, StageRead>;
  createdBy: string;
  /**
   * Does the work in the step's mounted root (fs.rootfs). `reuse` gives the files the last build at this step
   * position placed, when it has them (an incremental COPY links them).
   */
  apply(fs: StepFs, id: number, reuse: () => LinkSource | undefined): Promise<Applied | void>;
}

/** A stage a step reads files of: its state (layers maybe still being archived) and what is read of it. */
interface StageRead {
  state: BuildState;
  spec: string;
}

/** What a step's work leaves to its commit. */
interface Applied {
  /** Upper-dir paths to drop (runtime mount points). */
  remove?: string[];
  /** The files a COPY placed, by content (kept in the cache entry, for the next build's COPY to link). */
  placed?: PlacedFiles;
}

/** A stage between steps: its image state, cache key, ARG values (and every ARG declared), and whether it set CMD itself. */
type StageState = { state: BuildState; key: string; args: Map<string, string>; declared?: string[]; cmdSet?: boolean };

/** Placeholder diff ids of layers still being archived are `sha256:pending-<step>` (never written anywhere). */
const PENDING_PREFIX = 'pending-';
/** Marks the history entry of a layer still being archived (removed when the state is resolved). */
const PENDING_TAG = 'berth.pendingLayer';

/** Runs one build from a Dockerfile and a context to a stored image. */
export class Builder {
  private readonly cache: BuildCache;
  private readonly context: BuildContext;
  private readonly results = new Map<number, Promise<StageResult>>();
  private readonly images = new Map<string, Promise<StageResult>>();
  private stepSeq = 0;
  private readonly cleanups: (() => void)[] = [];
  /** Layers whose tar is still being written, by placeholder diff id: the step's filesystem and its archive. */
  private readonly pending = new Map<Digest, { fs: StepFs; done: Promise<Committed | undefined>; result?: Committed; published?: boolean }>();
  private readonly background: Promise<void>[] = [];
  private readonly abort = new AbortController();
  private readonly dfName: string;
  private graph!: StageGraph;
  private escape = '\\';
  private firstError: unknown;
  private lease!: Lease;

  constructor(private readonly engine: Engine, private readonly o: BuildOptions) {
    this.cache = new BuildCache(join(engine.paths.root, 'build-cache'));
    const memo = join(engine.paths.root, 'build-cache', 'context-digests', `${cacheKey([realpathSync(o.contextDir)])}.json`);
    this.context = new BuildContext(o.contextDir, BuildContext.ignoreTextFor(o.contextDir, o.dockerfileRel), memo);
    this.dfName = o.dockerfileName ?? 'Dockerfile';
    if (o.signal) {
      const forward = () => this.abort.abort(o.signal!.reason);
      if (o.signal.aborted) forward();
      else o.signal.addEventListener('abort', forward, { once: true });
    }
  }

  private emit(e: BuildEvent): void {
    this.o.onEvent?.(e);
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  private checkCanceled(): void {
    if (this.o.signal?.aborted) throw new BuildError('build canceled', true);
    if (this.signal.aborted) throw new BuildError('canceled: another stage failed', true);
  }

  /** "Dockerfile:3:5: dockerfile parse error on line 3: ..." */
  private describe(d: Diagnostic): string {
    return d.line > 0 ? `${this.dfName}:${d.line}:${d.column}: ${formatDiagnostic(d)}` : formatDiagnostic(d);
  }

  async build(): Promise<Image> {
    trace('build: begin');
    await sweepStaleBuilds(this.engine);
    trace('build: swept');
    const buildArgs = this.o.buildArgs ?? new Map<string, string>();
    const fe = loadDockerfile(this.o.dockerfile, { buildArgs });
    for (const d of fe.diagnostics) if (d.severity === 'warning') this.emit({ type: 'warning', message: formatDiagnostic(d) });
    const err = fe.diagnostics.find((d: Diagnostic) => d.severity === 'error');
    if (err) throw new BuildError(this.describe(err));
    if (fe.unusedBuildArgs.length) this.emit({ type: 'warning', message: `One or more build-args [${fe.unusedBuildArgs.join(' ')}] were not consumed` });
    const syntax = fe.parsed.directives.syntax;
    if (syntax !== undefined && !isDockerfileFrontend(syntax)) {
      // BuildKit would pull and run that frontend image; berth has one frontend, its own.
      this.emit({ type: 'warning', message: `# syntax=${syntax}: berth builds with its own Dockerfile frontend (docker/dockerfile:1 syntax); other frontends are not run` });
    }
    trace('build: Dockerfile loaded');
    const plan = stagesFor(fe.graph, this.o.target);
    if (!plan.ok) throw new BuildError(this.describe(plan.diagnostic));
    this.graph = fe.graph;
    this.escape = fe.parsed.directives.escape;
    this.lease = this.engine.images.lease();
    let ok = false;
    try {
      // Every stage the target needs starts now; each waits for its own dependencies, so independent ones overlap.
      for (const s of plan.plan.order) void this.stageResult(s);
      const final = await this.stageResult(plan.plan.target);
      await this.settleBackground();
      trace('build: layers archived');
      this.checkCanceled();
      // Every stage is done, so no step is mounted: the layers move into the store before the image can be used.
      this.publishLayers();
      const finalState = await this.resolveState(final.state);
      const config: ImageConfig = structuredClone(finalState.config);
      if (this.o.labels && Object.keys(this.o.labels).length) {
        config.config = { ...(config.config ?? {}), Labels: { ...(config.config?.Labels ?? {}), ...this.o.labels } };
      }
      const img = this.engine.images.addImage({ config, layers: finalState.layers, names: this.o.tags ?? [] });
      trace('build: image stored');
      this.emit({ type: 'image', id: img.id, names: img.repoTags });
      ok = true;
      return img;
    } catch (e) {
      if (this.o.signal?.aborted) throw new BuildError('build canceled', true);
      throw this.firstError ?? e;
    } finally {
      if (!ok) this.abort.abort();
      // Every stage must settle before the lease goes, so nothing is left mounted or half-written.
      await Promise.allSettled([...this.results.values()]);
      await Promise.allSettled(this.background);
      // No step is mounted any more. Also after a failure, archived layers are kept (their cache records are).
      this.publishLayers();
      trace('build: layers published');
      this.lease.release();
      this.context.saveMemo();
      trace('build: memo saved');
      for (const c of this.cleanups.reverse()) {
        try {
          c();
        } catch {
          // best effort: the sweep of the next build removes what is left
        }
      }
    }
  }

  /** Each stage is built once; independent stages run concurrently. A failing stage cancels the others. */
  private stageResult(stage: Stage): Promise<StageResult> {
    let p = this.results.get(stage.index);
    if (!p) {
      p = this.buildStage(stage);
      p.catch((e: unknown) => {
        // The first real failure is the build's error; the stages it cancels fail with "canceled".
        if (!(e instanceof BuildError && e.canceled)) this.firstError ??= e;
        this.abort.abort();
      });
      this.results.set(stage.index, p);
    }
    return p;
  }

  private now(): string {
    return this.o.sourceDateEpoch !== undefined ? new Date(this.o.sourceDateEpoch * 1000).toISOString() : new Date().toISOString();
  }

  private async baseOf(stage: Stage): Promise<{ state: BuildState; key: string }> {
    if (stage.base.kind === 'scratch') {
      return {
        state: { config: { architecture: 'amd64', os: 'linux', config: { Env: [DEFAULT_PATH] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] }, layers: [] },
        key: cacheKey(['scratch']),
      };
    }
    if (stage.base.kind === 'stage') {
      const dep = await this.stageResult(this.graph.stages[stage.base.index]!);
      return { state: structuredClone(dep.state), key: dep.key };
    }
    let img: Image;
    try {
      img = this.engine.images.resolve(stage.baseName);
    } catch (e) {
      if (e instanceof BerthError && e.kind === 'not-found') {
        throw new BuildError(`${this.dfName}:${stage.from.line}: FROM ${stage.baseName}: image not found locally (berth has no registry client yet: import or load it first)`);
      }
      throw e;
    }
    const state = { config: structuredClone(img.config), layers: [...img.manifest.layers] };
    state.config.history ??= [];
    // BuildKit makes sure PATH is always set.
    const c = (state.config.config ??= {});
    if (!(c.Env ?? []).some((e) => e.startsWith('PATH='))) c.Env = [...(c.Env ?? []), DEFAULT_PATH];
    return { state, key: cacheKey(['image', img.id]) };
  }

  /** ONBUILD triggers of the base, as instructions run first in this stage (Docker clears them in the result). */
  private triggers(stage: Stage, state: BuildState): Instruction[] {
    const exprs = state.config.config?.OnBuild ?? [];
    if (!exprs.length) return [];
    const out: Instruction[] = [];
    for (const expr of exprs) {
      const parsed = parseDockerfile(`${expr}\n`);
      const r = parseInstructions(parsed);
      const bad = [...parsed.diagnostics, ...r.diagnostics].find((d) => d.severity === 'error');
      if (bad) throw new BuildError(`${this.dfName}:${stage.from.line}: ONBUILD trigger "${expr}" of ${stage.baseName}: ${bad.message}`);
      for (const i of r.instructions) {
        if (i.kind === 'FROM' || i.kind === 'ONBUILD' || i.kind === 'MAINTAINER') {
          throw new BuildError(`${this.dfName}:${stage.from.line}: ONBUILD trigger "${expr}" of ${stage.baseName}: ${i.kind} isn't allowed as an ONBUILD trigger`);
        }
        out.push({ ...i, line: stage.from.line });
      }
    }
    if (state.config.config) state.config.config.OnBuild = null;
    return out;
  }

  private async buildStage(stage: Stage): Promise<StageResult> {
    const fromId = stage.base.kind === 'image' ? ++this.stepSeq : 0;
    const base = await this.baseOf(stage);
    this.checkCanceled();
    const triggers = this.triggers(stage, base.state);
    const instructions = [...triggers, ...stage.instructions];
    // BuildKit's numbering: FROM counts only for an image (a stage or scratch base shows no step), and only the
    // instructions that touch the filesystem count after it.
    const numbered = (i: Instruction) => i.kind === 'ADD' || i.kind === 'COPY' || i.kind === 'RUN' || i.kind === 'WORKDIR';
    const fromImage = stage.base.kind === 'image';
    const total = (fromImage ? 1 : 0) + instructions.filter(numbered).length;
    if (fromImage) {
      this.emit({ type: 'step', id: fromId, name: `[${stage.displayName} 1/${total}] FROM ${stage.baseName}` });
      this.emit({ type: 'done', id: fromId, ms: 0 });
    }

    let cur: StageState = { state: base.state, key: base.key, args: new Map() };
    let index = fromImage ? 1 : 0;
    let position = 0;
    for (const raw of instructions) {
      if (numbered(raw)) index++;
      position++;
      this.checkCanceled();
      // Variables: the stage's ARG values, then the ENV so far (ENV wins over an ARG of the same name).
      const vars = new Map<string, string>(cur.args);
      for (const e of cur.state.config.config?.Env ?? []) {
        const i = e.indexOf('=');
        vars.set(e.slice(0, i), e.slice(i + 1));
      }
      const ex = expandInstruction(raw, vars, this.escape);
      if (!ex.ok) throw new BuildError(this.describe(ex.diagnostic));
      const instr = ex.instruction;
      const trigger = position <= triggers.length;
      const text = (trigger ? 'ONBUILD ' : '') + instructionText(instr);
      cur = await this.step({ stage, index, total, position, instr, text }, cur);
    }
    const lowers = await this.lowersOf(cur.state);
    return { state: cur.state, key: cur.key, lowers, stage: true };
  }

  /** A throwaway Image view of a build state, for the layer store. */
  private asImage(state: BuildState): Image {
    const zero = `sha256:${'0'.repeat(64)}` as Digest;
    return {
      id: zero, manifestDigest: zero,
      manifest: { schemaVersion: 2, config: { mediaType: '', digest: zero, size: 0 }, layers: state.layers },
      config: state.config, repoTags: [], repoDigests: [], size: 0,
    };
  }

  private async step(at: StepAt, prev: StageState): Promise<StageState> {
    const { instr } = at;
    const state: BuildState = { config: structuredClone(prev.state.config), layers: [...prev.state.layers] };
    const c = (state.config.config ??= {});
    const history = (state.config.history ??= []);
    const meta = (createdBy: string | undefined): StageState => {
      // Metadata steps take the time of the step before them, so a fully cached build yields the same image. They
      // are no part of the cache key (as in BuildKit): what a later step uses of them is in its own key.
      const created = history.at(-1)?.created ?? state.config.created ?? this.now();
      if (createdBy !== undefined) history.push({ created, created_by: createdBy, comment: HISTORY_COMMENT, empty_layer: true });
      state.config.created = created;
      return { ...prev, state };
    };
    const shell = c.Shell ?? DEFAULT_SHELL;
    const cmdline = (cl: CommandLine) => (cl.form === 'exec' ? cl.args : [...shell, cl.command]);
    switch (instr.kind) {
      case 'ARG': {
        const args = new Map(prev.args);
        // Every ARG of the stage, set or not, in order: RUN's history lists them (BuildKit's "|N K=v" prefix).
        const declared = [...(prev.declared ?? [])];
        const shown: string[] = [];
        for (const d of instr.args) {
          if (!declared.includes(d.name)) declared.push(d.name);
          const v = stageArgValue(d, this.graph, this.o.buildArgs);
          if (v.value !== undefined) args.set(d.name, v.value);
          else args.delete(d.name);
          shown.push(v.value !== undefined ? `${d.name}=${v.value}` : d.name);
        }
        // Its values reach RUN steps, whose keys include them; the history shows them (as BuildKit's does).
        return { ...meta(`ARG ${shown.join(' ')}`), args, declared };
      }
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        for (const { key, value } of instr.pairs) {
          const i = env.findIndex((e) => e.split('=')[0] === key);
          if (i >= 0) env[i] = `${key}=${value}`;
          else env.push(`${key}=${value}`);
        }
        c.Env = env;
        return meta(`ENV ${instr.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`);
      }
      case 'LABEL':
        c.Labels = { ...(c.Labels ?? {}) };
        for (const { key, value } of instr.pairs) c.Labels[key] = value;
        return meta(`LABEL ${instr.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`);
      case 'MAINTAINER':
        state.config.author = instr.maintainer;
        return meta(`MAINTAINER ${instr.maintainer}`);
      case 'CMD':
        c.Cmd = cmdline(instr.command);
        return { ...meta(`CMD ${goQuoted(c.Cmd)}`), cmdSet: true };
      case 'ENTRYPOINT':
        c.Entrypoint = cmdline(instr.command);
        // An ENTRYPOINT resets a CMD inherited from the base image (Docker); a CMD earlier in this stage stays.
        if (!prev.cmdSet) c.Cmd = null;
        return meta(`ENTRYPOINT ${goQuoted(c.Entrypoint)}`);
      case 'EXPOSE': {
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
        const ports = instr.ports.flatMap(exposedPorts);
        for (const p of ports) c.ExposedPorts[p] = {};
        return meta(`EXPOSE [${ports.join(' ')}]`);
      }
      case 'VOLUME':
        c.Volumes = { ...(c.Volumes ?? {}) };
        for (const p of instr.paths) c.Volumes[p] = {};
        return meta(`VOLUME [${instr.paths.join(' ')}]`);
      case 'USER':
        c.User = instr.user;
        return meta(`USER ${instr.user}`);
      case 'STOPSIGNAL':
        c.StopSignal = instr.signal;
        return meta(`STOPSIGNAL ${instr.signal}`);
      case 'HEALTHCHECK':
        if (instr.test[0] === 'NONE') c.Healthcheck = { Test: ['NONE'] };
        else {
          c.Healthcheck = {
            Test: instr.test,
            ...(instr.interval !== undefined ? { Interval: instr.interval } : {}),
            ...(instr.timeout !== undefined ? { Timeout: instr.timeout } : {}),
            ...(instr.startPeriod !== undefined ? { StartPeriod: instr.startPeriod } : {}),
            ...(instr.startInterval !== undefined ? { StartInterval: instr.startInterval } : {}),
            ...(instr.retries !== undefined ? { Retries: instr.retries } : {}),
          };
        }
        return meta(`HEALTHCHECK ${healthcheckText(instr)}`);
      case 'SHELL':
        c.Shell = instr.shell;
        return meta(`SHELL [${instr.shell.join(' ')}]`);
      case 'ONBUILD':
        // No history entry (BuildKit writes none).
        c.OnBuild = [...(c.OnBuild ?? []), instr.expression];
        return meta(undefined);
      case 'FROM':
        throw new BuildError(`${this.dfName}:${instr.line}: unexpected FROM inside a stage`);
      case 'WORKDIR': {
        const wd = posix.resolve(c.WorkingDir || '/', instr.path);
        c.WorkingDir = wd;
        if (wd === '/') return meta('WORKDIR /');
        // BuildKit creates the directory (owned by USER): a layer, unless it was already there.
        const user = c.User ?? '';
        return this.fsStep(at, { ...prev, state }, {
          keyParts: ['WORKDIR', wd],
          settings: { user },
          inputs: new Map(),
          createdBy: `WORKDIR ${wd}`,
          apply: async ({ rootfs }) => {
            const host = resolveInRoot(rootfs, wd);
            if (existsSync(host)) return;
            const owner = user ? resolveUser(rootfs, user) : { uid: 0, gid: 0 };
            let missing = '';
            for (const part of wd.split('/').filter(Boolean)) {
              missing = posix.join(missing || '/', part);
              const p = resolveInRoot(rootfs, missing);
              if (existsSync(p)) continue;
              mkdirSync(p, { mode: 0o755 });
              lchownSync(p, owner.uid, owner.gid);
            }
          },
        });
      }
      case 'RUN':
        return this.runStepOf(at, { ...prev, state }, instr);
      case 'COPY':
      case 'ADD':
        return this.copyStepOf(at, { ...prev, state }, instr);
    }
  }

  /**
   * A step that changes the filesystem, through the cache: a hit reuses the recorded state; a miss says why, mounts
   * the stage, does the work and commits the upper dir as a layer (none when nothing changed).
   */
  private beginStep(at: StepAt): { id: number; t0: number } {
    const id = ++this.stepSeq;
    this.emit({ type: 'step', id, name: `[${at.stage.displayName} ${at.index}/${at.total}] ${at.text}` });
    return { id, t0: Date.now() };
  }

  /** A step's failure before its work started (a missing source, a download): reported on the step, then thrown. */
  private failStep(id: number, e: unknown): never {
    const err = e instanceof BuildError ? e : new BuildError(e instanceof Error ? e.message : String(e));
    if (!err.canceled && !err.reported) this.emit({ type: 'error', id, message: err.message });
    err.reported = true;
    throw err;
  }

  private async fsStep(at: StepAt, prev: StageState, w: FsWork, begun?: { id: number; t0: number }): Promise<StageState> {
    const { id, t0 } = begun ?? this.beginStep(at);
    const inputs = Object.fromEntries([...w.inputs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    // SOURCE_DATE_EPOCH changes the layer (its mtimes are clamped to it), so it is in the key when set.
    const epoch = this.o.sourceDateEpoch !== undefined ? [`SOURCE_DATE_EPOCH=${this.o.sourceDateEpoch}`] : [];
    const key = cacheKey([prev.key, ...w.keyParts, JSON.stringify(w.settings), JSON.stringify(inputs), ...epoch]);
    const about = this.positionOf(at);
    const record: StepRecord = { key, parentKey: prev.key, text: at.text, settings: w.settings, inputs };
    // With the identities of the stages it read, once their layers are archived (the next build compares them).
    const recordOut = async (): Promise<StepRecord> => {
      if (!w.sources) return record;
      const ids: Record<string, string> = {};
      for (const [from, r] of Object.entries(w.sources)) ids[from] = stageReadIdentity((await this.resolveState(r.state)).config.rootfs.diff_ids, r.spec);
      return { ...record, sources: ids };
    };
    trace(`step ${id}: lookup`);
    const hit = this.o.noCache ? undefined : this.cache.get(key);
    // Only the step's own layer is taken from the entry (the ones before it are this build's own).
    const own = hit && { ...hit.state, layers: hit.layer ? hit.state.layers.slice(-1) : [] };
    if (hit && own && (await this.cache.restore(own, this.engine.images, this.lease))) {
      trace(`step ${id}: hit restored`);
      if (w.sources) this.inBackground(recordOut().then((r) => this.cache.record(about, r)));
      else this.cache.record(about, record);
      this.emit({ type: 'cached', id });
      this.emit({ type: 'done', id, ms: Date.now() - t0 });
      return { ...prev, state: withCachedStep(prev.state, hit, w.createdBy), key };
    }
    // What the last build at this position read: it explains the miss, and its COPY's files may be linked.
    const previous = this.o.noCache ? undefined : this.cache.previous(about);
    const reason = this.o.noCache ? 'disabled by --no-cache' : this.cache.explainMiss(previous, record);
    this.emit({ type: 'miss', id, text: at.text, reason });

    trace(`step ${id}: keyed`);
    const lowers = await this.lowersOf(prev.state);
    const fs = new StepFs(this.engine, lowers);
    this.cleanups.push(() => fs.dispose());
    let archiving = false;
    try {
      fs.mount();
      let applied: Applied;
      try {
        // Not with --no-cache: a cold build writes every file.
        applied = (await w.apply(fs, id, () => (previous ? this.linkSource(previous) : undefined))) ?? {};
      } catch (e) {
        const msg = isBerthError(e) || e instanceof Error ? e.message : String(e);
        if (e instanceof BuildError) throw e;
        throw new BuildError(`${this.dfName}:${at.instr.line}: ${at.text}: ${msg}`);
      }
      this.checkCanceled();
      trace(`step ${id}: applied`);
      const opts = { ...(this.o.sourceDateEpoch !== undefined ? { sourceDateEpoch: this.o.sourceDateEpoch } : {}), remove: applied.remove ?? [] };
      const next: BuildState = { config: structuredClone(prev.state.config), layers: [...prev.state.layers] };
      const history = (next.config.history ??= []);
      const created = new Date().toISOString();
      if (fs.seal(opts)) {
        // The layer's tar is written while the next steps run (they use the upper dir as a lower meanwhile); the
        // state carries a placeholder until then, and the cache record is written once every digest is known.
        const placeholder = `sha256:${PENDING_PREFIX}${id}` as Digest;
        const done = fs.archive(this.lease, opts, this.signal).catch((e: unknown) => {
          if (this.signal.aborted) throw new BuildError('build canceled', true);
          throw new BuildError(`${this.dfName}:${at.instr.line}: ${at.text}: archiving the layer: ${(e as Error).message ?? String(e)}`);
        });
        archiving = true;
        const entry: { fs: StepFs; done: Promise<Committed | undefined>; result?: Committed; published?: boolean } = { fs, done };
        this.pending.set(placeholder, entry);
        done.then((c) => { if (c) entry.result = c; }, () => undefined);
        next.layers.push({ mediaType: MEDIA_OCI_LAYER, digest: placeholder, size: 0 });
        next.config.rootfs = { type: 'layers', diff_ids: [...next.config.rootfs.diff_ids, placeholder] };
        const stamp = this.now();
        next.config.created = stamp;
        history.push({ created: stamp, created_by: w.createdBy, comment: HISTORY_COMMENT, [PENDING_TAG]: placeholder } as HistoryEntry);
        this.inBackground((async () => {
          const committed = await done;
          const state = await this.resolveState(next);
          this.cache.put(
            { key, state, ...(committed ? { layer: { digest: committed.layer.digest, diffId: committed.diffId } } : {}), created },
            committed?.blobFile, about, await recordOut(), applied.placed,
          );
        })());
      } else {
        const stamp = history.at(-1)?.created ?? next.config.created ?? this.now();
        next.config.created = stamp;
        history.push({ created: stamp, created_by: w.createdBy, comment: HISTORY_COMMENT, empty_layer: true });
        // Its cache record waits for the layers before it, in the background like theirs.
        this.inBackground((async () => this.cache.put({ key, state: await this.resolveState(next), created }, undefined, about, await recordOut()))());
      }
      trace(`step ${id}: done`);
      this.emit({ type: 'done', id, ms: Date.now() - t0 });
      return { ...prev, state: next, key };
    } catch (e) {
      return this.failStep(id, e);
    } finally {
      // An archiving step's upper dir is a lower of the steps after it: published (or removed) when the build ends.
      if (!archiving) fs.dispose();
    }
  }

  /** A step's position: what the last build there read explains this build's miss. */
  private positionOf(at: StepAt): string {
    return cacheKey([this.context.root, this.o.dockerfileRel ?? '', at.stage.displayName, String(at.stage.index), String(at.position)]);
  }

  /**
   * The inputs a step reads from another stage, by content (`sources` as the instruction names them, after
   * expansion), and what identifies them: the stage's layer chain and what is read of it. They are hashed in the
   * mounted stage, unless the last build at this position recorded the same identity (the same layers, read the same
   * way: the same files). A stage whose steps ran in this build has layers still being archived, so it is hashed.
   * Images are keyed by their id instead.
   */
  private stageInputsOf(
    at: StepAt, from: string, src: StageResult, sources: readonly string[], o: { excludes?: string[]; optional?: boolean },
  ): { inputs: Map<string, string>; read: StageRead } {
    const layers = src.state.config.rootfs.diff_ids;
    const read: StageRead = { state: src.state, spec: JSON.stringify([sources, o.excludes ?? [], o.optional ?? false]) };
    const settled = !layers.some((d) => this.pending.has(d));
    const last = !this.o.noCache && settled ? this.cache.previous(this.positionOf(at)) : undefined;
    if (last?.sources?.[from] !== undefined && last.sources[from] === stageReadIdentity(layers, read.spec)) {
      trace(`step: --from=${from} read as the last build read it`);
      return { inputs: new Map(Object.entries(last.inputs).filter(([k]) => parseStageInputName(k)?.from === from)), read };
    }
    trace(`step: hashing --from=${from}`);
    const mnt = this.mountSource(src);
    try {
      const ex = o.excludes?.length ? createIgnoreMatcher(o.excludes) : undefined;
      return { inputs: stageInputs(mnt, from, sources, { ...(ex ? { ex } : {}), ...(o.optional ? { optional: true } : {}) }), read };
    } catch (e) {
      if (e instanceof SourceMissing) throw new BuildError(`${this.dfName}:${at.instr.line}: ${at.instr.kind} --from=${from}: ${e.message}`);
      throw e;
    } finally {
      this.releaseSource(mnt);
    }
  }

  /** The files the last build at a step position (its record) placed, while its layer is unpacked (an incremental COPY links them). */
  private linkSource(prev: StepRecord): LinkSource | undefined {
    const entry = this.cache.getQuietly(prev.key);
    if (!entry?.layer || !this.engine.layers.has(entry.layer.diffId)) return undefined;
    const placed = this.cache.placedFiles(entry.key);
    return placed && { dir: this.engine.layers.diffDir(entry.layer.diffId), placed };
  }

  /**
   * Moves every finished archive's upper dir into the layer store (one rename: a layer another process unpacked or
   * published meanwhile stays, see LayerStore) and removes the rest. Only when no step is mounted; each pending
   * layer is handled once.
   */
  private publishLayers(): void {
    for (const p of this.pending.values()) {
      if (p.published) continue;
      p.published = true;
      const c = p.result;
      try {
        if (c) p.fs.publish(c.diffId);
        else p.fs.dispose();
      } catch {
        // best effort: a layer not published is unpacked from its blob when needed
        p.fs.dispose();
      }
    }
  }

  /**
   * Overlay lowerdirs of a state, top first: unpacked layers from the store, and for layers still being archived
   * (placeholders in the state) their step's upper dir.
   */
  private async lowersOf(state: BuildState): Promise<string[]> {
    const ids = state.config.rootfs.diff_ids;
    if (!ids.some((d) => this.pending.has(d))) return this.engine.layers.ensure(this.asImage(state));
    const realIds: Digest[] = [];
    const realBlobs: Digest[] = [];
    ids.forEach((d, i) => {
      if (this.pending.has(d)) return;
      realIds.push(d);
      realBlobs.push(state.layers[i]!.digest);
    });
    const realDirs = (await this.engine.layers.ensureChain(realIds, realBlobs)).reverse();
    let r = 0;
    return ids.map((d) => this.pending.get(d)?.fs.upper ?? realDirs[r++]!).reverse();
  }

  /** A state with every placeholder replaced by its layer once archived (or dropped, with an empty history entry). */
  private async resolveState(state: BuildState): Promise<BuildState> {
    const ids = state.config.rootfs.diff_ids;
    if (!ids.some((d) => this.pending.has(d))) return state;
    const out = structuredClone(state);
    const layers: Descriptor[] = [];
    const diffIds: Digest[] = [];
    for (let i = 0; i < ids.length; i++) {
      const p = this.pending.get(ids[i]!);
      const c = p ? await p.done : { layer: state.layers[i]!, diffId: ids[i]! };
      if (!c) continue;
      layers.push(c.layer);
      diffIds.push(c.diffId);
    }
    for (const h of out.config.history ?? []) {
      const tagged = h as HistoryEntry & { [PENDING_TAG]?: Digest };
      const tag = tagged[PENDING_TAG];
      if (tag === undefined) continue;
      delete tagged[PENDING_TAG];
      if (!(await this.pending.get(tag)?.done)) h.empty_layer = true;
    }
    out.layers = layers;
    out.config.rootfs = { type: 'layers', diff_ids: diffIds };
    return out;
  }

  /** Work that outlives its step (archiving a layer); its failure fails the build. */
  private inBackground(p: Promise<void>): void {
    const tracked = p.catch((e: unknown) => {
      this.firstError ??= e;
      this.abort.abort();
      throw e;
    });
    tracked.catch(() => undefined);
    this.background.push(tracked);
  }

  /** Waits for all background work, including work started while waiting. */
  private async settleBackground(): Promise<void> {
    for (let n = 0; n < this.background.length;) {
      const batch = this.background.slice(n);
      n += batch.length;
      await Promise.all(batch);
    }
  }

  /** The stage or image a `COPY --from` / `RUN --mount=from` reads (a stage by name or index, else an image). */
  private async fromSource(from: string, line: number): Promise<StageResult> {
    const stage = resolveStageRef(from, this.graph.stages);
    if (stage) return this.stageResult(stage);
    let p = this.images.get(from);
    if (!p) {
      p = (async () => {
        let img: Image;
        try {
          img = this.engine.images.resolve(from);
        } catch {
          throw new BuildError(`${this.dfName}:${line}: --from=${from}: no stage or local image of that name`);
        }
        const lowers = await this.engine.layers.ensure(img);
        return { state: { config: img.config, layers: img.manifest.layers }, key: cacheKey(['image', img.id]), lowers, stage: false };
      })();
      this.images.set(from, p);
    }
    return p;
  }

  /** Mounts a stage's filesystem read-only (or with a throwaway upper when `writable`) for a step to read. */
  private mountSource(src: StageResult, writable = false): string {
    const dir = join(this.engine.paths.tmp, `${SOURCE_MOUNT_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    const mnt = join(dir, 'root');
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      unmount(mnt);
      rmSync(dir, { recursive: true, force: true });
    };
    this.cleanups.push(release);
    this.sourceReleases.set(mnt, release);
    mkdirSync(mnt, { recursive: true });
    const lowers = src.lowers.filter((l, i) => src.lowers.indexOf(l) === i);
    if (writable) {
      mkdirSync(join(dir, 'upper'));
      mkdirSync(join(dir, 'work'));
      mountOverlay(lowers.length ? lowers : [this.engine.layers.emptyDir()], join(dir, 'upper'), join(dir, 'work'), mnt, { volatile: true });
    } else {
      // A read-only overlay needs two lowerdirs at least.
      if (lowers.length === 0) lowers.push(this.engine.layers.emptyDir());
      if (lowers.length === 1) {
        mkdirSync(join(dir, 'empty'));
        lowers.push(join(dir, 'empty'));
      }
      mountOverlay(lowers, undefined, undefined, mnt);
    }
    return mnt;
  }

  private readonly sourceReleases = new Map<string, () => void>();

  /** How a Git source is fetched: the `--ssh default` agent (else the caller's) for ssh remotes. */
  private gitAccess(home: string): GitAccess {
    const agent = this.o.ssh?.get('default') ?? process.env.SSH_AUTH_SOCK;
    return { home, ...(agent ? { sshAgent: agent } : {}), signal: this.signal };
  }

  /**
   * A directory of this build's own on the host's tmpfs, for nobody else (0700; the runtime mounts from it as root),
   * for a step's secrets and ssh sockets: swept if the build is killed, removed when the build ends.
   */
  private secretDir(): string {
    const dir = join(SECRET_DIR, `${SECRET_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
    mkdirSync(dir, { mode: 0o700 });
    this.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** A directory of this build's own under <root>/tmp (swept if the build is killed), removed when the build ends. */
  private scratchDir(): string {
    const dir = join(this.engine.paths.tmp, `${SOURCE_MOUNT_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    mkdirSync(dir, { recursive: true });
    this.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  private releaseSource(mnt: string): void {
    this.sourceReleases.get(mnt)?.();
    this.sourceReleases.delete(mnt);
  }

  /**
   * A RUN's command line. A heredoc that is the whole command is the script, given to the shell; one that starts
   * with "#!" is a program of its own: a file mounted at /dev/pipes/<name> that the shell runs (as BuildKit does).
   * Otherwise the shell reads the heredocs itself.
   */
  private runArgs(instr: RunInstruction, shell: string[]): { args: string[]; program?: { name: string; content: string } } {
    if (instr.command.form === 'exec') return { args: instr.command.args };
    let script = instr.command.command;
    if (instr.heredocs.length) {
      const only = /^<<-?["']?(\w+)["']?\s*$/.exec(script.trim());
      const doc = instr.heredocs[0]!;
      if (only && instr.heredocs.length === 1 && doc.content.startsWith('#!')) {
        return { args: [...shell, `${PROGRAM_DIR}/${doc.name}`], program: { name: doc.name, content: doc.content } };
      }
      if (only && instr.heredocs.length === 1) script = doc.content;
      else script = `${script}\n${instr.heredocs.map((h) => `${h.content}${h.content.endsWith('\n') ? '' : '\n'}${h.name}`).join('\n')}`;
    }
    return { args: [...shell, script] };
  }

  private async runStepOf(at: StepAt, prev: StageState, instr: RunInstruction): Promise<StageState> {
    const begun = this.beginStep(at);
    const c = prev.state.config.config ?? {};
    const env = c.Env ?? [];
    const shadowed = (k: string) => env.some((e) => e.startsWith(`${k}=`));
    // Build args in scope reach the command as environment variables (ENV of the same name wins).
    const argEnv = [...prev.args].filter(([k]) => !shadowed(k)).map(([k, v]) => `${k}=${v}`);
    // Proxy build args reach every RUN without an ARG, and stay out of the cache key and the history (BuildKit).
    const proxyEnv = PROXY_ARGS.filter((k) => !prev.args.has(k) && !shadowed(k) && this.o.buildArgs?.has(k)).map((k) => `${k}=${this.o.buildArgs!.get(k)!}`);
    // As BuildKit: each declared ARG with the value the command sees (an ENV of the same name wins), unset ones empty.
    const envValue = (k: string) => [...env].reverse().find((e) => e.startsWith(`${k}=`))?.slice(k.length + 1);
    const historyArgs = (prev.declared ?? []).filter((k) => !PROXY_ARGS.includes(k)).map((k) => `${k}=${envValue(k) ?? prev.args.get(k) ?? ''}`);
    const { args, program } = this.runArgs(instr, c.Shell ?? DEFAULT_SHELL);
    const network = instr.network === 'host' ? 'host' : instr.network === 'none' ? 'none' : this.o.network ?? 'none';
    const privileged = instr.security === 'insecure';
    if (privileged && !this.o.allow?.includes('security.insecure')) {
      this.failStep(begun.id, new BuildError(`${this.dfName}:${instr.line}: ${at.text}: granting entitlement security.insecure is not allowed: build with --allow security.insecure`));
    }
    const cwd = c.WorkingDir || '/';
    // Inputs: what bind mounts read (context files, stages); cache, tmpfs and secret mounts never count.
    const inputs = new Map<string, string>();
    const stageKeys: Record<string, StageRead> = {};
    const sources = new Map<number, StageResult | ContextFile>();
    for (const [i, m] of instr.mounts.entries()) {
      if (m.type !== 'bind' && !(m.type === 'cache' && m.from)) continue;
      if (m.from) {
        const s = await this.fromSource(m.from, instr.line).catch((e) => this.failStep(begun.id, e));
        sources.set(i, s);
        if (m.type === 'bind' && s.stage) {
          // A bind mount reads the stage's files (by content); a cache mount only starts from them.
          let read: { inputs: Map<string, string>; read: StageRead };
          try {
            read = this.stageInputsOf(at, m.from, s, [m.source ?? '/'], { optional: true });
          } catch (e) {
            this.failStep(begun.id, e);
          }
          for (const [k, v] of read.inputs) inputs.set(k, v);
          stageKeys[m.from] = read.read;
        } else inputs.set(`--from=${m.from}`, s.key);
      } else {
        let f: ContextFile;
        try {
          [f] = this.context.resolve([m.source ?? '.']) as [ContextFile];
        } catch (e) {
          this.failStep(begun.id, new BuildError(`${this.dfName}:${instr.line}: ${at.text}: ${(e as Error).message}`));
        }
        sources.set(i, f);
        for (const [k, v] of this.context.inputs([f])) inputs.set(k, v);
      }
    }
    const prefix = historyArgs.length ? `|${historyArgs.length} ${historyArgs.join(' ')} ` : '';
    return this.fsStep(at, prev, {
      keyParts: [
        'RUN', JSON.stringify(args), JSON.stringify(instr.mountSpecs),
        ...(program ? [program.content] : []),
        ...(privileged ? ['security=insecure'] : []),
      ],
      settings: {
        env: JSON.stringify(env), args: JSON.stringify([...argEnv].sort()), user: c.User ?? '', workdir: cwd,
        shell: JSON.stringify(c.Shell ?? DEFAULT_SHELL), network,
      },
      inputs,
      ...(Object.keys(stageKeys).length ? { sources: stageKeys } : {}),
      createdBy: `RUN ${prefix}${args.join(' ')} # buildkit`,
      apply: async ({ rootfs }, id) => ({ remove: await this.run(at, instr, rootfs, { env: [...env, ...argEnv, ...proxyEnv], args, program, cwd, user: c.User ?? '', network, privileged, sources }, id) }),
    }, begun);
  }

  private async run(
    at: StepAt, instr: RunInstruction, rootfs: string,
    r: {
      env: string[]; args: string[]; program: { name: string; content: string } | undefined; cwd: string; user: string; network: 'none' | 'host';
      privileged: boolean; sources: Map<number, StageResult | ContextFile>;
    },
    id: number,
  ): Promise<string[]> {
    const env = [...r.env];
    const mounts: (Mount | CacheMountRequest)[] = [];
    const released: string[] = [];
    const forwards: { close(): Promise<void> }[] = [];
    let sshIndex = 0;
    const fail = (msg: string) => new BuildError(`${this.dfName}:${instr.line}: ${at.text}: ${msg}`);
    const tail: string[] = [];
    const partial = { stdout: '', stderr: '' };
    let result;
    // Mounts made for the step (sources, secrets, ssh sockets) are released on every way out, also a failure midway.
    try {
      for (const [i, m] of instr.mounts.entries()) {
        const target = m.target === undefined ? undefined : posix.resolve(r.cwd, m.target);
        if (m.type === 'secret') {
          const sid = m.id ?? '';
          const secret = this.o.secrets?.get(sid);
          let value: Buffer | undefined;
          if (secret?.file) value = readFileSync(secret.file);
          else if (secret?.env !== undefined && process.env[secret.env] !== undefined) value = Buffer.from(process.env[secret.env]!);
          if (value === undefined) {
            if (m.required) throw fail(`secret ${sid} not found (give it with --secret id=${sid},src=FILE or env=VAR)`);
            continue;
          }
          if (m.env) env.push(`${m.env}=${value.toString()}`);
          if (target || !m.env) {
            // On a tmpfs of the host, bind-mounted read-only into this step only: never on disk, never in a layer.
            const dir = this.secretDir();
            released.push(dir);
            const file = join(dir, 'secret');
            writeFileSync(file, value, { mode: m.mode ?? 0o400 });
            lchownSync(file, m.uid ?? 0, m.gid ?? 0);
            const dst = target ?? `/run/secrets/${sid}`;
            mounts.push(bindMount(file, dst, { readonly: true }));
          }
        } else if (m.type === 'cache') {
          // Taken by runStep per the sharing mode; a `from` stage seeds the cache on first use.
          const s = r.sources.get(i);
          mounts.push(cacheMountRequest(this.cache.mountsDir, m, target!, s && 'lowers' in s ? { key: s.key, open: () => this.mountSource(s), close: (mnt) => this.releaseSource(mnt) } : undefined));
        } else if (m.type === 'tmpfs') {
          mounts.push(tmpfsMount(target!, m.size ? [`size=${parseSize(m.size)}`] : []));
        } else if (m.type === 'bind') {
          const s = r.sources.get(i)!;
          let src: string;
          if ('lowers' in s) {
            const mnt = this.mountSource(s, !m.readonly);
            released.push(mnt);
            src = resolveInRoot(mnt, m.source ?? '/');
            if (!existsSync(src)) throw fail(`--mount=from=${m.from}: ${m.source ?? '/'} not found`);
          } else if (s.stat.isDirectory() && (this.context.ignore.patterns.length > 0 || !m.readonly)) {
            // The step sees the context as the build does (.dockerignore applied), and never writes to it.
            const dir = this.scratchDir();
            const items: CopyItem[] = this.context.tree(s.rel).map((f) => ({ kind: 'entry', src: f.abs, stat: f.stat, dest: s.rel === '.' ? f.rel : f.rel.slice(s.rel.length + 1) }));
            placeItems(dir, items, { uid: 0, gid: 0, chownParents: false });
            src = dir;
          } else if (!m.readonly) {
            const dir = this.scratchDir();
            cpSync(s.abs, join(dir, 'f'), { verbatimSymlinks: true });
            src = join(dir, 'f');
          } else {
            src = s.abs;
          }
          mounts.push(bindMount(src, target!, { readonly: m.readonly }));
        } else if (m.type === 'ssh') {
          // The agent of --ssh ID, through a socket of this step's own (its owner and mode as the mount asks).
          const sid = m.id ?? 'default';
          const agent = this.o.ssh?.get(sid);
          if (agent === undefined) {
            if (m.required) throw fail(`no SSH key ${JSON.stringify(sid)} forwarded from the client (give it with --ssh ${sid}[=SOCKET])`);
            continue;
          }
          const dst = target ?? `/run/buildkit/ssh_agent.${sshIndex}`;
          const dir = this.secretDir();
          released.push(dir);
          const fwd = await forwardAgent(agent, join(dir, 'agent.sock'), { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o600 });
          forwards.push(fwd);
          this.cleanups.push(() => void fwd.close());
          mounts.push(bindMount(join(dir, 'agent.sock'), dst, { readonly: true }));
          if (sshIndex === 0) env.push(`SSH_AUTH_SOCK=${dst}`);
          sshIndex++;
        } else {
          throw fail(`--mount=type=${m.type} is not supported by berth`);
        }
      }
      if (r.program) {
        const dir = this.scratchDir();
        writeFileSync(join(dir, r.program.name), r.program.content, { mode: 0o755 });
        mounts.push(bindMount(join(dir, r.program.name), `${PROGRAM_DIR}/${r.program.name}`, { readonly: true }));
      }
      result = await runStep(this.engine, rootfs, {
        args: r.args,
        env,
        cwd: r.cwd,
        user: r.user,
        network: r.network,
        privileged: r.privileged,
        mounts,
        signal: this.signal,
        onOutput: (stream, data) => {
          const text = partial[stream] + data.toString();
          const lines = text.split('\n');
          partial[stream] = lines.pop() ?? '';
          tail.push(...lines);
          if (tail.length > 10) tail.splice(0, tail.length - 10);
          this.emit({ type: 'output', id, stream, text: data.toString() });
        },
      });
    } finally {
      await Promise.all(forwards.map((f) => f.close()));
      for (const d of released) {
        if (d.startsWith(SECRET_DIR)) rmSync(d, { recursive: true, force: true });
        else this.releaseSource(d);
      }
    }
    this.checkCanceled();
    for (const rest of [partial.stdout, partial.stderr]) if (rest) tail.push(rest);
    const code = result.code;
    if (code !== 0) {
      const last = tail.length ? `\n${tail.slice(-10).map((l) => `  > ${l}`).join('\n')}` : '';
      const cmd = instr.command.form === 'shell' ? [...r.args.slice(0, -1), r.args.at(-1)].join(' ') : JSON.stringify(instr.command.args);
      throw new BuildError(`${this.dfName}:${instr.line}: process "${cmd}" did not complete successfully: exit code: ${code}${last}`);
    }
    return result.stubs;
  }

  private async copyStepOf(at: StepAt, prev: StageState, instr: CopyInstruction | AddInstruction): Promise<StageState> {
    // As BuildKit, a COPY --from starts (and is clocked) once its source is ready; a failing source is reported by
    // the step itself below (the result is shared).
    if (instr.kind === 'COPY' && instr.from !== undefined) await this.fromSource(instr.from, instr.line).catch(() => undefined);
    const begun = this.beginStep(at);
    try {
      return await this.copyStepPrepared(at, prev, instr, begun);
    } catch (e) {
      if (e instanceof BuildError && e.reported) throw e;
      this.failStep(begun.id, e);
    }
  }

  private async copyStepPrepared(at: StepAt, prev: StageState, instr: CopyInstruction | AddInstruction, begun: { id: number; t0: number }): Promise<StageState> {
    const c = prev.state.config.config ?? {};
    const fail = (msg: string) => new BuildError(`${this.dfName}:${instr.line}: ${at.text}: ${msg}`);
    const ex = instr.excludes.length ? createIgnoreMatcher(instr.excludes) : undefined;
    const inputs = new Map<string, string>();
    const gits = new Map<string, GitRef>();
    for (const src of instr.sources) {
      const g = parseGitRef(src);
      if (g && instr.kind === 'COPY' && !/^https?:\/\//i.test(src)) throw fail('source can\'t be a git ref for COPY');
      if (g && instr.kind === 'ADD') {
        if (instr.keepGitDir && g.keepGitDir === false) throw fail('inconsistent keep-git-dir configuration');
        if (instr.keepGitDir) g.keepGitDir = true;
        gits.set(src, g);
      }
    }
    const urls = instr.sources.filter((s) => /^https?:\/\//i.test(s) && !gits.has(s));
    if (urls.length && instr.kind === 'COPY') throw fail('source can\'t be a URL for COPY');
    const local = instr.sources.filter((s) => !urls.includes(s) && !gits.has(s));
    let fromStage: StageResult | undefined;
    let sources: ContextFile[] = [];
    const stageKeys: Record<string, StageRead> = {};
    if (instr.kind === 'COPY' && instr.from !== undefined) {
      fromStage = await this.fromSource(instr.from, instr.line);
      if (fromStage.stage) {
        const read = this.stageInputsOf(at, instr.from, fromStage, instr.sources, { excludes: instr.excludes });
        for (const [k, v] of read.inputs) inputs.set(k, v);
        stageKeys[instr.from] = read.read;
      } else inputs.set(`--from=${instr.from}`, fromStage.key);
    } else if (local.length) {
      trace(`step ${begun.id}: resolving sources`);
      try {
        sources = this.context.resolve(local);
      } catch (e) {
        throw fail((e as Error).message);
      }
      const keep = (f: ContextFile, s: ContextFile) => !ex?.ignores(s.rel === '.' ? f.rel : f.rel.slice(s.rel.length + 1));
      for (const s of sources) if (!(ex && !s.stat.isDirectory() && ex.ignores(s.src))) for (const [k, v] of this.context.inputs([s], keep)) inputs.set(k, v);
    }
    trace(`step ${begun.id}: sources hashed`);
    const downloads = new Map<string, { body: Buffer; mtime?: Date }>();
    for (const u of urls) {
      const d = await this.download(u, instr as AddInstruction, fail);
      downloads.set(u, d);
      inputs.set(`url:${u}`, createHash('sha256').update(d.body).digest('hex'));
    }
    // A repository is keyed by the commit its ref names now (BuildKit resolves it the same way).
    const commits = new Map<string, string>();
    for (const [src, g] of gits) {
      const scratch = this.scratchDir();
      let commit: string;
      try {
        commit = await resolveGitCommit(g, this.gitAccess(scratch));
      } catch (e) {
        throw fail((e as Error).message);
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
      const sum = g.checksum ?? (instr as AddInstruction).checksum;
      if (sum && !commit.startsWith(sum)) throw fail(`checksum mismatch for ${src}: expected commit ${sum}, got ${commit}`);
      commits.set(src, commit);
      inputs.set(`git:${src}`, commit);
    }
    for (const h of instr.inline) inputs.set(`<<${h.name}`, cacheKey([h.content]));
    const createdBy = `${copyHistoryText(instr)} # buildkit`;
    return this.fsStep(at, prev, {
      keyParts: [instr.kind, JSON.stringify(instr.sources), instr.dest, instr.chown ?? '', instr.chmod ?? '', JSON.stringify(instr.excludes),
        String(instr.kind === 'COPY' && instr.parents), instr.kind === 'ADD' ? String(instr.unpack ?? 'auto') : '', ...(gits.size ? [`keep-git-dir=${(instr as AddInstruction).keepGitDir}`] : [])],
      settings: { workdir: c.WorkingDir ?? '' },
      inputs,
      ...(fromStage?.stage ? { sources: stageKeys } : {}),
      createdBy,
      apply: async (fs, _id, reuse) => this.copy(instr, fs, { sources, fromStage, downloads, gits, commits, ex, workdir: c.WorkingDir || '/', reuse }),
    }, begun);
  }

  private async download(u: string, instr: AddInstruction, fail: (m: string) => BuildError): Promise<{ body: Buffer; mtime?: Date }> {
    let res: HttpGetResult;
    try {
      res = await httpGet(u, { signal: AbortSignal.any([this.signal, AbortSignal.timeout(60_000)]) });
    } catch (e) {
      throw fail(`failed to download ${u}: ${(e as Error).message}`);
    }
    if (res.status < 200 || res.status > 299) throw fail(`failed to download ${u}: HTTP ${res.status}`);
    const body = res.body;
    if (instr.checksum) {
      const got = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      if (got !== instr.checksum) throw fail(`checksum mismatch for ${u}: expected ${instr.checksum}, got ${got}`);
    }
    const lm = res.headers['last-modified'];
    const mtime = lm ? new Date(lm) : undefined;
    return mtime && !Number.isNaN(mtime.getTime()) ? { body, mtime } : { body };
  }

  private async copy(
    instr: CopyInstruction | AddInstruction, fs: StepFs,
    s: {
      sources: ContextFile[]; fromStage: StageResult | undefined; downloads: Map<string, { body: Buffer; mtime?: Date }>; ex: IgnoreMatcher | undefined;
      gits: Map<string, GitRef>; commits: Map<string, string>;
      workdir: string; reuse: () => LinkSource | undefined;
    },
  ): Promise<Applied> {
    const rootfs = fs.rootfs;
    // A COPY from the context records what it placed, and links what the last build here placed alike.
    const record = instr.kind === 'COPY' && !s.fromStage;
    const digestOf = (f: ContextFile) => (record && f.stat.isFile() ? { digest: this.context.digestOf(f) } : {});
    const destRaw = posix.resolve(s.workdir, instr.dest);
    // Without --chown, context files become root's; files from a stage or image keep their owner.
    const owner = instr.chown ? resolveUser(rootfs, instr.chown) : s.fromStage ? {} : { uid: 0, gid: 0 };
    let chmod: ModeChange | undefined;
    if (instr.chmod !== undefined) {
      try {
        chmod = parseModeChange(instr.chmod);
      } catch (e) {
        throw new BuildError(`${this.dfName}:${instr.line}: ${instr.kind} --chmod=${instr.chmod}: ${(e as Error).message}`);
      }
    }
    const o = { ...owner, chownParents: instr.chown !== undefined, ...(chmod !== undefined ? { chmod } : {}) };
    const parents = instr.kind === 'COPY' && instr.parents;
    const pivots = new Map(instr.sources.map((raw) => [cleanSource(raw), parentsPivot(raw)]));

    // Sources, each as [host path, stat, name as written]: from the context, or from a mounted stage or image.
    type Entry = { abs: string; stat: ContextFile['stat']; digest?: string };
    type Src = Entry & { src: string; raw: string; tree: () => (Entry & { rel: string })[] };
    let list: Src[] = [];
    let mnt: string | undefined;
    if (s.fromStage) {
      mnt = this.mountSource(s.fromStage);
      for (const raw of instr.sources) {
        const rel = cleanSource(raw);
        const names = hasGlob(rel) ? globIn(mnt, rel) : [rel];
        if (names.length === 0) throw new BuildError(`${this.dfName}:${instr.line}: ${instr.kind} --from=${instr.kind === 'COPY' ? instr.from : ''}: no source files match "${raw}"`);
        for (const n of names) {
          const abs = n === '.' ? mnt : resolveInRoot(mnt, n);
          let stat;
          try {
            stat = lstatSync(abs);
          } catch {
            throw new BuildError(`${this.dfName}:${instr.line}: ${instr.kind} --from=${instr.kind === 'COPY' ? instr.from : ''}: "${raw}" not found in the source`);
          }
          list.push({ abs, stat, src: n, raw, tree: () => walkDir(abs) });
        }
      }
    } else {
      list = s.sources.map((f) => ({
        abs: f.abs, stat: f.stat, src: f.src, raw: f.src, ...digestOf(f),
        tree: () => this.context.tree(f.rel).map((e) => ({ rel: f.rel === '.' ? e.rel : e.rel.slice(f.rel.length + 1), abs: e.abs, stat: e.stat, ...digestOf(e) })),
      }));
    }
    try {
      if (s.ex) list = list.filter((x) => x.stat.isDirectory() || !s.ex!.ignores(x.src));
      // A repository is added like a directory of the context: its checkout's contents go under the destination.
      for (const [src, g] of s.gits) {
        const scratch = this.scratchDir();
        const checkout = await checkoutGit(g, s.commits.get(src)!, join(scratch, 'repo'), this.gitAccess(scratch)).catch((e: unknown) => {
          throw new BuildError(`${this.dfName}:${instr.line}: ${instr.kind} ${src}: ${(e as Error).message}`);
        });
        if (!lstatSync(checkout.root, { throwIfNoEntry: false })?.isDirectory()) {
          throw new BuildError(`${this.dfName}:${instr.line}: ${instr.kind} ${src}: no directory ${g.subdir} in the repository`);
        }
        // Its files take the commit's time: the same commit gives the same layer.
        for (const e of walkDir(checkout.root)) lutimesSync(e.abs, checkout.time, checkout.time);
        lutimesSync(checkout.root, checkout.time, checkout.time);
        list.push({ abs: checkout.root, stat: lstatSync(checkout.root), src: '.', raw: src, tree: () => walkDir(checkout.root) });
      }
      const count = list.length + instr.inline.length + s.downloads.size;
      const destIsDir = destNamesDir(instr.dest) || count > 1 || parents || isDirIn(rootfs, destRaw);
      const fileDest = (name: string) => (destIsDir ? posix.join(destRaw, name) : destRaw);
      const items: CopyItem[] = [];
      const placed: PlacedFiles = {};
      const link = record ? s.reuse() : undefined;
      const flush = () => {
        const p = placeItems(rootfs, items, o, link && { from: link, upper: fs.upper });
        Object.assign(placed, p.placed);
        items.length = 0;
        return p.links;
      };
      for (const h of instr.inline) items.push({ kind: 'data', data: h.content, dest: fileDest(h.name), mode: 0o644 });
      for (const x of list) {
        const keepUnder = parents ? parentsPath(x.src, pivots.get(cleanSource(x.raw))) : undefined;
        if (x.stat.isDirectory()) {
          const base = keepUnder !== undefined ? posix.join(destRaw, keepUnder) : destRaw;
          items.push({ kind: 'entry', src: x.abs, stat: x.stat, dest: base, root: true });
          for (const e of x.tree()) if (!s.ex?.ignores(e.rel)) items.push({ kind: 'entry', src: e.abs, stat: e.stat, dest: posix.join(base, e.rel), ...(e.digest ? { digest: e.digest } : {}) });
          continue;
        }
        if (instr.kind === 'ADD' && x.stat.isFile() && instr.unpack !== false && (await archiveKind(x.abs))) {
          flush();
          await extractArchive(x.abs, resolveInRoot(rootfs, destRaw));
          continue;
        }
        items.push({
          kind: 'entry', src: x.abs, stat: x.stat, dest: keepUnder !== undefined ? posix.join(destRaw, keepUnder) : fileDest(posix.basename(x.src)),
          ...(x.digest ? { digest: x.digest } : {}),
        });
      }
      for (const [u, d] of s.downloads) {
        const name = posix.basename(new URL(u).pathname) || 'index.html';
        if (instr.kind === 'ADD' && instr.unpack === true) {
          // --unpack=true: a downloaded archive is extracted like a local one (BuildKit leaves it packed otherwise).
          const file = join(this.scratchDir(), 'download');
          writeFileSync(file, d.body, { mode: 0o600 });
          try {
            if (await archiveKind(file)) {
              flush();
              await extractArchive(file, resolveInRoot(rootfs, destRaw));
              continue;
            }
          } finally {
            rmSync(file, { force: true });
          }
        }
        items.push({ kind: 'data', data: d.body, dest: fileDest(name), mode: 0o600, ...(d.mtime ? { mtime: d.mtime } : {}) });
      }
      const links = flush();
      trace(`copy: placed, ${links.length} to link`);
      if (links.length && link) {
        // Links go into the upper dir with the overlay unmounted; what cannot be linked is written as usual.
        const failed = fs.unmountForChange() ? linkDeferred(link, fs.upper, links) : links.map((l) => l.item);
        trace(`copy: linked, ${failed.length} failed`);
        if (failed.length) {
          fs.remount();
          Object.assign(placed, placeItems(rootfs, failed, o).placed);
        }
      }
      return record ? { placed } : {};
    } finally {
      if (mnt) this.releaseSource(mnt);
    }
  }
}

/** `COPY --parents`: where "/./" splits a source, the part after it is kept under the destination. */
function parentsPivot(raw: string): string | undefined {
  const i = raw.replace(/\\/g, '/').indexOf('/./');
  return i < 0 ? undefined : cleanSource(raw.slice(0, i));
}

/** The path a `COPY --parents` source keeps under the destination. */
function parentsPath(src: string, pivot: string | undefined): string {
  if (pivot && pivot !== '.' && (src === pivot || src.startsWith(`${pivot}/`))) return src.slice(pivot.length + 1);
  return src === '.' ? '' : src;
}

/** "64m" -> bytes, for the tmpfs size option. */
function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(s.trim());
  if (!m) return Number(s);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't' | 'p'];
  return Math.floor(Number(m[1]) * mult);
}

/** What identifies the files a step read of a stage: the stage's layers, and what it read of them. */
function stageReadIdentity(diffIds: readonly string[], spec: string): string {
  return cacheKey([...diffIds, spec]);
}

/**
 * The state after a step the cache had: this build's state (its metadata is this build's) with the step's layer, if
 * it made one, and its history entry at the time the step was first built (so a cached build gives the same image).
 */
function withCachedStep(state: BuildState, hit: CacheEntry, createdBy: string): BuildState {
  const next: BuildState = { config: structuredClone(state.config), layers: [...state.layers] };
  const created = hit.state.config.history?.at(-1)?.created ?? hit.state.config.created ?? hit.created;
  const history = (next.config.history ??= []);
  const layer = hit.layer && hit.state.layers.at(-1);
  if (hit.layer && layer) {
    next.layers.push(layer);
    next.config.rootfs = { type: 'layers', diff_ids: [...next.config.rootfs.diff_ids, hit.layer.diffId] };
    history.push({ created, created_by: createdBy, comment: HISTORY_COMMENT });
  } else history.push({ created, created_by: createdBy, comment: HISTORY_COMMENT, empty_layer: true });
  next.config.created = created;
  return next;
}

/** Whether `# syntax=` names the standard Dockerfile frontend (docker/dockerfile, any 1.x tag, -labs too), which berth implements. */
export function isDockerfileFrontend(image: string): boolean {
  return /^(?:docker\.io\/)?docker\/dockerfile(?:-upstream)?(?::1(?:[.\w-]*)?|:latest|:labs|:[\w.-]*-labs)?(?:@sha256:[0-9a-f]{64})?$/.test(image.trim());
}

/** EXPOSE's ports as the image config keys them: "80" is "80/tcp", protocols in lower case, ranges one by one. */
function exposedPorts(spec: string): string[] {
  const p = parsePortSpec(spec);
  // Checked when the instruction was expanded; only the container's port of "[ip:][hostPort:]port" is exposed.
  if (typeof p === 'string') throw new BuildError(`EXPOSE ${spec}: ${p}`);
  return exposedPortKeys(p);
}

/** HEALTHCHECK's history text: Go's %+v of the config BuildKit writes. */
function healthcheckText(h: { test: string[]; interval?: number; timeout?: number; startPeriod?: number; startInterval?: number; retries?: number }): string {
  const d = (ns: number | undefined) => formatGoDuration((ns ?? 0) / 1e6);
  return `{Test:[${h.test.join(' ')}] Interval:${d(h.interval)} Timeout:${d(h.timeout)} StartPeriod:${d(h.startPeriod)} StartInterval:${d(h.startInterval)} Retries:${h.retries ?? 0}}`;
}

/** COPY's and ADD's history text: BuildKit keeps --parents, --chown and --chmod of the flags. */
function copyHistoryText(i: CopyInstruction | AddInstruction): string {
  const flags = [
    ...(i.kind === 'COPY' && i.parents ? ['--parents'] : []),
    ...(i.chown !== undefined ? [`--chown=${i.chown}`] : []),
    ...(i.chmod !== undefined ? [`--chmod=${i.chmod}`] : []),
  ];
  return [i.kind, ...flags, ...i.sources, ...i.inline.map((h) => `<<${h.name}`), i.dest].join(' ');
}

/** Go's %q of a string slice, as BuildKit writes CMD and ENTRYPOINT into history: ["a" "b"]. */
function goQuoted(args: readonly string[]): string {
  return `[${args.map((a) => JSON.stringify(a)).join(' ')}]`;
}

/** The history text of an instruction, after expansion (what `history` shows, BuildKit-style). */
export function instructionText(i: Instruction): string {
  const raw = i.raw;
  const flags = raw.flags.map((f) => (f.value === undefined ? `--${f.name}` : `--${f.name}=${f.value}`));
  if (i.kind === 'COPY' || i.kind === 'ADD') {
    // Sources and destination after expansion (build args are in the cache key through them).
    const words = [...i.sources, ...i.inline.map((h) => `<<${h.name}`), i.dest].map((w) => (/\s/.test(w) ? JSON.stringify(w) : w));
    return [i.kind, ...flags, ...words].join(' ');
  }
  return [i.kind, ...flags, raw.rawArgs].join(' ').trim().replace(/\s+/g, ' ');
}
