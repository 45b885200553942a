import { mkdirSync, writeFileSync, copyFileSync, symlinkSync, existsSync, chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

/**
 * A busybox root filesystem made from Debian's busybox-static, the base image of berth's tests (there is no
 * registry to pull from). Users: root, nobody, app (1000:1000, group app with member app, plus group staff 50).
 */
export function makeBusyboxRootfs(dir: string): string {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'root', 'home/app', 'proc', 'sys', 'dev', 'var/log']) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  chmodSync(join(dir, 'tmp'), 0o1777);
  copyFileSync('/usr/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync('/usr/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    const p = join(dir, 'bin', a);
    if (a !== 'busybox' && !existsSync(p)) symlinkSync('busybox', p);
  }
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n');
  execFileSync('chown', ['1000:1000', join(dir, 'home/app')]);
  return dir;
}

/** Writes a busybox rootfs tar (for `berth import`) and returns its path; the caller removes `workDir`. */
export function makeBusyboxTar(workDir: string): string {
  const root = join(workDir, 'rootfs');
  mkdirSync(root, { recursive: true });
  makeBusyboxRootfs(root);
  const tar = join(workDir, 'busybox.tar');
  execFileSync('tar', ['-C', root, '--numeric-owner', '-cf', tar, '.']);
  rmSync(root, { recursive: true, force: true });
  return tar;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
