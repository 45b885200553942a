import type { Command, CliContext } from '../context.js';
import { flag } from '../context.js';
import { renderTemplate } from '../template.js';
import { errorMessage } from '../exit.js';
import { imageInspect } from './image-inspect.js';
import { notFound } from '../../base/errors.js';
import type { Engine } from '../../engine/engine.js';
import type { ContainerRecord } from '../../engine/container.js';

/** Prints objects like `docker inspect`: a JSON array, or each object through --format. */
export function printInspect(ctx: CliContext, objects: unknown[], format: string | undefined): void {
  if (format) {
    for (const o of objects) ctx.stdout.write(renderTemplate(format, o) + '\n');
  } else {
    ctx.stdout.write(JSON.stringify(objects, null, 4) + '\n');
  }
}

/** Resolves each name with `find`, printing what was found and an error line per miss; exit 1 if any missed. */
export function inspectEach(ctx: CliContext, refs: string[], format: string | undefined, find: (ref: string) => unknown): number {
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const ref of refs) {
    try {
      found.push(find(ref));
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  if (found.length > 0 || !format) printInspect(ctx, found, format);
  for (const e of errors) ctx.stderr.write(`Error: ${e}\n`);
  return errors.length ? 1 : 0;
}

/** A container record with GraphDriver.Data.LowerDir filled in as Docker shows it: the image's layers, top first. */
function withLowerDirs(engine: Engine, rec: ContainerRecord): ContainerRecord {
  if (rec.GraphDriver.Data.LowerDir) return rec;
  const img = engine.images.find(rec.Image);
  if (!img) return rec;
  const lowers = img.config.rootfs.diff_ids.map((d) => engine.layers.diffDir(d)).reverse();
  return { ...rec, GraphDriver: { ...rec.GraphDriver, Data: { ...rec.GraphDriver.Data, LowerDir: lowers.join(':') } } };
}

const FORMAT = { name: 'format', short: 'f', type: 'string' as const, description: 'Format output using a custom template' };

export const inspect: Command = {
  spec: {
    name: 'inspect', usage: 'berth inspect [OPTIONS] NAME|ID [NAME|ID...]', description: 'Return low-level information on berth objects', minArgs: 1,
    flags: [FORMAT, { name: 'type', type: 'string', description: 'Only inspect objects of the given type (container, image, volume)' },
      { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes if the type is container' }],
  },
  async run(ctx, p) {
    const engine = ctx.engine();
    const type = flag.str(p, 'type');
    return inspectEach(ctx, p.args, flag.str(p, 'format'), (ref) => {
      if (!type || type === 'container') {
        try {
          return withLowerDirs(engine, engine.containers.resolve(ref));
        } catch (e) {
          if (type) throw e;
        }
      }
      if (!type || type === 'image') {
        try {
          return imageInspect(engine, engine.images.resolve(ref));
        } catch (e) {
          if (type) throw e;
        }
      }
      if (!type || type === 'volume') {
        try {
          return engine.volumes.get(ref);
        } catch (e) {
          if (type) throw e;
        }
      }
      throw notFound(`No such object: ${ref}`);
    });
  },
};

export const containerInspect: Command = {
  spec: { name: 'container inspect', usage: 'berth container inspect [OPTIONS] CONTAINER [CONTAINER...]', description: 'Display detailed information on one or more containers', minArgs: 1, flags: [FORMAT, { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' }] },
  async run(ctx, p) {
    return inspectEach(ctx, p.args, flag.str(p, 'format'), (ref) => withLowerDirs(ctx.engine(), ctx.engine().containers.resolve(ref)));
  },
};
