import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

/** Symlinks one lookup follows before failing with ELOOP. */
export const MAX_SYMLINK_HOPS = 255;

/**
 * Where a walk reads the tree it resolves: the host path backing `path` (absolute, normalized, already resolved, never
 * "/"), or undefined where that path must not be read as a symlink (a mount's own root: the kernel resolved its
 * source when mounting). The walk's safety rests on this mapping: it only ever sees resolved paths, so a mapping
 * that keeps each one inside a root or a mount's source keeps the walk there.
 */
export type HostLookup = (path: string) => string | undefined;

/**
 * Resolves `path` like a chroot lookup of a namespace that `lookup` maps to the host: component by component,
 * following symlinks (absolute targets from the namespace's "/", relative ones from the link's directory), ".."
 * never climbing above "/". The final component's symlink is followed unless `followFinal` is false; missing
 * components are kept as they are. Returns the resolved path in the namespace (absolute, normalized), not a host
 * path. Throws an Error with code ELOOP ("too many levels of symbolic links: <path>") after MAX_SYMLINK_HOPS links.
 */
export function walkPath(path: string, lookup: HostLookup, followFinal = true): string {
  const parts = posix.normalize('/' + path).split('/').filter(Boolean);
  const resolved: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = parts.length > 0 || followFinal ? lookup('/' + [...resolved, part].join('/')) : undefined;
    if (host !== undefined && isSymlink(host)) {
      if (++hops > MAX_SYMLINK_HOPS) throw Object.assign(new Error(`too many levels of symbolic links: ${path}`), { code: 'ELOOP' });
      const target = readlinkSync(host);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    resolved.push(part);
  }
  return '/' + resolved.join('/');
}

/**
 * Resolves `path` inside the directory `root` as if root were "/": symlinks are followed but clamped at root, so the
 * result never leaves it (like a chroot lookup, or Go's securejoin). The final component's symlink is followed too
 * unless `followFinal` is false. Missing components are kept as they are.
 */
export function resolveInRoot(root: string, path: string, followFinal = true): string {
  return inRoot(root, walkPath(path, (p) => inRoot(root, p), followFinal));
}

/** The host path of resolved path `p` under `root` ("/" is root itself, as given). */
function inRoot(root: string, p: string): string {
  return p === '/' ? posix.join(root) : posix.join(root, p);
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
