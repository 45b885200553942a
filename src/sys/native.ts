import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

/** The system calls Node.js lacks, from the berth_sys addon (native/berth_sys.c). */
export interface NativeSys {
  flock(fd: number, op: number): void;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  /** Whether the kernel executes x32 system calls (x86_64 only; false elsewhere). */
  x32Abi(): boolean;
  /**
   * posix_spawn (optionally in a new session): stdin /dev/null, stdout /dev/null and stderr inherited unless
   * piped; each child fd in `pipes` is the write end of a new pipe whose read end is returned in `fds`.
   */
  spawn(file: string, argv: readonly string[], setsid: boolean, pipes: readonly number[]): { pid: number; fds: number[] };
  /** The child's exit code, or 128+signal; -1 while it still runs (nohang); -2 if it is not this process's child. */
  waitpid(pid: number, nohang: boolean): number;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_PRIVATE = 1 << 18;
export const MNT_DETACH = 2;

let cached: NativeSys | undefined;

/** Locates the addon relative to this file, both from src/ (tsc output) and from the bundle. */
export function native(): NativeSys {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'native', 'build', 'Release', 'berth_sys.node');
    if (existsSync(p)) {
      // process.dlopen, not require: the CommonJS loader's resolution costs about 3 ms, the dlopen itself 0.3 ms.
      const m = { exports: {} as NativeSys };
      process.dlopen(m, p);
      return (cached = m.exports);
    }
    dir = dirname(dir);
  }
  throw new Error('berth_sys native addon not built: run scripts/setup.sh (or npm run build)');
}
