import { readFileSync } from 'node:fs';
import { native, MNT_DETACH } from './native.js';
import { errnoCode, BerthError } from '../base/errors.js';

/** The only module that mounts and unmounts on the host. */

/** Mounts an overlay of `lowers` (top first) with a writable upper dir at `target`. */
export function mountOverlay(lowers: string[], upper: string | undefined, work: string | undefined, target: string): void {
  const opts = [`lowerdir=${lowers.join(':')}`];
  if (upper && work) opts.push(`upperdir=${upper}`, `workdir=${work}`);
  const data = opts.join(',');
  if (data.length > 4000) throw new BerthError('unavailable', `overlay mount options too long (${lowers.length} layers)`);
  native().mount('overlay', target, 'overlay', 0, data);
}

/** Lazily unmounts `target`; a target that is not mounted is not an error. */
export function unmount(target: string): void {
  try {
    native().umount2(target, MNT_DETACH);
  } catch (e) {
    const code = errnoCode(e);
    if (code !== 'EINVAL' && code !== 'ENOENT') throw e;
  }
}

export function isMountPoint(target: string): boolean {
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  const esc = target.replace(/ /g, '\\040');
  return mounts.split('\n').some((l) => l.split(' ')[1] === esc);
}

/** Every mount point below (and including) `prefix`, deepest first. */
export function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === prefix || m.startsWith(prefix.endsWith('/') ? prefix : prefix + '/')))
    .sort((a, b) => b.length - a.length);
}
