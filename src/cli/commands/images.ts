import { writeStreamAtomically } from '../../base/fsutil.js';
import { createReadStream, statSync } from 'node:fs';
import type { Command } from '../context.js';
import { flag } from '../context.js';
import { formatRows } from '../template.js';
import { humanSize, agoText, humanDuration } from '../../base/units.js';
import { inspectEach } from './inspect.js';
import { imageInspect } from './image-inspect.js';
import { removeImage, pruneImages, importImage, loadImages } from '../../engine/images.js';
import { saveArchive } from '../../image/archive.js';
import { parseReference, familiarName } from '../../image/reference.js';
import { errnoCode, invalidArgument } from '../../base/errors.js';
import { errorMessage } from '../exit.js';
import type { Image } from '../../image/types.js';
import { confirmUnlessForced, deletedImageItems, pruneReport } from '../prune-report.js';
import { pruneFilterOf } from '../filter-flag.js';
import { PRUNE_FILTER_KEYS } from '../../engine/prune-filter.js';

const FORMAT = { name: 'format', short: 'f', type: 'string' as const, description: 'Format output using a custom template' };

function repoTag(t: string): { repo: string; tag: string } {
  const i = t.lastIndexOf(':');
  return i > 0 && !t.slice(i).includes('/') ? { repo: t.slice(0, i), tag: t.slice(i + 1) } : { repo: t, tag: '<none>' };
}

export const images: Command = {
  spec: {
    name: 'images', usage: 'berth images [OPTIONS] [REPOSITORY[:TAG]]', description: 'List images', maxArgs: 1,
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Show all images (default hides intermediate images)' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
      { name: 'digests', type: 'bool', description: 'Show digests' },
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
      { name: 'filter', short: 'f', type: 'strings', description: 'Filter output based on conditions provided' },
      { name: 'format', type: 'string', description: 'Format output using a custom template' },
    ],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    let list = engine.images.list();
    const want = p.args[0];
    // reference= filters names, not images: an image shows with the names that match (Docker)
    const references: string[] = [];
    const nameMatches = (n: string) => references.length === 0 || references.some((v) => matchGlob(v, n) || matchGlob(v, repoTag(n).repo));
    for (const f of flag.strs(p, 'filter')) {
      const [k, v = ''] = [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)];
      if (k === 'dangling') list = list.filter((i) => (i.repoTags.length === 0) === (v === 'true'));
      else if (k === 'reference') references.push(v);
      else if (k === 'label') list = list.filter((i) => { const l = i.config.config?.Labels ?? {}; return v.includes('=') ? l[v.split('=')[0]!] === v.slice(v.indexOf('=') + 1) : v in l; });
      else throw invalidArgument(`invalid filter '${k}'`);
    }
    const rows: Record<string, string>[] = [];
    const noTrunc = flag.bool(p, 'no-trunc');
    const seen = new Set<string>();
    for (const img of list.sort((a, b) => (b.config.created ?? '').localeCompare(a.config.created ?? ''))) {
      const id = noTrunc ? img.id : img.id.slice(7, 19);
      const matching = img.repoTags.filter(nameMatches);
      if (references.length && matching.length === 0) continue;
      const names = matching.length ? matching : ['<none>:<none>'];
      for (const n of names) {
        const { repo, tag } = n === '<none>:<none>' ? { repo: '<none>', tag: '<none>' } : repoTag(n);
        if (want) {
          const r = parseReference(want, { defaultTag: false });
          if (familiarName(r) !== repo || (r.tag && r.tag !== tag)) continue;
        }
        const digest = img.repoDigests.find((d) => d.startsWith(`${repo}@`))?.split('@')[1] ?? '<none>';
        rows.push({
          ID: id, Repository: repo, Tag: tag, Digest: digest,
          CreatedSince: img.config.created ? agoText(new Date(img.config.created), Date.now()) : 'N/A',
          CreatedAt: img.config.created ?? '', Size: humanSize(img.size), Containers: 'N/A', SharedSize: 'N/A', UniqueSize: 'N/A', VirtualSize: humanSize(img.size),
        });
        seen.add(img.id);
      }
    }
    if (flag.bool(p, 'quiet')) {
      const ids = [...new Set(rows.map((r) => r.ID!))];
      ctx.stdout.write(ids.map((i) => `${noTrunc ? i : i}\n`).join(''));
      return 0;
    }
    const def = flag.bool(p, 'digests')
      ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
      : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
    ctx.stdout.write(formatRows(flag.str(p, 'format'), rows, def, {
      ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE',
      Containers: 'CONTAINERS', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE', VirtualSize: 'SIZE',
    }));
    void humanDuration;
    return 0;
  },
};

function matchGlob(pattern: string, s: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.') + '$');
  return re.test(s);
}

export const imageInspectCmd: Command = {
  spec: { name: 'image inspect', usage: 'berth image inspect [OPTIONS] IMAGE [IMAGE...]', description: 'Display detailed information on one or more images', minArgs: 1, flags: [FORMAT] },
  async run(ctx, p) {
    return inspectEach(ctx, p.args, flag.str(p, 'format'), (r) => imageInspect(ctx.engine(), ctx.engine().images.resolve(r)));
  },
};

export const tag: Command = {
  spec: { name: 'tag', usage: 'berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', minArgs: 2, maxArgs: 2, flags: [] },
  async run(ctx, p) {
    ctx.engine().images.tag(p.args[0]!, p.args[1]!);
    return 0;
  },
};

export const rmi: Command = {
  spec: {
    name: 'rmi', usage: 'berth rmi [OPTIONS] IMAGE [IMAGE...]', description: 'Remove one or more images', minArgs: 1,
    flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Force removal of the image' }, { name: 'no-prune', type: 'bool', description: 'Do not delete untagged parents' }],
  },
  async run(ctx, p) {
    let failed = 0;
    for (const ref of p.args) {
      try {
        const r = removeImage(ctx.engine(), ref, flag.bool(p, 'force'));
        for (const u of r.untagged) ctx.stdout.write(`Untagged: ${u}\n`);
        for (const d of r.deleted) ctx.stdout.write(`Deleted: ${d}\n`);
      } catch (e) {
        failed++;
        ctx.stderr.write(`Error: ${errorMessage(e)}\n`);
      }
    }
    return failed ? 1 : 0;
  },
};

/** What `image prune --filter` takes. */
const IMAGE_PRUNE_KEYS = [...PRUNE_FILTER_KEYS, 'dangling'];

export const imagePrune: Command = {
  spec: {
    name: 'image prune', usage: 'berth image prune [OPTIONS]', description: 'Remove unused images', maxArgs: 0,
    flags: [{ name: 'all', short: 'a', type: 'bool', description: 'Remove all unused images, not just dangling ones' }, { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
      { name: 'filter', type: 'strings', description: 'Provide filter values (e.g. "until=<timestamp>")' }],
  },
  async run(ctx, p) {
    const all = flag.bool(p, 'all');
    // docker/cli adds dangling=<not --all> to the filters; the daemon refuses two values.
    const given = pruneFilterOf(p, IMAGE_PRUNE_KEYS).dangling;
    if (given !== undefined && given === all) throw invalidArgument(`invalid filter 'dangling=${String(!all)},${String(given)}'`);
    // docker/cli's questions (cli/command/image/prune.go).
    const warning = all ? 'WARNING! This will remove all images without at least one container associated to them.' : 'WARNING! This will remove all dangling images.';
    if (!(await confirmUnlessForced(ctx, p, `${warning}\nAre you sure you want to continue?`))) return 0;
    const r = pruneImages(ctx.engine(), all, pruneFilterOf(p, IMAGE_PRUNE_KEYS));
    ctx.stdout.write(pruneReport([['Deleted Images:', deletedImageItems(r)]], humanSize(r.freed)));
    return 0;
  },
};

export const history: Command = {
  spec: {
    name: 'history', usage: 'berth history [OPTIONS] IMAGE', description: 'Show the history of an image', minArgs: 1, maxArgs: 1,
    flags: [{ name: 'no-trunc', type: 'bool', description: "Don't truncate output" }, { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
      { name: 'human', short: 'H', type: 'bool', description: 'Print sizes and dates in human readable format', default: true }, { name: 'format', type: 'string', description: 'Format output using a custom template' }],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    const img = engine.images.resolve(p.args[0]!);
    const hist = img.config.history ?? [];
    const layers = [...img.manifest.layers];
    const noTrunc = flag.bool(p, 'no-trunc');
    const rows = hist.map((h) => {
      const layer = h.empty_layer ? undefined : layers.shift();
      return { h, size: layer ? layer.size : 0 };
    }).reverse().map(({ h, size }, i) => ({
      ID: i === 0 ? (noTrunc ? img.id : img.id.slice(7, 19)) : '<missing>',
      CreatedSince: h.created ? agoText(new Date(h.created), Date.now()) : 'N/A',
      CreatedAt: h.created ?? '',
      CreatedBy: noTrunc || (h.created_by ?? '').length <= 45 ? (h.created_by ?? '') : `${(h.created_by ?? '').slice(0, 44)}…`,
      Size: humanSize(size),
      Comment: h.comment ?? '',
    }));
    if (flag.bool(p, 'quiet')) {
      ctx.stdout.write(rows.map((r) => `${r.ID}\n`).join(''));
      return 0;
    }
    ctx.stdout.write(formatRows(flag.str(p, 'format'), rows, 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}',
      { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' }));
    return 0;
  },
};

export const importCmd: Command = {
  spec: {
    name: 'import', usage: 'berth import [OPTIONS] file|- [REPOSITORY[:TAG]]', description: 'Import the contents from a tarball to create a filesystem image', minArgs: 1, maxArgs: 2,
    flags: [{ name: 'change', short: 'c', type: 'strings', description: 'Apply Dockerfile instruction to the created image' }, { name: 'message', short: 'm', type: 'string', description: 'Set commit message for imported image' },
      { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' }],
  },
  async run(ctx, p) {
    const [file, name] = p.args;
    const input = file === '-' ? ctx.stdin : openInput(file!);
    const msg = flag.str(p, 'message');
    const img: Image = await importImage(ctx.engine(), input, {
      ...(name ? { name } : {}), changes: flag.strs(p, 'change'), ...(msg ? { message: msg } : {}),
    });
    ctx.stdout.write(`${img.id}\n`);
    return 0;
  },
};

/** A file to read, checked first so that a missing one is Docker's one-line error rather than a stream error. */
function openInput(file: string) {
  let dir = false;
  try {
    dir = statSync(file).isDirectory();
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw invalidArgument(`open ${file}: no such file or directory`);
    throw e;
  }
  if (dir) throw invalidArgument(`read ${file}: is a directory`);
  return createReadStream(file);
}

export const load: Command = {
  spec: {
    name: 'load', usage: 'berth load [OPTIONS]', description: 'Load an image from a tar archive or STDIN', maxArgs: 0,
    flags: [{ name: 'input', short: 'i', type: 'string', description: 'Read from tar archive file, instead of STDIN' }, { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the load output' }],
  },
  async run(ctx, p) {
    const file = flag.str(p, 'input');
    if (!file && ctx.stdin.isTTY) throw invalidArgument('requested load from stdin, but stdin is empty');
    const r = await loadImages(ctx.engine(), file ? openInput(file) : ctx.stdin);
    if (!flag.bool(p, 'quiet')) for (const l of r.loaded) ctx.stdout.write(`${l}\n`);
    return 0;
  },
};

export const save: Command = {
  spec: {
    name: 'save', usage: 'berth save [OPTIONS] IMAGE [IMAGE...]', description: 'Save one or more images to a tar archive (streamed to STDOUT by default)', minArgs: 1,
    flags: [{ name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' },
      { name: 'format', type: 'string', description: 'Archive format: "docker" (docker save/load compatible, default) or "oci" (OCI image layout)', default: 'docker' }],
  },
  async run(ctx, p) {
    const file = flag.str(p, 'output');
    const format = flag.str(p, 'format') ?? 'docker';
    if (format !== 'docker' && format !== 'oci') throw invalidArgument(`unknown archive format "${format}": use docker or oci`);
    if (!file && ctx.stdout.isTTY) throw invalidArgument('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    if (file) {
      await writeStreamAtomically(file, (out) => saveArchive(ctx.engine().images, p.args, out, format));
    } else {
      await saveArchive(ctx.engine().images, p.args, ctx.stdout, format);
    }
    return 0;
  },
};
