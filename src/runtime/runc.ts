import { execFile, spawnProcess, lookPath } from '../sys/exec.js';
import { BerthError, isBerthError } from '../base/errors.js';
import type { StdioOptions } from 'node:child_process';

/**
 * Driver for an OCI runtime with runc's command line (runc; crun takes the same commands).
 * Creation is done by the monitor (src/runtime/monitor.ts); this drives everything after.
 */
export class OciRuntime {
  private resolved: string | undefined;
  constructor(readonly name: string, readonly root: string) {}

  /** The runtime's absolute path, looked up in $PATH on first use. */
  get bin(): string {
    return (this.resolved ??= lookPath(this.name));
  }

  private args(...rest: string[]): string[] {
    return ['--root', this.root, ...rest];
  }

  async start(id: string): Promise<void> {
    await execFile(this.bin, this.args('start', id));
  }

  /** Sends a signal; a container that is already gone is not an error. */
  async kill(id: string, signal: string, all = false): Promise<void> {
    try {
      await execFile(this.bin, this.args('kill', ...(all ? ['--all'] : []), id, signal));
    } catch (e) {
      if (isBerthError(e) && /not running|does not exist|container not found|process already finished/i.test(e.message)) return;
      throw e;
    }
  }


  async delete(id: string): Promise<void> {
    await execFile(this.bin, this.args('delete', '--force', id), { check: false });
  }


  async pause(id: string): Promise<void> {
    await execFile(this.bin, this.args('pause', id));
  }

  async resume(id: string): Promise<void> {
    await execFile(this.bin, this.args('resume', id));
  }

  /** Host PIDs of every process in the container. */
  async pids(id: string): Promise<number[]> {
    const r = await execFile(this.bin, this.args('ps', '--format', 'json', id));
    return (JSON.parse(r.stdout) as number[] | null) ?? [];
  }


  /**
   * Starts `runc exec` for a process described by an OCI process JSON file. In the foreground with a terminal,
   * runc itself proxies the pty through its own stdio.
   */
  exec(id: string, processFile: string, opts: { tty: boolean; detach: boolean; pidFile?: string }, stdio: StdioOptions) {
    const a = this.args('exec', '--process', processFile);
    if (opts.tty) a.push('--tty');
    if (opts.detach) a.push('--detach');
    if (opts.pidFile) a.push('--pid-file', opts.pidFile);
    a.push(id);
    return spawnProcess(this.bin, a, stdio);
  }
}

/** Maps a runtime's start error to Docker's exit codes: 127 not found, 126 not executable, else 125. */
export function classifyStartError(message: string): BerthError {
  const clean = message.replace(/^.*?(exec: |exec failed: )/s, 'exec: ').trim();
  if (/executable file not found|no such file or directory/i.test(message)) {
    return new BerthError('command-not-found', clean);
  }
  if (/permission denied|exec format error|is a directory/i.test(message)) return new BerthError('cannot-invoke', clean);
  return new BerthError('internal', message.trim());
}
