import { lstatSync, readdirSync, readlinkSync, openSync, readSync, closeSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

// Comparison of two built images, berth's and an oracle's (buildah): their root filesystems as manifests, and the
// config fields a Dockerfile sets. The walk reads a directory; everything after it is pure, so a failure can say
// exactly which path or field differs and how.

/** One filesystem entry, as two builders of the same Dockerfile must agree on it. */
export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';
  /** Permission bits including setuid/setgid/sticky (st_mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes, regular files only (a directory's size depends on the filesystem). */
  size?: number;
  /** sha256 of the content, regular files only. */
  digest?: string;
  /** Symlink target, as stored. */
  target?: string;
  /** For a file with more than one path in the tree: the first of those paths (sorted), the same for every member. */
  linkGroup?: string;
  /** Device number (major:minor), device nodes only. */
  rdev?: string;
  /** Modification time in whole seconds; compared only where a Dockerfile sets it. */
  mtime: number;
}

/** A root filesystem: container path ("/etc/passwd") to entry, the root itself left out. */
export type TreeManifest = Map<string, TreeEntry>;

/** Mount points a runtime creates or fills in; neither builder's value means anything there. */
export const RUNTIME_PATHS = ['/proc', '/sys', '/dev', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];

/** True for a path at or under one of `prefixes`. */
export function under(path: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`));
}

function typeOf(st: Stats): TreeEntry['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}

function fileDigest(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 16);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Walks `root` (never following symlinks) into a manifest. `ignore` drops a path and everything under it
 * (default: the runtime's mount points, RUNTIME_PATHS).
 */
export function treeManifest(root: string, ignore: (path: string) => boolean = (p) => under(p, RUNTIME_PATHS)): TreeManifest {
  const out: TreeManifest = new Map();
  const inodes = new Map<string, string[]>();
  const walk = (dir: string, ctr: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = ctr === '/' ? `/${name}` : `${ctr}/${name}`;
      if (ignore(path)) continue;
      const abs = join(dir, name);
      const st = lstatSync(abs);
      const e: TreeEntry = { type: typeOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
      if (e.type === 'file') {
        e.size = st.size;
        e.digest = fileDigest(abs);
        if (st.nlink > 1) {
          const k = `${st.dev}:${st.ino}`;
          inodes.set(k, [...(inodes.get(k) ?? []), path]);
        }
      } else if (e.type === 'symlink') e.target = readlinkSync(abs);
      else if (e.type === 'char' || e.type === 'block') e.rdev = `${Math.floor(st.rdev / 256)}:${st.rdev % 256}`;
      out.set(path, e);
      if (e.type === 'dir') walk(abs, path);
    }
  };
  walk(root, '/');
  for (const paths of inodes.values()) {
    if (paths.length < 2) continue;
    const first = [...paths].sort()[0]!;
    for (const p of paths) out.get(p)!.linkGroup = first;
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** One way two trees differ: a path only one side has, or one field of an entry both have. */
export type TreeDifference =
  | { path: string; kind: 'only-ours'; ours: TreeEntry }
  | { path: string; kind: 'only-theirs'; theirs: TreeEntry }
  | { path: string; kind: 'field'; type: TreeEntry['type']; field: keyof TreeEntry; ours: unknown; theirs: unknown };

const FIELDS: (keyof TreeEntry)[] = ['type', 'mode', 'uid', 'gid', 'size', 'digest', 'target', 'linkGroup', 'rdev', 'mtime'];

/**
 * Differences between `ours` (berth) and `theirs` (the oracle). mtimes are compared only for paths where
 * `compareMtime` says so (a build stamps the time of the build on everything else).
 */
export function diffTrees(ours: TreeManifest, theirs: TreeManifest, compareMtime: (path: string) => boolean = () => false): TreeDifference[] {
  const out: TreeDifference[] = [];
  const paths = [...new Set([...ours.keys(), ...theirs.keys()])].sort();
  for (const path of paths) {
    const a = ours.get(path);
    const b = theirs.get(path);
    if (!b) { out.push({ path, kind: 'only-ours', ours: a! }); continue; }
    if (!a) { out.push({ path, kind: 'only-theirs', theirs: b }); continue; }
    for (const field of FIELDS) {
      if (field === 'mtime' && !compareMtime(path)) continue;
      // A type change makes the other fields noise.
      if (field !== 'type' && a.type !== b.type) continue;
      if (a[field] !== b[field]) out.push({ path, kind: 'field', type: b.type, field, ours: a[field], theirs: b[field] });
    }
  }
  return out;
}

/** The image config fields a Dockerfile sets, and `Author` (MAINTAINER). */
export const CONFIG_FIELDS = ['Env', 'Cmd', 'Entrypoint', 'User', 'WorkingDir', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild', 'Author'] as const;
export type ConfigField = (typeof CONFIG_FIELDS)[number];
const MAP_FIELDS: ConfigField[] = ['ExposedPorts', 'Volumes', 'Labels'];

/** One way two configs differ; for map fields (Labels, ExposedPorts, Volumes) one key at a time. */
export interface ConfigDifference {
  field: ConfigField;
  key?: string;
  ours: unknown;
  theirs: unknown;
}

/** Empty values (null, "", [], {}) and zero health-check durations (Docker's omitempty) all mean "not set". */
export function normalizeValue(field: ConfigField, v: unknown): unknown {
  if (v === null || v === undefined || v === '') return undefined;
  if (Array.isArray(v)) return v.length ? v : undefined;
  if (typeof v === 'object') {
    const o = Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => !(field === 'Healthcheck' && (x === 0 || x === null))));
    return Object.keys(o).length ? o : undefined;
  }
  return v;
}

/** Compares the CONFIG_FIELDS of two Docker-style configs ({Env, Cmd, ...}, plus Author taken from the image). */
export function diffConfigs(ours: Record<string, unknown>, theirs: Record<string, unknown>): ConfigDifference[] {
  const out: ConfigDifference[] = [];
  for (const field of CONFIG_FIELDS) {
    const a = normalizeValue(field, ours[field]);
    const b = normalizeValue(field, theirs[field]);
    if (MAP_FIELDS.includes(field)) {
      const am = (a ?? {}) as Record<string, unknown>;
      const bm = (b ?? {}) as Record<string, unknown>;
      for (const key of [...new Set([...Object.keys(am), ...Object.keys(bm)])].sort()) {
        if (JSON.stringify(am[key]) !== JSON.stringify(bm[key])) out.push({ field, key, ours: am[key], theirs: bm[key] });
      }
    } else if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ field, ours: a, theirs: b });
  }
  return out;
}

const octal = (m: unknown) => (typeof m === 'number' ? `0${m.toString(8).padStart(3, '0')}` : String(m));

function describeEntry(e: TreeEntry): string {
  const base = `${e.type} ${octal(e.mode)} ${e.uid}:${e.gid}`;
  if (e.type === 'file') return `${base} ${e.size} bytes${e.linkGroup ? ` (hardlink of ${e.linkGroup})` : ''}`;
  if (e.type === 'symlink') return `${base} -> ${e.target}`;
  return base;
}

/** One line per difference, naming the path or field and both values. */
export function formatTreeDifference(d: TreeDifference, ours = 'berth', theirs = 'buildah'): string {
  if (d.kind === 'only-ours') return `${d.path}: only in ${ours} (${describeEntry(d.ours)})`;
  if (d.kind === 'only-theirs') return `${d.path}: only in ${theirs} (${describeEntry(d.theirs)})`;
  const show = (v: unknown) => (d.field === 'mode' ? octal(v) : JSON.stringify(v));
  return `${d.path}: ${d.field} ${ours} ${show(d.ours)}, ${theirs} ${show(d.theirs)}`;
}

export function formatConfigDifference(d: ConfigDifference, ours = 'berth', theirs = 'buildah'): string {
  const name = d.key !== undefined ? `${d.field}[${JSON.stringify(d.key)}]` : d.field;
  return `config ${name}: ${ours} ${JSON.stringify(d.ours) ?? 'unset'}, ${theirs} ${JSON.stringify(d.theirs) ?? 'unset'}`;
}

/** What an expectation may look at besides the difference: the corpus entry and both whole configs. */
export interface DifferenceContext {
  entry: string;
  ours: Record<string, unknown>;
  theirs: Record<string, unknown>;
}

/** A difference that is known and accepted, with the reason (one list in the oracle test). */
export interface Expectation {
  reason: string;
  /** Only for these corpus entries (all when absent). */
  entries?: string[];
  tree?: (d: TreeDifference, ctx: DifferenceContext) => boolean;
  config?: (d: ConfigDifference, ctx: DifferenceContext) => boolean;
}

/** Splits differences into the unexplained ones and the ones an expectation accepts (each line names its reason). */
export function partitionDifferences(
  tree: TreeDifference[], config: ConfigDifference[], expected: readonly Expectation[], ctx: DifferenceContext,
): { unexpected: string[]; accepted: string[] } {
  const unexpected: string[] = [];
  const accepted: string[] = [];
  const applies = expected.filter((x) => !x.entries || x.entries.includes(ctx.entry));
  for (const d of tree) {
    const e = applies.find((x) => x.tree?.(d, ctx));
    (e ? accepted : unexpected).push(formatTreeDifference(d) + (e ? `  [${e.reason}]` : ''));
  }
  for (const d of config) {
    const e = applies.find((x) => x.config?.(d, ctx));
    (e ? accepted : unexpected).push(formatConfigDifference(d) + (e ? `  [${e.reason}]` : ''));
  }
  return { unexpected, accepted };
}
