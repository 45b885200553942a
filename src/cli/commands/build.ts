import { readFileSync, writeFileSync, mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import type { Command, CliContext } from '../context.js';
import { flag } from '../context.js';
import { invalidArgument } from '../../base/errors.js';
import { Builder, type BuildEvent, type Secret } from '../../build/builder.js';
import { applyLayer } from '../../storage/apply.js';
import { lintBuildArgs } from '../../build/lint.js';
import { formatDiagnostic } from '../../build/diagnostic.js';

/** Renders build events: plain (BuildKit's "#N" lines), quiet, or json (one event per line). */
export function renderer(ctx: CliContext, mode: string): (e: BuildEvent) => void {
  const out = ctx.stderr;
  if (mode === 'quiet') return () => undefined;
  if (mode === 'json') return (e) => out.write(JSON.stringify(e) + '\n');
  const partial = new Map<number, string>();
  return (e) => {
    switch (e.type) {
      case 'step': out.write(`#${e.id} ${e.name}\n`); break;
      case 'cached': out.write(`#${e.id} CACHED\n`); break;
      case 'miss': out.write(`#${e.id} cache miss: ${e.reason}\n`); break;
      case 'output': {
        const text = (partial.get(e.id) ?? '') + e.text;
        const lines = text.split('\n');
        partial.set(e.id, lines.pop() ?? '');
        for (const l of lines) out.write(`#${e.id} ${l}\n`);
        break;
      }
      case 'done': {
        const rest = partial.get(e.id);
        if (rest) out.write(`#${e.id} ${rest}\n`);
        partial.delete(e.id);
        out.write(`#${e.id} DONE ${(e.ms / 1000).toFixed(1)}s\n`);
        break;
      }
      case 'warning': out.write(`WARNING: ${e.message}\n`); break;
      case 'image':
        out.write(`#0 writing image ${e.id}\n`);
        for (const n of e.names) out.write(`#0 naming to ${n}\n`);
        break;
    }
  };
}

function parseSecret(spec: string): [string, Secret] {
  const kv = new Map(spec.split(',').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? [p, ''] as [string, string] : [p.slice(0, i), p.slice(i + 1)] as [string, string];
  }));
  const id = kv.get('id');
  if (!id) throw invalidArgument(`invalid secret "${spec}": id= is required`);
  const src = kv.get('src') ?? kv.get('source');
  const env = kv.get('env');
  if (src) {
    if (!existsSync(src)) throw invalidArgument(`secret ${id}: file ${src} does not exist`);
    return [id, { file: resolve(src) }];
  }
  return [id, { env: env ?? id }];
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

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
    try {
      if (arg === '-') {
        const data = await readAll(ctx.stdin);
        tmp = mkdtempSync(join(tmpdir(), 'berth-context-'));
        if (data.length >= 262 && (data.subarray(257, 262).toString() === 'ustar' || (data[0] === 0x1f && data[1] === 0x8b))) {
          await applyLayer((async function* () { yield data; })(), tmp, { plain: true });
          contextDir = tmp;
        } else {
          // A Dockerfile on stdin with no context (`docker build - < Dockerfile`).
          writeFileSync(join(tmp, 'Dockerfile'), data);
          contextDir = tmp;
        }
      } else {
        if (!existsSync(arg) || !statSync(arg).isDirectory()) throw invalidArgument(`unable to prepare context: path "${arg}" not found`);
        contextDir = resolve(arg);
      }
      if (fileFlag === '-') {
        if (arg === '-') throw invalidArgument('invalid argument: can\'t use stdin for both build context and dockerfile');
        dockerfile = (await readAll(ctx.stdin)).toString();
      } else {
        const path = fileFlag ? resolve(fileFlag) : join(contextDir, 'Dockerfile');
        if (!existsSync(path)) throw invalidArgument(`failed to read dockerfile: open ${fileFlag ?? 'Dockerfile'}: no such file or directory`);
        dockerfile = readFileSync(path, 'utf8');
        dockerfileRel = relative(contextDir, path);
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
      const progress = flag.bool(p, 'quiet') ? 'quiet' : (flag.str(p, 'progress') ?? 'auto');
      if (!['auto', 'tty', 'plain', 'quiet', 'json', 'rawjson'].includes(progress)) throw invalidArgument(`invalid progress mode "${progress}"`);
      const render = renderer(ctx, progress === 'auto' || progress === 'tty' ? 'plain' : progress);
      for (const d of lintBuildArgs(buildArgs)) render({ type: 'warning', message: formatDiagnostic(d) });
      const network = flag.str(p, 'network');
      if (network && !['none', 'host', 'default'].includes(network)) throw invalidArgument(`network mode "${network}" not supported by berth build: use none or host`);
      const sde = process.env.SOURCE_DATE_EPOCH;
      const builder = new Builder(engine, {
        contextDir, dockerfile, ...(dockerfileRel !== undefined ? { dockerfileRel } : {}),
        tags: flag.strs(p, 'tag'), buildArgs, ...(flag.str(p, 'target') ? { target: flag.str(p, 'target')! } : {}),
        noCache: flag.bool(p, 'no-cache'), labels, secrets, network: network === 'host' ? 'host' : 'none',
        ...(sde && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
        onEvent: render,
      });
      const img = await builder.build();
      const iid = flag.str(p, 'iidfile');
      if (iid) writeFileSync(iid, img.id);
      if (progress === 'quiet') ctx.stdout.write(`${img.id}\n`);
      return 0;
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  },
};
