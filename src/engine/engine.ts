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
  readonly runtime: OciRuntime;

  constructor(opts: EngineOptions) {
    this.paths = new Paths(opts.root);
    this.images = new ImageStore(this.paths.images);
    this.layers = new LayerStore(this.paths, (d) => this.images.blobPath(d));
    this.containers = new ContainerStore(this.paths);
    this.volumes = new VolumeStore(this.paths);
    this.runtime = new OciRuntime(opts.runtime ?? 'runc', this.paths.runtimeRoot);
  }
}
