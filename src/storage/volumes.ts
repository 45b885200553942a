import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Paths } from '../base/paths.js';
import { atomicWriteJson, readJsonIf, withLockSync } from '../base/fsutil.js';
import { conflict, invalidArgument, notFound } from '../base/errors.js';

/** A named or anonymous local volume: volumes/<name>/volume.json and its data in volumes/<name>/_data. */
export interface Volume {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Scope: 'local';
  /** berth: true for volumes created for an image VOLUME without a name (removed by `rm -v`). */
  Anonymous?: boolean;
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class VolumeStore {
  constructor(private readonly paths: Paths) {}

  private meta(name: string): string {
    return join(this.paths.volume(name), 'volume.json');
  }

  get(name: string): Volume {
    const v = readJsonIf<Volume>(this.meta(name));
    if (!v) throw notFound(`get ${name}: no such volume`);
    return v;
  }

  exists(name: string): boolean {
    return existsSync(this.meta(name));
  }

  list(): Volume[] {
    if (!existsSync(this.paths.volumes)) return [];
    return readdirSync(this.paths.volumes)
      .map((n) => readJsonIf<Volume>(this.meta(n)))
      .filter((v): v is Volume => !!v)
      .sort((a, b) => a.Name.localeCompare(b.Name));
  }

  /** Creates a volume; creating one that exists returns it unchanged, as Docker does. */
  create(name?: string, opts: { labels?: Record<string, string>; anonymous?: boolean } = {}): Volume {
    const volName = name ?? randomBytes(32).toString('hex');
    if (!VOLUME_NAME.test(volName)) {
      throw invalidArgument(`create ${volName}: "${volName}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    }
    return withLockSync(this.paths.lock('volumes'), () => {
      const existing = readJsonIf<Volume>(this.meta(volName));
      if (existing) return existing;
      const dir = this.paths.volume(volName);
      mkdirSync(join(dir, '_data'), { recursive: true, mode: 0o755 });
      const v: Volume = {
        Name: volName, Driver: 'local', Mountpoint: join(dir, '_data'), CreatedAt: new Date().toISOString(),
        Labels: opts.labels ?? {}, Options: {}, Scope: 'local', ...(opts.anonymous ? { Anonymous: true } : {}),
      };
      atomicWriteJson(this.meta(volName), v);
      return v;
    });
  }

  /** Removes a volume; `inUseBy` lists containers that mount it (a conflict unless force). */
  remove(name: string, inUseBy: string[], force = false): void {
    if (!this.exists(name)) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    if (inUseBy.length > 0) {
      throw conflict(`remove ${name}: volume is in use - [${inUseBy.join(', ')}]`);
    }
    withLockSync(this.paths.lock('volumes'), () => rmSync(this.paths.volume(name), { recursive: true, force: true }));
  }
}
