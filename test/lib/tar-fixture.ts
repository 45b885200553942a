import { TarWriter, type TarEntry } from '../../src/image/tar.js';

/** A tar entry for tests: a name, and whatever else differs from a root-owned 0644 file (0755 dir) of 2020. */
export type Item = [Partial<TarEntry> & { name: string }, string?];

/** Builds a tar archive in memory from items (content as text), with berth's own TarWriter. */
export async function tarOf(items: Item[]): Promise<Buffer> {
  const w = new TarWriter();
  const parts: Buffer[] = [];
  const done = (async () => {
    for await (const c of w.readable!) parts.push(c as Buffer);
  })();
  for (const [e, content] of items) {
    const body = content === undefined ? undefined : Buffer.from(content);
    const type = e.type ?? (e.name.endsWith('/') ? 'dir' : 'file');
    await w.add({ type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1600000000, size: body?.length ?? 0, ...e }, body);
  }
  await w.finish();
  await done;
  return Buffer.concat(parts);
}
