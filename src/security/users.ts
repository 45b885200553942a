import { readFileSync } from 'node:fs';
import { resolveInRoot } from '../storage/rootpath.js';
import { invalidArgument } from '../base/errors.js';

/** Resolving `--user name[:group]` against the image's /etc/passwd and /etc/group, as Docker does. */

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

export function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':')).filter((f) => f.length >= 4)
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' }))
    .filter((e) => Number.isInteger(e.uid) && Number.isInteger(e.gid));
}

export function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':')).filter((f) => f.length >= 3)
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }))
    .filter((e) => Number.isInteger(e.gid));
}

/** Pure resolution over file contents; an unknown name is an error, numeric ids need no entry. */
export function resolveUserSpec(spec: string, passwd: PasswdEntry[], groups: GroupEntry[]): ResolvedUser {
  const [userPart = '', groupPart] = spec.split(':');
  const numeric = /^\d+$/;
  let uid: number, gid: number, home = '/', name: string | undefined;
  if (userPart === '' || numeric.test(userPart)) {
    uid = userPart === '' ? 0 : Number(userPart);
    const e = passwd.find((p) => p.uid === uid);
    gid = e?.gid ?? 0;
    home = e?.home ?? '/';
    name = e?.name;
  } else {
    const e = passwd.find((p) => p.name === userPart);
    if (!e) throw invalidArgument(`unable to find user ${userPart}: no matching entries in passwd file`);
    ({ uid, gid, home } = e);
    name = e.name;
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (numeric.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw invalidArgument(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  const additionalGids = name ? groups.filter((g) => g.members.includes(name!) && g.gid !== gid).map((g) => g.gid) : [];
  return { uid, gid, additionalGids, home };
}

function readInRoot(rootfs: string, path: string): string {
  try {
    return readFileSync(resolveInRoot(rootfs, path), 'utf8');
  } catch {
    return '';
  }
}

/** Resolves a user spec against the container's root filesystem. */
export function resolveUser(rootfs: string, spec: string): ResolvedUser {
  return resolveUserSpec(spec, parsePasswd(readInRoot(rootfs, '/etc/passwd')), parseGroup(readInRoot(rootfs, '/etc/group')));
}
