import { chmodSync, chownSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A unix socket at `path` that forwards every connection to the ssh-agent socket `agent`, for one RUN step's
 * `--mount=type=ssh`: the step sees a socket owned and moded as the mount asks (the agent's own socket keeps its
 * owner), and nothing of the keys. Closing it ends the connections still open.
 */
export async function forwardAgent(agent: string, path: string, o: { uid: number; gid: number; mode: number }): Promise<{ close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(agent);
    open.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    chownSync(path, o.uid, o.gid);
    chmodSync(path, o.mode);
  } catch (e) {
    server.close();
    throw e;
  }
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
