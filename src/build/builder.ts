import { readdirSync, chmodSync, copyFileSync, existsSync, lchownSync, lstatSync, lutimesSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, createReadStream, openSync, readSync, closeSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { BerthError, invalidArgument, notFound } from '../base/errors.js';
import { hex, type Digest } from '../base/digest.js';
import { mountOverlay, unmount } from '../sys/mount.js';
import { resolveInRoot } from '../storage/rootpath.js';
import { applyLayer } from '../storage/apply.js';
import { resolveUser } from '../security/users.js';
import { bindMount, tmpfsMount, type Mount } from '../runtime/spec.js';
import type { Engine } from '../engine/engine.js';
import type { Image, ImageConfig, HistoryEntry } from '../image/types.js';
import { loadDockerfile } from './frontend.js';
import { formatDiagnostic, type Diagnostic } from './diagnostic.js';
import { expandInstruction } from './expand-instruction.js';
import { stagesFor, stageArgValue, type Stage, type StageGraph } from './stages.js';
import type { Instruction, CommandLine, CopyInstruction, AddInstruction, RunInstruction } from './instructions.js';
import { BuildContext, type ContextFile } from './context.js';
import { BuildCache, cacheKey, type BuildState } from './cache.js';
import { StepFs } from './layer-commit.js';
import { runStep } from './run-step.js';

/** Progress of a build, as events; the CLI renders them (plain, tty, json, quiet). */
export type BuildEvent =
  | { type: 'step'; id: number; name: string }
  | { type: 'cached'; id: number }
  | { type: 'miss'; id: number; reason: string }
  | { type: 'output'; id: number; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'done'; id: number; ms: number }
  | { type: 'warning'; message: string }
  | { type: 'image'; id: Digest; names: string[] };

export interface Secret {
  file?: string;
  env?: string;
}

export interface BuildOptions {
  contextDir: string;
  dockerfile: string;
  /** The Dockerfile's path relative to the context, for `<Dockerfile>.dockerignore`. */
  dockerfileRel?: string;
  tags?: string[];
  buildArgs?: Map<string, string>;
  target?: string;
  noCache?: boolean;
  labels?: Record<string, string>;
  secrets?: Map<string, Secret>;
  network?: 'none' | 'host';
  sourceDateEpoch?: number;
  onEvent?: (e: BuildEvent) => void;
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** A build step failed: the message names the instruction, its line, and (for RUN) the exit code and last output. */
export class BuildError extends BerthError {
  constructor(message: string) {
    super('invalid-argument', message);
  }
}

interface StageResult {
  state: BuildState;
  key: string;
  lowers: string[];
}

/** Runs one build from a Dockerfile and a context to a stored image. */
export class Builder {
  private readonly cache: BuildCache;
  private readonly context: BuildContext;
  private readonly results = new Map<number, Promise<StageResult>>();
  private stepSeq = 0;
  private readonly cleanups: (() => void)[] = [];

  constructor(private readonly engine: Engine, private readonly o: BuildOptions) {
    this.cache = new BuildCache(join(engine.paths.root, 'build-cache'));
    this.context = new BuildContext(o.contextDir, BuildContext.ignoreTextFor(o.contextDir, o.dockerfileRel));
  }

  private emit(e: BuildEvent): void {
    this.o.onEvent?.(e);
  }

  async build(): Promise<Image> {
    const buildArgs = this.o.buildArgs ?? new Map<string, string>();
    const fe = loadDockerfile(this.o.dockerfile, { buildArgs });
    for (const d of fe.diagnostics) if (d.severity === 'warning') this.emit({ type: 'warning', message: formatDiagnostic(d) });
    const err = fe.diagnostics.find((d: Diagnostic) => d.severity === 'error');
    if (err) throw new BuildError(formatDiagnostic(err));
    if (fe.unusedBuildArgs.length) this.emit({ type: 'warning', message: `One or more build-args [${fe.unusedBuildArgs.join(' ')}] were not consumed` });
    const plan = stagesFor(fe.graph, this.o.target);
    if (!plan.ok) throw new BuildError(formatDiagnostic(plan.diagnostic));
    const lease = this.engine.images.lease();
    try {
      for (const s of plan.plan.order) this.stageResult(fe.graph, s, lease);
      const final = await this.stageResult(fe.graph, plan.plan.target, lease);
      const config: ImageConfig = structuredClone(final.state.config);
      if (this.o.labels && Object.keys(this.o.labels).length) {
        config.config = { ...(config.config ?? {}), Labels: { ...(config.config?.Labels ?? {}), ...this.o.labels } };
      }
      const img = this.engine.images.addImage({ config, layers: final.state.layers, names: this.o.tags ?? [] });
      this.emit({ type: 'image', id: img.id, names: img.repoTags });
      return img;
    } finally {
      // Every stage must settle before the lease goes, so nothing is left mounted or half-written.
      await Promise.allSettled([...this.results.values()]);
      lease.release();
      for (const c of this.cleanups.reverse()) c();
    }
  }

  /** Each stage is built once; independent stages run concurrently. */
  private stageResult(graph: StageGraph, stage: Stage, lease: ReturnType<Engine['images']['lease']>): Promise<StageResult> {
    let p = this.results.get(stage.index);
    if (!p) {
      p = this.buildStage(graph, stage, lease);
      p.catch(() => undefined);
      this.results.set(stage.index, p);
    }
    return p;
  }

  private now(): string {
    return this.o.sourceDateEpoch !== undefined ? new Date(this.o.sourceDateEpoch * 1000).toISOString() : new Date().toISOString();
  }

  private async buildStage(graph: StageGraph, stage: Stage, lease: ReturnType<Engine['images']['lease']>): Promise<StageResult> {
    const total = stage.instructions.length + 1;
    const label = (i: number) => `[${stage.displayName} ${i}/${total}]`;
    const fromId = ++this.stepSeq;
    this.emit({ type: 'step', id: fromId, name: `${label(1)} FROM ${stage.baseName}` });
    const t0 = Date.now();
    let state: BuildState;
    let key: string;
    if (stage.base.kind === 'scratch') {
      state = { config: { architecture: 'amd64', os: 'linux', config: { Env: [DEFAULT_PATH] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] }, layers: [] };
      key = cacheKey(['scratch']);
    } else if (stage.base.kind === 'stage') {
      const dep = await this.stageResult(graph, graph.stages[stage.base.index]!, lease);
      state = structuredClone(dep.state);
      key = dep.key;
    } else {
      let img: Image;
      try {
        img = this.engine.images.resolve(stage.baseName);
      } catch (e) {
        if (e instanceof BerthError && e.kind === 'not-found') {
          throw new BuildError(`FROM ${stage.baseName} (line ${stage.from.line}): image not found locally (berth has no registry client yet: import or load it first)`);
        }
        throw e;
      }
      state = { config: structuredClone(img.config), layers: [...img.manifest.layers] };
      state.config.history ??= [];
      key = cacheKey(['image', img.id]);
    }
    this.emit({ type: 'done', id: fromId, ms: Date.now() - t0 });

    // Variables: ARG values declared in this stage, and the image's ENV (ENV wins over ARG of the same name).
    const args = new Map<string, string>();
    const escape = '\\';
    const instructions = [...stage.instructions];
    let index = 1;
    for (const raw of instructions) {
      index++;
      const vars = new Map<string, string>(args);
      for (const e of state.config.config?.Env ?? []) {
        const i = e.indexOf('=');
        vars.set(e.slice(0, i), e.slice(i + 1));
      }
      const ex = expandInstruction(raw, vars, escape);
      if (!ex.ok) throw new BuildError(formatDiagnostic(ex.diagnostic));
      const instr = ex.instruction;
      const text = instructionText(instr);
      const r = await this.step(graph, stage, instr, text, `${label(index)} ${text}`, state, key, args, lease);
      state = r.state;
      key = r.key;
    }
    const lowers = await this.engine.layers.ensure(this.asImage(state));
    return { state, key, lowers };
  }

  /** A throwaway Image view of a build state, for the layer store. */
  private asImage(state: BuildState): Image {
    return {
      id: 'sha256:' + '0'.repeat(64) as Digest, manifestDigest: 'sha256:' + '0'.repeat(64) as Digest,
      manifest: { schemaVersion: 2, config: { mediaType: '', digest: 'sha256:' + '0'.repeat(64) as Digest, size: 0 }, layers: state.layers },
      config: state.config, repoTags: [], repoDigests: [], size: 0,
    };
  }

  private async step(
    graph: StageGraph, stage: Stage, instr: Instruction, text: string, name: string, prev: BuildState, parentKey: string,
    args: Map<string, string>, lease: ReturnType<Engine['images']['lease']>,
  ): Promise<{ state: BuildState; key: string }> {
    const state: BuildState = { config: structuredClone(prev.config), layers: [...prev.layers] };
    const c = (state.config.config ??= {});
    const history = (state.config.history ??= []);
    const meta = (createdBy: string): { state: BuildState; key: string } => {
      // Metadata steps take the time of the step before them, so a fully cached build yields the same image.
      const created = history.at(-1)?.created ?? state.config.created ?? this.now();
      history.push({ created, created_by: createdBy, comment: 'buildkit.dockerfile.v0', empty_layer: true });
      state.config.created = created;
      return { state, key: cacheKey([parentKey, createdBy]) };
    };
    const shell = c.Shell ?? DEFAULT_SHELL;
    const cmdline = (cl: CommandLine) => (cl.form === 'exec' ? cl.args : [...shell, cl.command]);
    switch (instr.kind) {
      case 'ARG': {
        for (const d of instr.args) {
          const v = stageArgValue(d, graph, this.o.buildArgs);
          if (v.value !== undefined) args.set(d.name, v.value);
        }
        // ARG adds no history entry (BuildKit); its values reach RUN steps, whose keys include them.
        return { state: prev, key: parentKey };
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
        return meta(`CMD ${JSON.stringify(c.Cmd)}`);
      case 'ENTRYPOINT':
        c.Entrypoint = cmdline(instr.command);
        // An ENTRYPOINT resets a CMD inherited from the base image (Docker); a CMD earlier in this stage stays.
        if (!stage.instructions.slice(0, stage.instructions.indexOf(instr)).some((i) => i.kind === 'CMD')) c.Cmd = null;
        return meta(`ENTRYPOINT ${JSON.stringify(c.Entrypoint)}`);
      case 'EXPOSE':
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
        for (const p of instr.ports) c.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {};
        return meta(`EXPOSE map[${Object.keys(c.ExposedPorts).map((p) => `${p}:{}`).join(' ')}]`);
      case 'VOLUME':
        c.Volumes = { ...(c.Volumes ?? {}) };
        for (const p of instr.paths) c.Volumes[p] = {};
        return meta(`VOLUME ${JSON.stringify(instr.paths)}`);
      case 'USER':
        c.User = instr.user;
        return meta(`USER ${instr.user}`);
      case 'WORKDIR':
        c.WorkingDir = posix.resolve(c.WorkingDir || '/', instr.path);
        return meta(`WORKDIR ${c.WorkingDir}`);
      case 'STOPSIGNAL':
        c.StopSignal = instr.signal;
        return meta(`STOPSIGNAL ${instr.signal}`);
      case 'HEALTHCHECK':
        c.Healthcheck = {
          Test: instr.test,
          ...(instr.interval !== undefined ? { Interval: instr.interval } : {}),
          ...(instr.timeout !== undefined ? { Timeout: instr.timeout } : {}),
          ...(instr.startPeriod !== undefined ? { StartPeriod: instr.startPeriod } : {}),
          ...(instr.startInterval !== undefined ? { StartInterval: instr.startInterval } : {}),
          ...(instr.retries !== undefined ? { Retries: instr.retries } : {}),
        };
        return meta(`HEALTHCHECK ${JSON.stringify(instr.test)}`);
      case 'SHELL':
        c.Shell = instr.shell;
        return meta(`SHELL ${JSON.stringify(instr.shell)}`);
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), instr.expression];
        return meta(`ONBUILD ${instr.expression}`);
      case 'FROM':
        throw new BuildError(`unexpected FROM inside a stage (line ${instr.line})`);
      case 'RUN':
      case 'COPY':
      case 'ADD':
        return this.layerStep(graph, instr, text, name, state, parentKey, args, lease);
    }
  }

  /** RUN, COPY, ADD: steps that produce a layer, through the cache. */
  private async layerStep(
    graph: StageGraph, instr: RunInstruction | CopyInstruction | AddInstruction, text: string, name: string, state: BuildState,
    parentKey: string, args: Map<string, string>, lease: ReturnType<Engine['images']['lease']>,
  ): Promise<{ state: BuildState; key: string }> {
    const id = ++this.stepSeq;
    this.emit({ type: 'step', id, name });
    const t0 = Date.now();
    const c = state.config.config ?? {};
    const inputs = new Map<string, string>();
    let sources: ContextFile[] = [];
    let fromStage: StageResult | undefined;
    let keyParts: string[];
    if (instr.kind === 'RUN') {
      const argEnv = [...args].filter(([k]) => !(c.Env ?? []).some((e) => e.startsWith(`${k}=`))).map(([k, v]) => `${k}=${v}`).sort();
      keyParts = ['RUN', JSON.stringify(this.runArgs(instr, c.Shell ?? DEFAULT_SHELL)), JSON.stringify(argEnv), JSON.stringify(instr.mountSpecs),
        instr.network ?? this.o.network ?? 'none', c.User ?? '', c.WorkingDir ?? '', JSON.stringify(c.Env ?? [])];
    } else {
      const from = instr.kind === 'COPY' ? instr.from : undefined;
      if (from !== undefined) {
        fromStage = await this.fromSource(graph, from, lease);
        inputs.set(`--from=${from}`, fromStage.key);
      } else if (instr.sources.length) {
        sources = this.context.resolve(instr.sources.filter((s) => !/^https?:\/\//.test(s)));
        for (const [k, v] of this.context.inputs(sources)) inputs.set(k, v);
      }
      for (const h of instr.inline) inputs.set(`<<${h.name}`, cacheKey([h.content]));
      keyParts = [instr.kind, JSON.stringify(instr.sources), instr.dest, instr.chown ?? '', instr.chmod ?? '', JSON.stringify(instr.excludes),
        c.WorkingDir ?? '', JSON.stringify([...inputs].sort())];
    }
    const key = cacheKey([parentKey, ...keyParts]);
    // What the step is "about" (not its inputs): the index that explains misses.
    const about = cacheKey([this.context.root, this.o.dockerfileRel ?? '', text, String(instr.line)]);
    const createdBy = `${text} # buildkit`;
    const hit = this.o.noCache ? undefined : this.cache.get(key);
    if (hit && hit.state.layers.every((l) => this.engine.images.hasBlob(l.digest))) {
      this.emit({ type: 'cached', id });
      this.emit({ type: 'done', id, ms: Date.now() - t0 });
      return { state: hit.state, key };
    }
    const prevRecord = this.stepRecordParent(about);
    const reason = this.o.noCache ? 'disabled by --no-cache'
      : this.cache.explainMiss(about, inputs, prevRecord !== undefined && prevRecord !== parentKey);
    this.emit({ type: 'miss', id, reason });

    const lowers = await this.engine.layers.ensure(this.asImage(state));
    const fs = new StepFs(this.engine, lowers);
    this.cleanups.push(() => fs.dispose());
    try {
      const rootfs = fs.mount();
      if (instr.kind === 'RUN') await this.run(instr, rootfs, fs.upper, c, args, id);
      else await this.copy(instr, rootfs, sources, fromStage, c);
      const { layer, diffId } = await fs.commit(lease, this.o.sourceDateEpoch);
      const next: BuildState = { config: structuredClone(state.config), layers: [...state.layers, layer] };
      next.config.rootfs = { type: 'layers', diff_ids: [...next.config.rootfs.diff_ids, diffId] };
      const created = this.now();
      next.config.created = created;
      (next.config.history ??= []).push({ created, created_by: createdBy, comment: 'buildkit.dockerfile.v0' } satisfies HistoryEntry);
      this.cache.put({ key, state: next, layer: { digest: layer.digest, diffId }, created: new Date().toISOString() }, about, inputs, parentKey);
      this.emit({ type: 'done', id, ms: Date.now() - t0 });
      return { state: next, key };
    } finally {
      fs.dispose();
    }
  }

  private stepRecordParent(about: string): string | undefined {
    return this.cache.parentOf(about);
  }

  /** The stage or image a `COPY --from` / `RUN --mount=from=` reads. */
  private async fromSource(graph: StageGraph, from: string, lease: ReturnType<Engine['images']['lease']>): Promise<StageResult> {
    const byName = graph.stages.find((s) => s.name === from.toLowerCase()) ?? (/^\d+$/.test(from) ? graph.stages[Number(from)] : undefined);
    if (byName) return this.stageResult(graph, byName, lease);
    let img: Image;
    try {
      img = this.engine.images.resolve(from);
    } catch {
      throw new BuildError(`COPY --from=${from}: no stage or local image of that name`);
    }
    const state: BuildState = { config: img.config, layers: img.manifest.layers };
    return { state, key: cacheKey(['image', img.id]), lowers: await this.engine.layers.ensure(img) };
  }

  private runArgs(instr: RunInstruction, shell: string[]): string[] {
    if (instr.command.form === 'exec') return instr.command.args;
    let script = instr.command.command;
    if (instr.heredocs.length) {
      // A heredoc that is the whole command is the script; otherwise the shell reads the heredocs itself.
      const only = /^<<-?["']?(\w+)["']?\s*$/.exec(script.trim());
      if (only && instr.heredocs.length === 1) script = instr.heredocs[0]!.content;
      else script = `${script}\n${instr.heredocs.map((h) => `${h.content}${h.content.endsWith('\n') ? '' : '\n'}${h.name}`).join('\n')}`;
    }
    return [...shell, script];
  }

  private async run(instr: RunInstruction, rootfs: string, upper: string, c: NonNullable<ImageConfig['config']>, args: Map<string, string>, id: number): Promise<void> {
    const env = [...(c.Env ?? [])];
    for (const [k, v] of args) if (!env.some((e) => e.startsWith(`${k}=`))) env.push(`${k}=${v}`);
    const mounts: Mount[] = [];
    const stubs: string[] = [];
    const noteStub = (target: string) => {
      // A mount point the runtime creates would land in the layer: remember the first missing path to remove it.
      let p = posix.normalize(target);
      let top: string | undefined;
      while (p !== '/' && !existsSync(resolveInRoot(rootfs, p, false))) {
        top = p;
        p = posix.dirname(p);
      }
      if (top) stubs.push(top);
    };
    for (const m of instr.mounts) {
      const target = m.target ?? (m.type === 'secret' && m.id ? `/run/secrets/${m.id}` : undefined);
      if (m.type === 'secret') {
        const sid = m.id ?? (m.target ? posix.basename(m.target) : '');
        const secret = this.o.secrets?.get(sid);
        let value: Buffer | undefined;
        if (secret?.file) value = readFileSync(secret.file);
        else if (secret?.env !== undefined) value = Buffer.from(process.env[secret.env] ?? '');
        if (value === undefined) {
          if (m.required) throw new BuildError(`RUN (line ${instr.line}): secret "${sid}" is required but was not given (use --secret id=${sid},src=FILE)`);
          continue;
        }
        if (m.env) env.push(`${m.env}=${value.toString()}`);
        if (target || !m.env) {
          // On a tmpfs of the host (/dev/shm), bind-mounted read-only: never on disk, never in a layer.
          const dir = join('/dev/shm', `berth-secret-${randomBytes(8).toString('hex')}`);
          mkdirSync(dir, { mode: 0o700 });
          this.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
          const file = join(dir, 'secret');
          writeFileSync(file, value, { mode: m.mode ?? 0o400 });
          lchownSync(file, m.uid ?? 0, m.gid ?? 0);
          const dst = target ?? `/run/secrets/${sid}`;
          noteStub(dst);
          mounts.push(bindMount(file, dst, { readonly: true }));
        }
      } else if (m.type === 'cache') {
        const cid = cacheKey([m.id ?? target ?? '']);
        const dir = join(this.engine.paths.root, 'build-cache', 'mounts', cid);
        if (!existsSync(dir)) {
          mkdirSync(dir, { recursive: true, mode: m.mode ?? 0o755 });
          lchownSync(dir, m.uid ?? 0, m.gid ?? 0);
        }
        noteStub(target!);
        mounts.push(bindMount(dir, target!, { readonly: m.readonly }));
      } else if (m.type === 'tmpfs') {
        noteStub(target!);
        mounts.push(tmpfsMount(target!, m.size ? [`size=${m.size}`] : []));
      } else if (m.type === 'bind') {
        let src: string;
        if (m.from) {
          const s = await this.fromSource(undefined as unknown as StageGraph, m.from, undefined as never).catch(() => undefined);
          if (!s) throw new BuildError(`RUN --mount=from=${m.from}: not supported for this source`);
          const mnt = join(this.engine.paths.tmp, `bind-${randomBytes(6).toString('hex')}`);
          mkdirSync(mnt, { recursive: true });
          mountOverlay(s.lowers.length ? s.lowers : [this.engine.layers.emptyDir()], undefined, undefined, mnt);
          this.cleanups.push(() => { unmount(mnt); rmSync(mnt, { recursive: true, force: true }); });
          src = resolveInRoot(mnt, m.source ?? '/');
        } else {
          const [f] = this.context.resolve([m.source ?? '.']);
          src = f!.abs;
        }
        noteStub(target!);
        mounts.push(bindMount(src, target!, { readonly: m.readonly }));
      }
    }
    const tail: string[] = [];
    const code = await runStep(this.engine, rootfs, {
      args: this.runArgs(instr, c.Shell ?? DEFAULT_SHELL),
      env,
      cwd: c.WorkingDir || '/',
      user: c.User ?? '',
      network: instr.network === 'host' ? 'host' : instr.network === 'none' ? 'none' : this.o.network ?? 'none',
      mounts,
      onOutput: (stream, data) => {
        const text = data.toString();
        tail.push(...text.split('\n').filter(Boolean));
        if (tail.length > 10) tail.splice(0, tail.length - 10);
        this.emit({ type: 'output', id, stream, text });
      },
    });
    for (const s of stubs) rmSync(join(upper, s), { recursive: true, force: true });
    if (code !== 0) {
      const last = tail.length ? `:\n${tail.map((l) => `  ${l}`).join('\n')}` : '';
      throw new BuildError(`RUN ${instr.command.form === 'shell' ? instr.command.command : JSON.stringify(instr.command.args)} (line ${instr.line}) did not complete successfully: exit code ${code}${last}`);
    }
  }

  private async copy(instr: CopyInstruction | AddInstruction, rootfs: string, sources: ContextFile[], from: StageResult | undefined, c: NonNullable<ImageConfig['config']>): Promise<void> {
    const destRaw = posix.resolve(c.WorkingDir || '/', instr.dest);
    const owner = instr.chown ? resolveUser(rootfs, instr.chown) : { uid: 0, gid: 0 };
    const chmod = instr.chmod ? parseInt(instr.chmod, 8) : undefined;
    if (instr.chmod && (Number.isNaN(chmod) || !/^[0-7]{3,4}$/.test(instr.chmod))) throw new BuildError(`${instr.kind} --chmod=${instr.chmod} (line ${instr.line}): invalid mode, expected octal`);
    const many = sources.length + instr.inline.length > 1 || instr.sources.some((s) => /[*?[]/.test(s));
    const destIsDir = destNamesDir(instr.dest) || many;
    const opts: CopyOpts = { uid: owner.uid, gid: owner.gid, ...(chmod !== undefined ? { chmod } : {}), rootfs };

    for (const h of instr.inline) {
      const dst = destIsDir || isDirIn(rootfs, destRaw) ? posix.join(destRaw, h.name) : destRaw;
      const host = prepareDest(rootfs, dst);
      writeFileSync(host, h.content, { mode: 0o644 });
      finishEntry(host, opts, 0o644);
    }

    if (from) {
      const mnt = join(this.engine.paths.tmp, `from-${randomBytes(6).toString('hex')}`);
      mkdirSync(mnt, { recursive: true });
      mountOverlay(from.lowers.length ? from.lowers : [this.engine.layers.emptyDir()], undefined, undefined, mnt);
      try {
        const srcs = instr.sources.map((s) => {
          const p = resolveInRoot(mnt, s, false);
          if (!existsSync(p) && !isLink(p)) throw new BuildError(`${instr.kind} --from (line ${instr.line}): "${s}" not found in the source stage`);
          return p;
        });
        const manyFrom = srcs.length > 1;
        for (const p of srcs) copyTree(p, lstatSync(p), destRaw, manyFrom || destNamesDir(instr.dest), opts);
      } finally {
        unmount(mnt);
        rmSync(mnt, { recursive: true, force: true });
      }
      return;
    }

    for (const s of sources) {
      if (instr.kind === 'ADD' && s.stat.isFile() && instr.unpack !== false && isArchive(s.abs)) {
        const dir = prepareDir(rootfs, destRaw);
        await applyLayer(createReadStream(s.abs), dir, { plain: true });
        continue;
      }
      if (s.stat.isDirectory()) {
        // A directory's contents are copied, not the directory itself (Docker).
        const dir = prepareDir(rootfs, destRaw);
        if (chmod === undefined) chmodSync(dir, lstatSync(dir).mode & 0o7777);
        for (const f of this.context.tree(s.rel)) {
          const rel = s.rel === '.' ? f.rel : f.rel.slice(s.rel.length + 1);
          copyOne(f.abs, f.stat, posix.join(destRaw, rel), opts);
        }
      } else {
        const dst = destIsDir || isDirIn(rootfs, destRaw) ? posix.join(destRaw, posix.basename(s.rel)) : destRaw;
        copyOne(s.abs, s.stat, dst, opts);
      }
    }
    for (const u of instr.sources.filter((x) => /^https?:\/\//.test(x))) {
      const res = await fetch(u);
      if (!res.ok) throw new BuildError(`ADD ${u} (line ${instr.line}): HTTP ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      if (instr.kind === 'ADD' && instr.checksum) {
        const got = `sha256:${createHash('sha256').update(body).digest('hex')}`;
        if (got !== instr.checksum) throw new BuildError(`ADD ${u} (line ${instr.line}): checksum mismatch: expected ${instr.checksum}, got ${got}`);
      }
      const name = posix.basename(new URL(u).pathname) || 'index.html';
      const dst = destIsDir || isDirIn(rootfs, destRaw) ? posix.join(destRaw, name) : destRaw;
      const host = prepareDest(rootfs, dst);
      writeFileSync(host, body, { mode: 0o600 });
      finishEntry(host, opts, 0o600);
    }
  }
}

/** A COPY/ADD destination that is a directory by its spelling: a trailing slash, or "." (BuildKit's NormalizePath). */
function destNamesDir(dest: string): boolean {
  return dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
}

interface CopyOpts {
  uid: number;
  gid: number;
  chmod?: number;
  rootfs: string;
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function isDirIn(rootfs: string, ctrPath: string): boolean {
  try {
    return lstatSync(resolveInRoot(rootfs, ctrPath)).isDirectory();
  } catch {
    return false;
  }
}

function isArchive(file: string): boolean {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(512);
  const n = readSync(fd, b, 0, 512, 0);
  closeSync(fd);
  if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true;
  return n >= 262 && b.subarray(257, 262).toString() === 'ustar';
}

/** Creates the missing parents of a path inside the root (0755, root-owned) and returns its host path. */
function prepareDest(rootfs: string, ctrPath: string): string {
  const parent = resolveInRoot(rootfs, posix.dirname(ctrPath));
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  const host = join(parent, posix.basename(ctrPath));
  if (isLink(host) || (existsSync(host) && !lstatSync(host).isDirectory())) rmSync(host, { force: true });
  return host;
}

function prepareDir(rootfs: string, ctrPath: string): string {
  const host = resolveInRoot(rootfs, ctrPath);
  mkdirSync(host, { recursive: true, mode: 0o755 });
  return host;
}

function finishEntry(host: string, o: CopyOpts, mode: number, st?: Stats): void {
  lchownSync(host, o.uid, o.gid);
  if (!st?.isSymbolicLink()) chmodSync(host, o.chmod ?? mode);
  if (st) {
    if (st.isSymbolicLink()) lutimesSync(host, st.atime, st.mtime);
    else utimesSync(host, st.atime, st.mtime);
  }
}

/** Copies one entry (file, dir, symlink) to a path in the container root; symlinks are copied as links. */
function copyOne(src: string, st: Stats, ctrPath: string, o: CopyOpts): void {
  if (st.isDirectory()) {
    const host = prepareDir(o.rootfs, ctrPath);
    finishEntry(host, o, st.mode & 0o7777, st);
    return;
  }
  const host = prepareDest(o.rootfs, ctrPath);
  if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), host);
  else if (st.isFile()) copyFileSync(src, host);
  else throw notFound(`cannot copy special file ${src}`);
  finishEntry(host, o, st.mode & 0o7777, st);
}

/** COPY --from: a file to dest (or into it), a directory's contents into dest. */
function copyTree(src: string, st: Stats, destRaw: string, destIsDir: boolean, o: CopyOpts): void {
  if (!st.isDirectory()) {
    const dst = destIsDir || isDirIn(o.rootfs, destRaw) ? posix.join(destRaw, posix.basename(src)) : destRaw;
    copyOne(src, st, dst, o);
    return;
  }
  prepareDir(o.rootfs, destRaw);
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSorted(dir)) {
      const p = join(dir, name);
      const s = lstatSync(p);
      copyOne(p, s, posix.join(destRaw, rel, name), o);
      if (s.isDirectory()) walk(p, posix.join(rel, name));
    }
  };
  walk(src, '');
}

function readdirSorted(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** The history text of an instruction, after expansion (what `history` shows, BuildKit-style). */
export function instructionText(i: Instruction): string {
  const raw = i.raw;
  const flags = raw.flags.map((f) => (f.value === undefined ? `--${f.name}` : `--${f.name}=${f.value}`));
  return [i.kind, ...flags, raw.rawArgs].join(' ').trim().replace(/\s+/g, ' ');
}

export function invalidBuild(msg: string): BerthError {
  return invalidArgument(msg);
}

export { hex };
