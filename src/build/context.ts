import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, openSync, readSync, closeSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { invalidArgument, notFound } from '../base/errors.js';
import { createIgnoreMatcher, type IgnoreMatcher } from './dockerignore.js';

/** One path of the build context that a step reads, with the digest of its content. */
export interface ContextFile {
  /** Relative to the context root, "/"-separated. */
  rel: string;
  abs: string;
  stat: Stats;
}

const GLOB = /[*?[]/;

/** Go's filepath.Match for one pattern against a whole relative path (segments matched one by one). */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw invalidArgument(`syntax error in pattern: ${pattern}`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^')) cls = `!${cls.slice(1)}`;
      re += `[${cls.startsWith('!') ? '^' + cls.slice(1) : cls}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * The build context: a directory, read as steps need it. Paths never leave it (symlinks are copied as links,
 * never followed out), .dockerignore applies to everything COPY and ADD see, and each file is hashed at most once
 * per build, from its content and mode only (never mtimes, inode numbers or paths on the build machine).
 */
export class BuildContext {
  readonly root: string;
  readonly ignore: IgnoreMatcher;
  private readonly digests = new Map<string, string>();

  constructor(root: string, ignoreText: string) {
    this.root = realpathSync(root);
    this.ignore = createIgnoreMatcher(ignoreText);
  }

  /** Reads the ignore file for a Dockerfile: `<Dockerfile>.dockerignore` beside it, else `.dockerignore`. */
  static ignoreTextFor(root: string, dockerfileRel: string | undefined): string {
    const candidates = [...(dockerfileRel ? [`${dockerfileRel}.dockerignore`] : []), '.dockerignore'];
    for (const c of candidates) {
      try {
        return readFileSync(join(root, c), 'utf8');
      } catch {
        // next
      }
    }
    return '';
  }

  private clean(src: string): string {
    const n = posix.normalize('/' + src.replace(/\\/g, '/'));
    return n === '/' ? '.' : n.slice(1).replace(/\/$/, '');
  }

  /** Sources of a COPY/ADD: each pattern resolved (wildcards expanded) to existing, not ignored context paths. */
  resolve(patterns: string[]): ContextFile[] {
    const out: ContextFile[] = [];
    for (const raw of patterns) {
      if (posix.normalize(raw.replace(/\\/g, '/')).startsWith('../') || raw === '..') {
        throw invalidArgument(`COPY source "${raw}" is outside the build context`);
      }
      const rel = this.clean(raw);
      if (GLOB.test(rel)) {
        const re = globToRegExp(rel);
        const depth = rel.split('/').length;
        const found = this.walk('.', depth).filter((f) => re.test(f.rel));
        if (found.length === 0) throw notFound(`COPY source "${raw}": no source files were specified (nothing in the build context matches)`);
        out.push(...found);
        continue;
      }
      if (rel !== '.' && this.ignore.ignores(rel)) throw notFound(`COPY source "${raw}": not found in the build context (excluded by .dockerignore)`);
      let stat: Stats;
      try {
        stat = lstatSync(join(this.root, rel));
      } catch {
        throw notFound(`COPY source "${raw}": not found in the build context`);
      }
      out.push({ rel, abs: join(this.root, rel), stat });
    }
    return out;
  }

  /** Context entries down to `depth` path segments below `dir` (for wildcard matching). */
  private walk(dir: string, depth: number): ContextFile[] {
    const out: ContextFile[] = [];
    const base = dir === '.' ? this.root : join(this.root, dir);
    for (const name of readdirSync(base).sort()) {
      const rel = dir === '.' ? name : `${dir}/${name}`;
      if (this.ignore.ignores(rel)) {
        if (!this.ignore.mayMatchInside(rel)) continue;
      }
      const abs = join(base, name);
      const stat = lstatSync(abs);
      if (!this.ignore.ignores(rel)) out.push({ rel, abs, stat });
      if (stat.isDirectory() && rel.split('/').length < depth) out.push(...this.walk(rel, depth));
    }
    return out;
  }

  /**
   * Every non-ignored entry below a context directory (itself excluded), sorted, as [relative to dir, entry].
   * Directories wholly excluded are not descended into.
   */
  tree(dirRel: string): ContextFile[] {
    const out: ContextFile[] = [];
    const visit = (rel: string) => {
      const abs = rel === '.' ? this.root : join(this.root, rel);
      for (const name of readdirSync(abs).sort()) {
        const child = rel === '.' ? name : `${rel}/${name}`;
        const ignored = this.ignore.ignores(child);
        if (ignored && !this.ignore.mayMatchInside(child)) continue;
        const stat = lstatSync(join(abs, name));
        if (!ignored) out.push({ rel: child, abs: join(abs, name), stat });
        if (stat.isDirectory()) visit(child);
      }
    };
    visit(dirRel);
    return out;
  }

  /** Content digest of one entry: type, permission bits, and content (file bytes or link target). */
  digestOf(f: ContextFile): string {
    const memo = this.digests.get(f.abs);
    if (memo) return memo;
    const h = createHash('sha256');
    const mode = (f.stat.mode & 0o7777).toString(8);
    if (f.stat.isSymbolicLink()) h.update(`link ${mode} ${readlinkSync(f.abs)}`);
    else if (f.stat.isDirectory()) h.update(`dir ${mode}`);
    else if (f.stat.isFile()) {
      h.update(`file ${mode}\0`);
      const fd = openSync(f.abs, 'r');
      try {
        const buf = Buffer.allocUnsafe(1 << 20);
        let n: number;
        while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
      } finally {
        closeSync(fd);
      }
    } else h.update(`other ${mode}`);
    const d = h.digest('hex');
    this.digests.set(f.abs, d);
    return d;
  }

  /**
   * The inputs a COPY/ADD reads: every file below each source, as relative path -> digest. This is what the step's
   * cache key covers and what a cache miss is explained with.
   */
  inputs(sources: ContextFile[]): Map<string, string> {
    const out = new Map<string, string>();
    for (const s of sources) {
      out.set(s.rel, this.digestOf(s));
      if (s.stat.isDirectory()) for (const f of this.tree(s.rel)) out.set(f.rel, this.digestOf(f));
    }
    return out;
  }
}
