import { createHash } from 'node:crypto';
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { hashFileSync } from '../base/digest.js';
import { cleanSource, globIn, hasGlob } from './context.js';
import { walkDir } from './copy.js';
import type { IgnoreMatcher } from './dockerignore.js';
import { resolveInRoot } from '../storage/rootpath.js';

// What a step reads from another stage (COPY --from, RUN --mount=type=bind,from=) enters its cache key by content,
// as BuildKit's content checksums do: a source stage that ran again but produced the same files is still a hit.


/**
 * Past this many entries under one source, its digests fold into one input named `<path>/**` (a digest of them
 * all): a whole base image read by `RUN --mount=from=` stays one line of the step's record, not thousands.
 */
export const FOLD_LIMIT = 2000;

/** A source of a step that names no file in the stage: its message, for the step to report. */
export class SourceMissing extends Error {}

/** The input name of a stage path: `--from=<stage>:/<path>` (a stage name or index never holds ":/"). */
export function stageInputName(from: string, rel: string): string {
  return `--from=${from}:/${rel === '.' ? '' : rel}`;
}

/** A stage input's name split back into the stage and the path, or undefined for other inputs. */
export function parseStageInputName(name: string): { from: string; path: string } | undefined {
  if (!name.startsWith('--from=')) return undefined;
  const i = name.indexOf(':/');
  return i < 0 ? undefined : { from: name.slice(7, i), path: name.slice(i + 1) };
}

/** One entry's digest: its type, permission bits and owner, and its content or link target. */
export function entryDigest(abs: string, st: Stats): string {
  const h = createHash('sha256');
  const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
  if (st.isSymbolicLink()) h.update(`link ${meta} ${readlinkSync(abs)}`);
  else if (st.isDirectory()) h.update(`dir ${meta}`);
  else if (st.isFile()) {
    h.update(`file ${meta}\0`);
    hashFileSync(h, abs);
  } else h.update(`other ${meta} ${st.rdev}`);
  return h.digest('hex');
}

/**
 * The inputs a step reads below `root` (a mounted stage): every entry each source names (wildcards expanded, whole
 * trees below directories), as stageInputName -> entryDigest. `ex` leaves out what COPY --exclude leaves out.
 * Throws SourceMissing when a source names nothing (COPY's errors); `optional` sources that name nothing are
 * recorded as missing instead (a RUN mount's source, which the runtime reports).
 */
export function stageInputs(root: string, from: string, sources: readonly string[], o: { ex?: IgnoreMatcher; optional?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of sources) {
    const rel = cleanSource(raw);
    const names = hasGlob(rel) ? globIn(root, rel) : [rel];
    if (names.length === 0) {
      if (o.optional) out.set(stageInputName(from, rel), 'missing');
      else throw new SourceMissing(`no source files match "${raw}"`);
    }
    for (const name of names) {
      const abs = name === '.' ? root : resolveInRoot(root, name);
      let st: Stats;
      try {
        st = lstatSync(abs);
      } catch {
        if (o.optional) {
          out.set(stageInputName(from, name), 'missing');
          continue;
        }
        throw new SourceMissing(`"${raw}" not found in the source`);
      }
      if (o.ex && !st.isDirectory() && o.ex.ignores(name)) continue;
      if (!st.isDirectory()) {
        out.set(stageInputName(from, name), entryDigest(abs, st));
        continue;
      }
      const tree = new Map<string, string>([[stageInputName(from, name), entryDigest(abs, st)]]);
      for (const e of walkDir(abs)) {
        if (o.ex?.ignores(e.rel)) continue;
        tree.set(stageInputName(from, name === '.' ? e.rel : `${name}/${e.rel}`), entryDigest(e.abs, e.stat));
      }
      if (tree.size <= FOLD_LIMIT) {
        for (const [k, v] of tree) out.set(k, v);
        continue;
      }
      const h = createHash('sha256');
      for (const [k, v] of [...tree].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) h.update(`${k}\0${v}\n`);
      out.set(`${stageInputName(from, name).replace(/\/$/, '')}/**`, h.digest('hex'));
    }
  }
  return out;
}
