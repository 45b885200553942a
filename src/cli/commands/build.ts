import { readFileSync, writeFileSync, mkdirSync, mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { tmpdir } from 'node:os';
import type { Command, CliContext } from '../context.js';
import { flag } from '../context.js';
import { invalidArgument } from '../../base/errors.js';
import { Builder, BuildError, type BuildEvent, type Secret } from '../../build/builder.js';
import { archiveKind, extractArchive } from '../../build/add-archive.js';
import { parseReference } from '../../image/reference.js';
import { UsageError, errorMessage } from '../exit.js';
import { TtyProgress, progressMode } from '../progress-tty.js';

/** Renders build events: plain (BuildKit's "#N" lines), quiet, or json (one event per line). */
export function renderer(ctx: CliContext, mode: string): (e: BuildEvent) => void {
  const out = ctx.stderr;
  if (mode === 'quiet') return () => undefined;
  if (mode === 'json' || mode === 'rawjson') return (e) => out.write(JSON.stringify(e) + '\n');
  // Unfinished lines, per step and stream: stdout and stderr of one step interleave only at line boundaries.
  const partial = new Map<string, string>();
  const flush = (id: number) => {
    for (const stream of ['stdout', 'stderr']) {
      const rest = partial.get(`${id}:${stream}`);
      if (rest) out.write(`#${id} ${rest}\n`);
      partial.delete(`${id}:${stream}`);
    }
  };
  return (e) => {
    switch (e.type) {
      case 'step': out.write(`#${e.id} ${e.name}\n`); break;
      case 'cached': out.write(`#${e.id} CACHED\n`); break;
      // The instruction and why it ran, on one line: "#5 COPY . .: cache miss: 1 file changed: src/app.js".
      case 'miss': out.write(`#${e.id} ${e.text}: cache miss: ${e.reason}\n`); break;
      case 'output': {
        const key = `${e.id}:${e.stream}`;
        const text = (partial.get(key) ?? '') + e.text;
        const lines = text.split('\n');
        partial.set(key, lines.pop() ?? '');
        for (const l of lines) out.write(`#${e.id} ${l}\n`);
        break;
      }
      case 'done':
        flush(e.id);
        out.write(`#${e.id} DONE ${(e.ms / 1000).toFixed(1)}s\n`);
        break;
      case 'error':
        flush(e.id);
        out.write(`#${e.id} ERROR: ${e.message.split('\n')[0]}\n`);
        break;
      case 'warning': out.write(`WARNING: ${e.message}\n`); break;
      case 'image':
        out.write(`#0 writing image ${e.id}\n`);
        for (const n of e.names) out.write(`#0 naming to ${n}\n`);
        break;
    }
  };
}

/** `--secret id=ID[,src=FILE|,env=VAR]` (also type=file|env, source=); neither src nor env: the variable named ID. */
function parseSecret(spec: string): [string, Secret] {
  const kv = new Map(spec.split(',').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? [p, ''] as [string, string] : [p.slice(0, i), p.slice(i + 1)] as [string, string];
  }));
  const id = kv.get('id');
  if (!id) throw invalidArgument(`invalid secret "${spec}": id= is required`);
  const src = kv.get('src') ?? kv.get('source');
  const env = kv.get('env');
  if (kv.get('type') === 'env' || (env && !src)) return [id, { env: env ?? src ?? id }];
  if (src) {
    if (!existsSync(src)) throw invalidArgument(`failed to read secret ${id}: open ${src}: no such file or directory`);
    return [id, { file: resolve(src) }];
  }
  return [id, { env: id }];
}

/** The entitlements `--allow` takes (BuildKit's names). */
const ENTITLEMENTS = ['network.host', 'security.insecure'];

/**
 * `--ssh default|ID[=SOCKET]`: an ssh-agent socket by id (without one, $SSH_AUTH_SOCK). BuildKit also takes key
 * files (it runs an agent of its own for them); berth forwards agent sockets only, and says so.
 */
function parseSsh(spec: string): [string, string] {
  const i = spec.indexOf('=');
  const id = i < 0 ? spec : spec.slice(0, i);
  if (!id) throw invalidArgument(`invalid ssh spec "${spec}": an id is required`);
  const paths = i < 0 ? [] : spec.slice(i + 1).split(',').filter(Boolean);
  if (paths.length === 0) {
    const sock = process.env.SSH_AUTH_SOCK;
    if (!sock) throw invalidArgument('invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set');
    paths.push(sock);
  }
  if (paths.length > 1) throw invalidArgument(`invalid ssh spec "${spec}": berth forwards one ssh-agent socket per id, not key files`);
  const path = resolve(paths[0]!);
  let st;
  try {
    st = statSync(path);
  } catch {
    throw invalidArgument(`invalid ssh spec "${spec}": ${path}: no such file or directory`);
  }
  if (!st.isSocket()) throw invalidArgument(`invalid ssh spec "${spec}": ${path} is no ssh-agent socket (key files are not supported: run ssh-agent and ssh-add them)`);
  return [id, path];
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

const EXIT_ON_SIGNAL: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export const build: Command = {
  spec: {
    name: 'build', usage: 'berth build [OPTIONS] PATH | -', description: 'Build an image from a Dockerfile', minArgs: 1, maxArgs: 1,
    flags: [
      { name: 'tag', short: 't', type: 'strings', description: 'Name and optionally a tag (format: "name:tag")' },
      { name: 'file', short: 'f', type: 'string', description: "Name of the Dockerfile (default: \"PATH/Dockerfile\")" },
      { name: 'build-arg', type: 'strings', description: 'Set build-time variables' },
      { name: 'target', type: 'string', description: 'Set the target build stage to build' },
      { name: 'no-cache', type: 'bool', description: 'Do not use cache when building the image' },
      { name: 'label', type: 'strings', description: 'Set metadata for an image' },
      { name: 'secret', type: 'strings', description: 'Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")' },
      { name: 'progress', type: 'string', description: 'Set type of progress output ("auto", "quiet", "plain", "tty", "json")', default: 'auto' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the build output and print image ID on success' },
      { name: 'iidfile', type: 'string', description: 'Write the image ID to the file' },
      { name: 'network', type: 'string', description: 'Set the networking mode for the RUN instructions during build ("none", "host")' },
      { name: 'allow', type: 'strings', description: 'Allow extra privileged entitlement (e.g., "network.host", "security.insecure")' },
      { name: 'ssh', type: 'strings', description: 'SSH agent socket to expose to the build (format: "default|<id>[=<socket>]")' },
    ],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    const arg = p.args[0]!;
    const fileFlag = flag.str(p, 'file');
    let contextDir: string;
    let tmp: string | undefined;
    let dockerfile: string;
    let dockerfileRel: string | undefined;
    let dockerfileName = 'Dockerfile';
    const controller = new AbortController();
    let caught: NodeJS.Signals | undefined;
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const sig of Object.keys(EXIT_ON_SIGNAL) as NodeJS.Signals[]) {
      const h = () => {
        // A second signal does not wait for the cleanup (the next build sweeps what is left).
        if (caught) process.exit(EXIT_ON_SIGNAL[sig]);
        caught = sig;
        controller.abort(sig);
      };
      handlers.set(sig, h);
      process.on(sig, h);
    }
    try {
      for (const t of flag.strs(p, 'tag')) {
        try {
          parseReference(t);
        } catch (e) {
          throw new UsageError(`invalid argument "${t}" for "-t, --tag" flag: ${errorMessage(e)}`);
        }
      }
      const progress = flag.bool(p, 'quiet') ? 'quiet' : (flag.str(p, 'progress') ?? 'auto');
      if (!['auto', 'tty', 'plain', 'quiet', 'json', 'rawjson'].includes(progress)) throw invalidArgument(`invalid progress mode "${progress}": use auto, tty, plain, quiet or json`);
      const network = flag.str(p, 'network');
      if (network && !['none', 'host', 'default'].includes(network)) throw invalidArgument(`network mode "${network}" not supported by berth build: use none or host`);
      if (arg === '-') {
        // The context is read once: a tar (plain, gzip, bzip2 or xz, as Docker takes) is unpacked to a temp dir;
        // anything else is a Dockerfile.
        const data = await readAll(ctx.stdin);
        tmp = mkdtempSync(join(tmpdir(), 'berth-context-'));
        contextDir = join(tmp, 'context');
        mkdirSync(contextDir);
        const file = join(tmp, 'stdin');
        writeFileSync(file, data);
        if (await archiveKind(file)) await extractArchive(file, contextDir);
        else writeFileSync(join(contextDir, 'Dockerfile'), data);
        rmSync(file);
      } else {
        if (!existsSync(arg) || !statSync(arg).isDirectory()) throw invalidArgument(`unable to prepare context: path "${arg}" not found`);
        contextDir = resolve(arg);
      }
      if (fileFlag === '-') {
        if (arg === '-') throw invalidArgument('invalid argument: can\'t use stdin for both build context and dockerfile');
        dockerfile = (await readAll(ctx.stdin)).toString();
      } else {
        // -f is relative to the working directory; with a tar context, to the context (docker build - -f x).
        const path = fileFlag ? (arg === '-' && !isAbsolute(fileFlag) ? join(contextDir, fileFlag) : resolve(fileFlag)) : join(contextDir, 'Dockerfile');
        if (!existsSync(path)) throw invalidArgument(`failed to read dockerfile: open ${fileFlag ?? 'Dockerfile'}: no such file or directory`);
        dockerfile = readFileSync(path, 'utf8');
        const rel = relative(contextDir, path);
        dockerfileRel = rel.startsWith('..') ? path : rel;
        dockerfileName = fileFlag ?? 'Dockerfile';
      }
      const buildArgs = new Map<string, string>();
      for (const a of flag.strs(p, 'build-arg')) {
        const i = a.indexOf('=');
        if (i < 0) {
          const v = process.env[a];
          if (v !== undefined) buildArgs.set(a, v);
        } else buildArgs.set(a.slice(0, i), a.slice(i + 1));
      }
      const labels: Record<string, string> = {};
      for (const l of flag.strs(p, 'label')) {
        const i = l.indexOf('=');
        labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
      }
      const secrets = new Map(flag.strs(p, 'secret').map(parseSecret));
      const allow = flag.strs(p, 'allow');
      for (const a of allow) if (!ENTITLEMENTS.includes(a)) throw invalidArgument(`invalid entitlement: ${a}`);
      const ssh = new Map(flag.strs(p, 'ssh').map(parseSsh));
      const mode = progressMode(progress, ctx.stderr.isTTY === true, process.env.TERM);
      const tty = mode === 'tty' ? new TtyProgress(ctx.stderr, { color: !process.env.NO_COLOR }) : undefined;
      const render = tty ? tty.onEvent : renderer(ctx, mode);
      const sde = process.env.SOURCE_DATE_EPOCH ?? buildArgs.get('SOURCE_DATE_EPOCH');
      const target = flag.str(p, 'target');
      const builder = new Builder(engine, {
        contextDir, dockerfile, dockerfileName, ...(dockerfileRel !== undefined ? { dockerfileRel } : {}),
        tags: flag.strs(p, 'tag'), buildArgs, ...(target ? { target } : {}),
        noCache: flag.bool(p, 'no-cache'), labels, secrets, network: network === 'host' ? 'host' : 'none', allow, ssh,
        ...(sde && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
        signal: controller.signal,
        onEvent: render,
      });
      let img;
      try {
        img = await builder.build();
        tty?.finish(true);
      } catch (e) {
        tty?.finish(false);
        if (!(e instanceof BuildError)) throw e;
        // The whole message: a failed RUN's last output lines follow its first line.
        ctx.stderr.write(`ERROR: ${e.message}\n`);
        return caught ? EXIT_ON_SIGNAL[caught]! : 1;
      }
      const iid = flag.str(p, 'iidfile');
      if (iid) writeFileSync(iid, img.id);
      if (progress === 'quiet') ctx.stdout.write(`${img.id}\n`);
      return 0;
    } finally {
      for (const [sig, h] of handlers) process.off(sig, h);
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  },
};
