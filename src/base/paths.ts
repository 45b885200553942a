import { join } from 'node:path';

/**
 * The on-disk layout under one state root (default /var/lib/berth, --root / BERTH_ROOT):
 *
 *   images/                 OCI image layout (oci-layout, index.json, blobs/sha256/...)
 *   layers/<diffid hex>/    one unpacked layer: diff/ (overlay lowerdir), written once, shared
 *   containers/<id>/        container.json, bundle config.json, upper/, work/, rootfs/, logs, exit.json
 *   volumes/<name>/         volume.json and _data/
 *   run/<runtime>/          each OCI runtime's state root (run/runc by default)
 *   locks/                  flock files, one per concern
 *   tmp/                    scratch space on the same filesystem (for atomic renames)
 */
export class Paths {
  constructor(readonly root: string) {}
  get images(): string { return join(this.root, 'images'); }
  get layers(): string { return join(this.root, 'layers'); }
  layer(diffIdHex: string): string { return join(this.root, 'layers', diffIdHex); }
  get containers(): string { return join(this.root, 'containers'); }
  container(id: string): string { return join(this.root, 'containers', id); }
  get volumes(): string { return join(this.root, 'volumes'); }
  volume(name: string): string { return join(this.root, 'volumes', name); }
  lock(name: string): string { return join(this.root, 'locks', `${name}.lock`); }
  get tmp(): string { return join(this.root, 'tmp'); }
}

export const DEFAULT_ROOT = '/var/lib/berth';

export function rootFromEnv(flag?: string): string {
  return flag ?? process.env.BERTH_ROOT ?? DEFAULT_ROOT;
}
