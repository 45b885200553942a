import { basename, join } from 'node:path';
import { Paths } from '../base/paths.js';
import { ImageStore } from '../image/store.js';
import { LayerStore } from '../storage/layers.js';
import { VolumeStore } from '../storage/volumes.js';
import { OciRuntime } from '../runtime/runc.js';
import { ContainerStore } from './container-store.js';

export interface EngineOptions {
  root: string;
  /** OCI runtime binary (runc by default). */
  runtime?: string;
}

/** The composition root: one per berth process, holding the stores every use case works on. */
export class Engine {
  readonly paths: Paths;
  readonly images: ImageStore;
  readonly layers: LayerStore;
  readonly containers: ContainerStore;
  readonly volumes: VolumeStore;
  /** The default OCI runtime (global --runtime, else runc); runtimeFor() gives a container's own. */
  readonly runtime: OciRuntime;
  private readonly runtimes = new Map<string, OciRuntime>();

  constructor(opts: EngineOptions) {
    this.paths = new Paths(opts.root);
    this.images = new ImageStore(this.paths.images);
    this.layers = new LayerStore(this.paths, (d) => this.images.blobPath(d));
    this.containers = new ContainerStore(this.paths);
    this.volumes = new VolumeStore(this.paths);
    // Each runtime keeps its state under run/<its name>, whichever way it was chosen.
    const name = opts.runtime ?? 'runc';
    this.runtime = new OciRuntime(name, join(this.paths.root, 'run', basename(name)));
  }

  /**
   * The runtime a container was created with (`run --runtime`): the default one, or another runtime binary with its
   * own state root (run/<name>).
   */
  runtimeFor(rec: { HostConfig: { Runtime: string } }): OciRuntime {
    const name = rec.HostConfig.Runtime;
    if (!name || name === this.runtime.name) return this.runtime;
    let rt = this.runtimes.get(name);
    if (!rt) {
      rt = new OciRuntime(name, join(this.paths.root, 'run', basename(name)));
      this.runtimes.set(name, rt);
    }
    return rt;
  }
}
