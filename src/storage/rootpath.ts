import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

/**
 * Resolves `path` inside the directory `root` as if root were "/": symlinks are followed but clamped at root, so the
 * result never leaves it (like a chroot lookup, or Go's securejoin). The final component's symlink is followed too
 * unless `followFinal` is false. Missing components are kept as they are.
 */
export function resolveInRoot(root: string, path: string, followFinal = true): string {
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
    const candidate = posix.join(root, ...resolved, part);
    let isLink = false;
    try {
      isLink = lstatSync(candidate).isSymbolicLink();
    } catch {
      isLink = false;
    }
    if (isLink && (parts.length > 0 || followFinal)) {
      if (++hops > 255) throw Object.assign(new Error(`too many levels of symbolic links: ${path}`), { code: 'ELOOP' });
      const target = readlinkSync(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    resolved.push(part);
  }
  return posix.join(root, ...resolved);
}
