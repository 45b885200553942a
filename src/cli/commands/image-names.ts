import type { Engine } from '../../engine/engine.js';

/** The first name of an image, or its short id when it has none (as `docker ps` shows images). */
export function familiarOrId(engine: Engine, id: string): string {
  try {
    const img = engine.images.resolve(id);
    return img.repoTags[0] ?? id.replace(/^sha256:/, '').slice(0, 12);
  } catch {
    return id.replace(/^sha256:/, '').slice(0, 12);
  }
}
