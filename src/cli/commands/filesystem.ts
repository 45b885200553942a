import { writeStreamAtomically } from '../../base/fsutil.js';
import type { Command } from '../context.js';
import { flag } from '../context.js';
import { invalidArgument } from '../../base/errors.js';
import {
  containerChanges, exportContainer, commitContainer, splitCpArg, copyFromContainer, copyToContainer, copyTarToContainer,
} from '../../engine/filesystem.js';

export const diff: Command = {
  spec: { name: 'diff', usage: 'berth diff CONTAINER', description: "Inspect changes to files or directories on a container's filesystem", minArgs: 1, maxArgs: 1, flags: [] },
  async run(ctx, p) {
    for (const c of await containerChanges(ctx.engine(), p.args[0]!)) ctx.stdout.write(`${c.kind} ${c.path}\n`);
    return 0;
  },
};

export const exportCmd: Command = {
  spec: { name: 'export', usage: 'berth export [OPTIONS] CONTAINER', description: "Export a container's filesystem as a tar archive", minArgs: 1, maxArgs: 1, flags: [{ name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' }] },
  async run(ctx, p) {
    const file = flag.str(p, 'output');
    if (!file) {
      if (ctx.stdout.isTTY) throw invalidArgument('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      await exportContainer(ctx.engine(), p.args[0]!, ctx.stdout);
      return 0;
    }
    await writeStreamAtomically(file, (out) => exportContainer(ctx.engine(), p.args[0]!, out));
    return 0;
  },
};

export const commit: Command = {
  spec: {
    name: 'commit', usage: "berth commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", description: "Create a new image from a container's changes", minArgs: 1, maxArgs: 2,
    flags: [
      { name: 'author', short: 'a', type: 'string', description: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
      { name: 'change', short: 'c', type: 'strings', description: 'Apply Dockerfile instruction to the created image' },
      { name: 'message', short: 'm', type: 'string', description: 'Commit message' },
      { name: 'pause', short: 'p', type: 'bool', description: 'Pause container during commit', default: true },
    ],
  },
  async run(ctx, p) {
    const author = flag.str(p, 'author');
    const message = flag.str(p, 'message');
    const img = await commitContainer(ctx.engine(), p.args[0]!, {
      ...(p.args[1] ? { name: p.args[1] } : {}), changes: flag.strs(p, 'change'), pause: p.flags.pause !== false,
      ...(author ? { author } : {}), ...(message ? { message } : {}),
    });
    ctx.stdout.write(`${img.id}\n`);
    return 0;
  },
};

export const cp: Command = {
  spec: {
    name: 'cp', usage: 'berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH', description: 'Copy files/folders between a container and the local filesystem', minArgs: 2, maxArgs: 2,
    flags: [{ name: 'archive', short: 'a', type: 'bool', description: 'Archive mode (copy all uid/gid information)' }, { name: 'follow-link', short: 'L', type: 'bool', description: 'Always follow symbol link in SRC_PATH' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress progress output during copy' }],
  },
  async run(ctx, p) {
    const src = splitCpArg(p.args[0]!);
    const dst = splitCpArg(p.args[1]!);
    if (src.container && dst.container) throw invalidArgument('copying between containers is not supported');
    if (!src.container && !dst.container) throw invalidArgument('must specify at least one container source');
    if (src.container) await copyFromContainer(ctx.engine(), src.container, src.path, dst.path, ctx.stdout, { followLink: flag.bool(p, 'follow-link') });
    else if (src.path === '-') await copyTarToContainer(ctx.engine(), dst.container!, dst.path, ctx.stdin);
    else await copyToContainer(ctx.engine(), dst.container!, src.path, dst.path);
    return 0;
  },
};
