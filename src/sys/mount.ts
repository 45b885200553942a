import { mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { native, MNT_DETACH } from './native.js';
import { errnoCode, BerthError } from '../base/errors.js';

/** The only module that mounts and unmounts on the host. */

export interface OverlayOptions {
  /**
   * Skip the syncs overlayfs does on unmount (`volatile`, Linux 5.10+): for throwaway mounts such as build steps,
   * whose work dir is discarded after a crash anyway.
   */
  volatile?: boolean;
}

/**
 * Mounts an overlay of `lowers` (top first) with an optional writable upper dir at `target`, for any number of
 * layers. A layer given twice is kept once (its upper copy covers all the lower one holds; overlay refuses repeats
 * with ELOOP). The kernel takes one page of mount options, which absolute layer paths fill after about 40 layers:
 * then the lowerdirs are given as short relative symlinks, resolved by the kernel at mount time, from a working
 * directory changed just for the (synchronous) call.
 */
export function mountOverlay(lowers: string[], upper: string | undefined, work: string | undefined, target: string, o: OverlayOptions = {}): void {
  const unique = lowers.filter((l, i) => lowers.indexOf(l) === i);
  const extra = [...(upper && work ? [`upperdir=${upper}`, `workdir=${work}`] : []), ...(o.volatile && upper ? ['volatile'] : [])];
  const data = (ls: string[]) => [`lowerdir=${ls.join(':')}`, ...extra].join(',');
  if (data(unique).length < 3500) {
    native().mount('overlay', target, 'overlay', 0, data(unique));
    return;
  }
  const scratch = join(dirname(target), `.lowers-${randomBytes(6).toString('hex')}`);
  mkdirSync(scratch);
  const cwd = process.cwd();
  try {
    unique.forEach((l, i) => symlinkSync(l, join(scratch, String(i))));
    process.chdir(scratch);
    const rel = unique.map((_, i) => String(i));
    if (data(rel).length >= 4000) throw new BerthError('unavailable', `overlay mount options too long (${unique.length} layers)`);
    native().mount('overlay', target, 'overlay', 0, data(rel));
  } finally {
    process.chdir(cwd);
    rmSync(scratch, { recursive: true, force: true });
  }
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

/**
 * Unmounts `target` at once (not lazily): false, leaving it mounted, while something still uses it (EBUSY). For
 * when the layers under a mount are to be changed next, which must not happen while the mount lives on.
 */
export function unmountNow(target: string): boolean {
  try {
    native().umount2(target, 0);
    return true;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EBUSY') return false;
    if (code !== 'EINVAL' && code !== 'ENOENT') throw e;
    return true;
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
