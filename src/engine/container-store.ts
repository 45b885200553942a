import { existsSync, mkdirSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Paths } from '../base/paths.js';
import { atomicWriteJson, readJsonIf, withLockSync } from '../base/fsutil.js';
import { conflict, invalidArgument, notFound } from '../base/errors.js';
import type { ContainerRecord, ExitRecord } from './container.js';
import { isValidName } from './names.js';

/**
 * Container records under containers/<id>/. Creating and renaming take the `containers` lock so names stay unique
 * across concurrent berth processes; each record is replaced atomically.
 */
export class ContainerStore {
  constructor(readonly paths: Paths) {}

  dir(id: string): string {
    return this.paths.container(id);
  }

  file(id: string, name: string): string {
    return join(this.paths.container(id), name);
  }

  ids(): string[] {
    if (!existsSync(this.paths.containers)) return [];
    return readdirSync(this.paths.containers).filter((n) => /^[a-f0-9]{64}$/.test(n));
  }

  read(id: string): ContainerRecord | undefined {
    const rec = readJsonIf<ContainerRecord>(this.file(id, 'container.json'));
    return rec ? this.reconcile(rec) : undefined;
  }

  list(): ContainerRecord[] {
    return this.ids().map((id) => this.read(id)).filter((r): r is ContainerRecord => !!r);
  }

  save(rec: ContainerRecord): void {
    atomicWriteJson(this.file(rec.Id, 'container.json'), rec, { durable: false });
  }

  /** Applies a change to the current record under the container's lock and saves it. */
  update(id: string, fn: (rec: ContainerRecord) => void): ContainerRecord {
    return withLockSync(this.paths.lock(`ctr-${id}`), () => {
      const rec = this.read(id);
      if (!rec) throw notFound(`No such container: ${id}`);
      fn(rec);
      this.save(rec);
      return rec;
    });
  }

  /** Reserves the name and writes the record's directory. */
  create(rec: ContainerRecord): void {
    const name = rec.Name.replace(/^\//, '');
    if (!isValidName(name)) throw invalidArgument(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    withLockSync(this.paths.lock('containers'), () => {
      const taken = this.list().find((c) => c.Name === rec.Name);
      if (taken) {
        throw conflict(`Conflict. The container name "${rec.Name}" is already in use by container "${taken.Id}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
      mkdirSync(this.dir(rec.Id), { recursive: true, mode: 0o710 });
      this.save(rec);
      this.sweepLocks();
    });
  }

  /** Removes lock files of containers that no longer exist (a monitor that removed a `--rm` container leaves them). */
  private sweepLocks(): void {
    const dir = join(this.paths.root, 'locks');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const m = /^(?:ctr|start|rm)-([a-f0-9]{64})\.lock$/.exec(n);
      if (m && !existsSync(this.dir(m[1]!))) rmSync(join(dir, n), { force: true });
    }
  }

  rename(id: string, newName: string): void {
    if (!isValidName(newName)) throw invalidArgument(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    withLockSync(this.paths.lock('containers'), () => {
      const taken = this.list().find((c) => c.Name === `/${newName}`);
      if (taken) throw conflict(`Conflict. The container name "/${newName}" is already in use by container "${taken.Id}". You have to remove (or rename) that container to be able to reuse that name.`);
      this.update(id, (r) => { r.Name = `/${newName}`; });
    });
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** Finds a container by full id, unique id prefix, or name (with or without the leading slash). */
  resolve(ref: string): ContainerRecord {
    if (/^[a-f0-9]{64}$/.test(ref)) {
      const direct = this.read(ref);
      if (direct) return direct;
    }
    const all = this.list();
    const byName = all.find((c) => c.Name === `/${ref.replace(/^\//, '')}`);
    if (byName) return byName;
    const byId = all.filter((c) => c.Id.startsWith(ref));
    if (ref.length > 0 && byId.length === 1) return byId[0]!;
    if (byId.length > 1 && /^[a-f0-9]+$/.test(ref)) throw invalidArgument(`multiple containers found with provided prefix: ${ref}`);
    throw notFound(`No such container: ${ref}`);
  }

  /**
   * Folds what happened while no berth command was looking into the record: the monitor's exit.json, or a
   * monitor that died without writing one.
   */
  private reconcile(rec: ContainerRecord): ContainerRecord {
    const s = rec.State;
    if (!s.Running) return rec;
    const exit = readJsonIf<ExitRecord>(this.file(rec.Id, 'exit.json'));
    if (exit) {
      Object.assign(s, {
        Status: 'exited', Running: false, Paused: false, Pid: 0, ExitCode: exit.exitCode,
        OOMKilled: exit.oomKilled, FinishedAt: exit.finishedAt,
      });
    } else if (!this.monitorAlive(rec.Id)) {
      // A monitor that vanished without a record (kill -9, reboot): the container cannot be running.
      if (existsSync(this.file(rec.Id, 'exit.json'))) return this.reconcile(rec);
      Object.assign(s, { Status: 'exited', Running: false, Paused: false, Pid: 0, ExitCode: 255, Error: 'container monitor exited unexpectedly', FinishedAt: new Date().toISOString() });
    } else {
      return rec;
    }
    try {
      this.save(rec);
    } catch {
      // Best effort: a read-only caller still sees the reconciled state.
    }
    return rec;
  }

  monitorAlive(id: string): boolean {
    let pid: number;
    try {
      pid = Number(readFileSync(this.file(id, 'monitor.pid'), 'utf8').trim());
    } catch {
      return false;
    }
    if (!pid) return false;
    try {
      process.kill(pid, 0);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmd.includes('berth-monitor') && cmd.includes(id);
    } catch {
      return false;
    }
  }
}
