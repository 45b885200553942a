import { chmodSync, closeSync, existsSync, lchownSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, invalidArgument } from '../base/errors.js';
import { native, LOCK_EX, LOCK_NB, LOCK_SH } from '../sys/native.js';
import { execFile } from '../sys/exec.js';
import { resolveInRoot } from '../storage/rootpath.js';
import { BuildCache, cacheKey } from './cache.js';
import type { RunMount } from './run-mount.js';

/**
 * `RUN --mount=type=cache` directories and their sharing modes, under <root>/build-cache/mounts (BuildKit's cache
 * mounts, one key per cache: see cacheInstanceKey):
 *
 *   <key>/                  the cache's first instance
 *   <key>.private-<n>/      further instances, made when a step found every existing one taken (kept for reuse)
 *   <name>.lock             one per instance (<name> is <key> or <key>.private-<n>): flock held for a whole RUN,
 *                           shared by `sharing=shared` steps, exclusive for `locked` and `private` ones
 *   <key>.init.lock         held while an instance is made (in .tmp-<name>-<random>, renamed into place)
 *
 * Sharing (as BuildKit): every step takes the first instance it can lock without waiting, the first instance first.
 * `shared` steps lock together, so concurrent shared steps use the same directory; `private` steps and `shared`
 * steps that find every instance exclusively held make a new instance; `locked` steps wait until one is free.
 * Locks are flocks on file descriptors of this process: closing them (release, or the process ending, killed or
 * not) frees the cache, so no holder outlives its step.
 */

/** Where a cache mount is seeded from (`from=`): a stage or image, mounted on demand. */
export interface CacheSeed {
  /** The stage's cache key: a cache seeded from different content is a different cache. */
  key: string;
  /** Mounts the stage's filesystem; returns its root. */
  open(): string;
  close(root: string): void;
}

/** A `RUN --mount=type=cache` as the builder asks for it; runStep holds it while the command runs. */
export interface CacheMountRequest {
  kind: 'cache';
  /** The directory the caches live in (<root>/build-cache/mounts). */
  dir: string;
  mount: RunMount;
  /** Where it goes in the step's root: absolute, resolved against the working directory. */
  target: string;
  seed?: CacheSeed;
}

/** The cache directories of one RUN, locked until release() (idempotent). */
export interface HeldCacheMounts {
  /** Host directory to mount for each request, in request order. */
  paths: string[];
  release(): void;
}

export function cacheMountRequest(dir: string, mount: RunMount, target: string, seed?: CacheSeed): CacheMountRequest {
  return { kind: 'cache', dir, mount, target, ...(seed ? { seed } : {}) };
}

export function isCacheMountRequest(m: object): m is CacheMountRequest {
  return (m as { kind?: unknown }).kind === 'cache';
}

/** Go's path.Clean, which BuildKit applies to the target when it is the id. */
function cleanPath(p: string): string {
  const n = posix.normalize(p === '' ? '.' : p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** The cache's id: `id=`, else the target as written (BuildKit). */
export function cacheMountId(m: RunMount): string {
  return m.id || cleanPath(m.target ?? '');
}

/** The subpath of the cache mounted (`source=`), "/" for the whole cache. */
export function cacheSourcePath(m: RunMount): string {
  return posix.normalize('/' + (m.source ?? ''));
}

function hasPerms(m: RunMount): boolean {
  return m.mode !== undefined || m.uid !== undefined || m.gid !== undefined;
}

/**
 * The cache's key, naming its directories. As in BuildKit, a cache is its id plus what it starts from: the seed
 * stage's content (with the subpath, since only that is copied), and mode/uid/gid when they set up its root. A plain
 * `id` keeps the key of cacheKey([id]), so earlier cache directories stay in use.
 */
export function cacheInstanceKey(m: RunMount, seedKey?: string): string {
  const parts = [cacheMountId(m)];
  if (seedKey !== undefined) parts.push('from', seedKey, cacheSourcePath(m));
  if (hasPerms(m) && (seedKey !== undefined || cacheSourcePath(m) === '/')) {
    parts.push('perms', (m.mode ?? 0o755).toString(8), String(m.uid ?? 0), String(m.gid ?? 0));
  }
  return cacheKey(parts);
}

/** Opens and flocks `path` without waiting: the descriptor, or undefined when another holder conflicts. */
function tryLock(path: string, exclusive: boolean): number | undefined {
  const fd = openSync(path, 'a', 0o600);
  try {
    native().flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
    return fd;
  } catch (e) {
    closeSync(fd);
    if (errnoCode(e) === 'EAGAIN' || errnoCode(e) === 'EWOULDBLOCK') return undefined;
    throw e;
  }
}

/** Polls rather than blocks: a blocking flock would stop the event loop, and with it the step holding the lock. */
const POLL_MS = [10, 25, 50, 100];

async function pause(attempt: number, signal?: AbortSignal): Promise<boolean> {
  try {
    await sleep(POLL_MS[Math.min(attempt, POLL_MS.length - 1)], undefined, signal ? { signal } : {});
    return true;
  } catch {
    return false;
  }
}

async function waitLock(path: string, exclusive: boolean, signal?: AbortSignal): Promise<number | undefined> {
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) return undefined;
    const fd = tryLock(path, exclusive);
    if (fd !== undefined) return fd;
    if (!(await pause(attempt, signal))) return undefined;
  }
}

/** The numbers of a key's further instances, ascending (from their lock files, made before the directories). */
function privateInstances(dir: string, key: string): number[] {
  const re = new RegExp(`^${key}\\.private-(\\d+)\\.lock$`);
  const out: number[] = [];
  for (const n of readdirSync(dir)) {
    const m = re.exec(n);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

const instanceName = (key: string, n: number) => (n === 0 ? key : `${key}.private-${n}`);

/** Locks an instance of `key` as `sharing` asks: its directory name and lock descriptor, undefined when aborted. */
async function lockInstance(dir: string, key: string, sharing: 'shared' | 'private' | 'locked', signal?: AbortSignal): Promise<{ name: string; fd: number } | undefined> {
  const exclusive = sharing !== 'shared';
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) return undefined;
    const others = privateInstances(dir, key);
    for (const n of [0, ...others]) {
      const fd = tryLock(join(dir, `${instanceName(key, n)}.lock`), exclusive);
      if (fd !== undefined) return { name: instanceName(key, n), fd };
    }
    if (sharing !== 'locked') {
      // A new instance: the first number nobody holds (a racing step may take the next one first).
      for (let n = (others.at(-1) ?? 0) + 1; ; n++) {
        const fd = tryLock(join(dir, `${instanceName(key, n)}.lock`), exclusive);
        if (fd !== undefined) return { name: instanceName(key, n), fd };
      }
    }
    if (!(await pause(attempt, signal))) return undefined;
  }
}

/** Sets a cache directory's mode and owner (chmod: mkdir's mode would go through the umask). */
function applyPerms(path: string, m: Pick<RunMount, 'mode' | 'uid' | 'gid'>): void {
  chmodSync(path, m.mode ?? 0o755);
  lchownSync(path, m.uid ?? 0, m.gid ?? 0);
}

/**
 * Makes the instance directory when it is missing: empty with mode/uid/gid (default 0755, root), or a copy of the
 * seed's subpath (owners, modes and xattrs kept; mode/uid/gid, when given, then set its root). Built aside and
 * renamed into place, under the key's init lock, so a shared holder never sees a half-made cache.
 */
async function ensureInstance(req: CacheMountRequest, key: string, name: string, signal?: AbortSignal): Promise<boolean> {
  const path = join(req.dir, name);
  if (existsSync(path)) return true;
  const init = await waitLock(join(req.dir, `${key}.init.lock`), true, signal);
  if (init === undefined) return false;
  try {
    if (existsSync(path)) return true;
    // Left by a build killed while making an instance of this key.
    for (const n of readdirSync(req.dir)) if (n.startsWith(`.tmp-${key}`)) rmSync(join(req.dir, n), { recursive: true, force: true });
    const tmp = join(req.dir, `.tmp-${name}-${randomBytes(6).toString('hex')}`);
    try {
      mkdirSync(tmp);
      if (req.seed) {
        const root = req.seed.open();
        try {
          const src = resolveInRoot(root, cacheSourcePath(req.mount));
          if (!existsSync(src) || !statSync(src).isDirectory()) {
            throw invalidArgument(`--mount=type=cache,from=${req.mount.from}: ${cacheSourcePath(req.mount)} is not a directory in ${req.mount.from}`);
          }
          await execFile('cp', ['-a', '--', `${src}/.`, tmp], signal ? { signal } : {});
        } finally {
          req.seed.close(root);
        }
        if (hasPerms(req.mount)) applyPerms(tmp, req.mount);
      } else {
        applyPerms(tmp, cacheSourcePath(req.mount) === '/' ? req.mount : {});
      }
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return true;
  } finally {
    closeSync(init);
  }
}

/** The host directory a request mounts inside its instance: the instance, or its `source` subpath (made if missing). */
function mountPath(req: CacheMountRequest, instance: string): string {
  const sub = cacheSourcePath(req.mount);
  if (req.seed || sub === '/') return instance;
  const p = resolveInRoot(instance, sub);
  if (!existsSync(p)) {
    mkdirSync(p, { recursive: true, mode: 0o755 });
    applyPerms(p, req.mount);
  }
  return p;
}

/**
 * Takes the caches of one RUN per their sharing modes, making them on first use; waits (for `locked`) until they are
 * free. Keys are taken in sorted order, so steps waiting for each other's caches cannot deadlock; two mounts of the
 * same cache in one step share one instance (the first one's sharing mode applies). Returns undefined when `signal`
 * aborted the wait; on abort or error, whatever was taken is released.
 */
export async function acquireCacheMounts(reqs: readonly CacheMountRequest[], signal?: AbortSignal): Promise<HeldCacheMounts | undefined> {
  const keys = reqs.map((r) => cacheInstanceKey(r.mount, r.seed?.key));
  const fds: number[] = [];
  const release = () => {
    for (const fd of fds.splice(0)) closeSync(fd);
  };
  try {
    const instances = new Map<string, string>();
    const order = [...new Set(keys)].sort();
    for (const key of order) {
      const req = reqs[keys.indexOf(key)]!;
      mkdirSync(req.dir, { recursive: true });
      const held = await lockInstance(req.dir, key, req.mount.sharing ?? 'shared', signal);
      if (!held) {
        release();
        return undefined;
      }
      fds.push(held.fd);
      if (!(await ensureInstance(req, key, held.name, signal))) {
        release();
        return undefined;
      }
      // The use `system df -v` shows (LAST USED, USAGE); records() names a mount's use file after its instance.
      new BuildCache(dirname(req.dir)).noteMountUse(held.name);
      instances.set(key, join(req.dir, held.name));
    }
    return { paths: reqs.map((r, i) => mountPath(r, instances.get(keys[i]!)!)), release };
  } catch (e) {
    release();
    if (signal?.aborted) return undefined;
    throw e;
  }
}
