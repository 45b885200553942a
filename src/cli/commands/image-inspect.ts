import type { Engine } from '../../engine/engine.js';
import type { Image } from '../../image/types.js';

/** Docker's `image inspect` shape for a stored image. */
export function imageInspect(engine: Engine, img: Image): Record<string, unknown> {
  const c = img.config;
  const layers = c.rootfs.diff_ids;
  const dirs = layers.map((d) => engine.layers.diffDir(d)).reverse();
  return {
    Id: img.id,
    RepoTags: img.repoTags,
    RepoDigests: img.repoDigests,
    Parent: '',
    Comment: c.history?.at(-1)?.comment ?? '',
    Created: c.created ?? '',
    DockerVersion: '',
    Author: c.author ?? '',
    Config: {
      Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false,
      OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null,
      OnBuild: null, Labels: null, ...(c.config ?? {}),
    },
    Architecture: c.architecture,
    ...(c.variant ? { Variant: c.variant } : {}),
    Os: c.os,
    Size: img.size,
    GraphDriver: {
      Name: 'overlay',
      Data: dirs.length ? { LowerDir: dirs.slice(1).join(':') || undefined, UpperDir: dirs[0], MergedDir: undefined, WorkDir: undefined } : null,
    },
    RootFS: { Type: 'layers', Layers: layers },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
    Descriptor: { mediaType: img.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', digest: img.manifestDigest, size: engine.images.blobSize(img.manifestDigest) },
  };
}
