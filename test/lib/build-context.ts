import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One file of a build context: its content, a symlink to `link`, or content with a mode. */
export type FileSpec = string | Buffer | { link: string } | { data: string | Buffer; mode: number };

/**
 * Writes a build context into directory `dir` (created, with its parents): each entry of `files` is a path relative
 * to it (parent directories made as needed) and what it holds; a Dockerfile among them, usually. Returns `dir`.
 */
export function writeBuildContext(dir: string, files: Record<string, FileSpec>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, spec] of Object.entries(files)) {
    const p = join(dir, name);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof spec === 'string' || Buffer.isBuffer(spec)) writeFileSync(p, spec);
    else if ('link' in spec) symlinkSync(spec.link, p);
    else {
      writeFileSync(p, spec.data);
      chmodSync(p, spec.mode);
    }
  }
  return dir;
}
