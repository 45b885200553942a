import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { invalidArgument, notFound } from '../base/errors.js';
import { hashFileSync } from '../base/digest.js';
import { atomicWriteJson, readJsonIf } from '../base/fsutil.js';
import { resolveInRoot } from '../storage/rootpath.js';
import { createIgnoreMatcher, type IgnoreMatcher } from './dockerignore.js';

/** One path of the build context that a step reads. */
export interface ContextFile {
  /** Where it really is, relative to the context root, "/"-separated, symlinks in it resolved (inside the context). */
  rel: string;
  abs: string;
  stat: Stats;
  /** The path as the instruction named it (normalized, no leading "/"); its base name names the copy. */
  src: string;
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

export function hasGlob(path: string): boolean {
  return GLOB.test(path);
}

/** A source path as an instruction wrote it, normalized: no leading "/", no trailing "/", "." for the root. */
export function cleanSource(src: string): string {
  const n = posix.normalize('/' + src.replace(/\\/g, '/'));
  return n === '/' ? '.' : n.slice(1).replace(/\/$/, '');
}

/**
 * Paths below `root` (a directory on the host, e.g. a mounted stage) matching a wildcard pattern, relative to root,
 * sorted. `skip` prunes entries (a .dockerignore); symlinks are never descended into.
 */
export function globIn(root: string, pattern: string, skip?: (rel: string) => 'skip' | 'hide' | 'keep'): string[] {
  const re = globToRegExp(pattern);
  const depth = pattern.split('/').length;
  const out: string[] = [];
  const walk = (rel: string, level: number) => {
    let names: string[];
    try {
      names = readdirSync(rel === '.' ? root : join(root, rel));
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const child = rel === '.' ? name : `${rel}/${name}`;
      const verdict = skip?.(child) ?? 'keep';
      if (verdict === 'skip') continue;
      if (verdict === 'keep' && level === depth && re.test(child)) out.push(child);
      if (level < depth && lstatSync(join(root, child)).isDirectory()) walk(child, level + 1);
    }
  };
  walk('.', 1);
  return out;
}

/**
 * The build context: a directory, read as steps need it. Paths never leave it (symlinks inside a source path are
 * resolved within the context, as if it were "/"; symlinks below a copied directory are copied as links), and
 * .dockerignore applies to everything COPY and ADD see. Each file is hashed at most once per build, from its
 * content and mode only (never mtimes, owners, inode numbers or where the context is on the build machine).
 */
export class BuildContext {
  readonly root: string;
  readonly ignore: IgnoreMatcher;
  private readonly digests = new Map<string, string>();
  /**
   * Digests of files from earlier builds of this context, by path, each with the stat signature it was computed
   * for (device, inode, size, mtime, ctime: a write always moves ctime). Only a memo of content digests, so a file
   * is not read again when nothing about it changed; cache keys still come from content alone.
   */
  private readonly memo = new Map<string, [string, string]>();
  private memoDirty = false;
  private readonly trees = new Map<string, readonly ContextFile[]>();

  constructor(root: string, ignoreText: string, private readonly memoFile?: string) {
    this.root = realpathSync(root);
    this.ignore = createIgnoreMatcher(ignoreText);
    if (memoFile) {
      const saved = readJsonIf<Record<string, [string, string]>>(memoFile);
      for (const [k, v] of Object.entries(saved ?? {})) if (Array.isArray(v) && v.length === 2) this.memo.set(k, v);
    }
  }

  /** Saves the digest memo for the next build of this context (best effort). */
  saveMemo(): void {
    if (!this.memoFile || !this.memoDirty) return;
    try {
      atomicWriteJson(this.memoFile, Object.fromEntries(this.memo), { durable: false });
    } catch {
      // a memo only
    }
  }

  /**
   * Reads the ignore file for a Dockerfile: `<Dockerfile>.dockerignore` beside it (given as a host path, or relative
   * to the context), else `.dockerignore` at the context root.
   */
  static ignoreTextFor(root: string, dockerfile: string | undefined): string {
    const candidates = [...(dockerfile ? [posix.isAbsolute(dockerfile) ? `${dockerfile}.dockerignore` : join(root, `${dockerfile}.dockerignore`)] : []), join(root, '.dockerignore')];
    for (const c of candidates) {
      try {
        return readFileSync(c, 'utf8');
      } catch {
        // next
      }
    }
    return '';
  }

  /**
   * Sources of a COPY/ADD: each pattern resolved (wildcards expanded) to existing, not ignored context paths.
   * Errors name the source: outside the context (invalid-argument), missing or excluded (not-found).
   */
  resolve(patterns: string[]): ContextFile[] {
    const out: ContextFile[] = [];
    for (const raw of patterns) {
      const norm = posix.normalize(raw.replace(/\\/g, '/'));
      if (norm === '..' || norm.startsWith('../')) throw invalidArgument(`source "${raw}" is outside the build context`);
      const rel = cleanSource(raw);
      if (GLOB.test(rel)) {
        const found = globIn(this.root, rel, (p) => (this.ignore.ignores(p) ? (this.ignore.mayMatchInside(p) ? 'hide' : 'skip') : 'keep'));
        if (found.length === 0) throw notFound(`source "${raw}": no source files were specified (nothing in the build context matches)`);
        for (const f of found) out.push(this.entry(f, raw));
        continue;
      }
      out.push(this.entry(rel, raw));
    }
    return out;
  }

  /** One named source: the path resolved inside the context (a symlink it names is followed, within the context). */
  private entry(rel: string, raw: string): ContextFile {
    const abs = rel === '.' ? this.root : resolveInRoot(this.root, rel);
    const real = abs === this.root ? '.' : abs.slice(this.root.length + 1);
    if (real !== '.' && (this.ignore.ignores(real) || this.ignore.ignores(rel))) {
      throw notFound(`source "${raw}": not found in the build context (excluded by .dockerignore)`);
    }
    let stat: Stats;
    try {
      stat = lstatSync(abs);
    } catch {
      throw notFound(`source "${raw}": not found in the build context`);
    }
    return { rel: real, abs, stat, src: rel };
  }

  /**
   * Every non-ignored entry below a context directory (itself excluded), sorted, parents before children.
   * Directories wholly excluded are not descended into; symlinks are entries, never followed. Walked once per
   * build: a COPY places exactly the entries it hashed.
   */
  tree(dirRel: string): readonly ContextFile[] {
    const known = this.trees.get(dirRel);
    if (known) return known;
    const out: ContextFile[] = [];
    const visit = (rel: string) => {
      const abs = rel === '.' ? this.root : join(this.root, rel);
      for (const name of readdirSync(abs).sort()) {
        const child = rel === '.' ? name : `${rel}/${name}`;
        const ignored = this.ignore.ignores(child);
        if (ignored && !this.ignore.mayMatchInside(child)) continue;
        const stat = lstatSync(join(abs, name));
        if (!ignored) out.push({ rel: child, abs: join(abs, name), stat, src: child });
        if (stat.isDirectory()) visit(child);
      }
    };
    visit(dirRel);
    this.trees.set(dirRel, out);
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
      const st = f.stat;
      const sig = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${mode}`;
      const known = this.memo.get(f.abs);
      if (known && known[0] === sig) {
        this.digests.set(f.abs, known[1]);
        return known[1];
      }
      h.update(`file ${mode}\0`);
      hashFileSync(h, f.abs);
      const d = h.digest('hex');
      this.digests.set(f.abs, d);
      this.memo.set(f.abs, [sig, d]);
      this.memoDirty = true;
      return d;
    } else h.update(`other ${mode}`);
    const d = h.digest('hex');
    this.digests.set(f.abs, d);
    return d;
  }

  /**
   * The inputs a step reads: every entry below each source, as context path -> digest. This is what the step's
   * cache key covers and what a cache miss is explained with. `keep` filters entries below a directory source
   * (COPY --exclude).
   */
  inputs(sources: ContextFile[], keep: (f: ContextFile, source: ContextFile) => boolean = () => true): Map<string, string> {
    const out = new Map<string, string>();
    for (const s of sources) {
      out.set(s.rel, this.digestOf(s));
      if (s.stat.isDirectory()) for (const f of this.tree(s.rel)) if (keep(f, s)) out.set(f.rel, this.digestOf(f));
    }
    return out;
  }
}
