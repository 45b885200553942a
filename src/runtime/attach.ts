import { createConnection, type Socket } from 'node:net';
import { openSync, writeSync, closeSync, constants } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { ExitRecord } from '../engine/container.js';

/**
 * Client side of the monitor's attach socket. Output arrives framed as Docker's multiplexed stream
 * (1 stdout, 2 stderr); a final frame of type 3 carries the exit record. Input is sent raw; ending it
 * (half-close) closes the container's stdin.
 */
export interface AttachStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
  /**
   * Filters stdin on its way to the container (the client's detach keys): returns what to send, and whether the
   * client detaches. Detaching closes the connection fully, which leaves the container's stdin open.
   */
  filter?: (chunk: Buffer) => { forward: Buffer; detach: boolean };
  /** Bytes a filter still holds when stdin ends: sent before the end of input. */
  flush?: () => Buffer;
}

/** How an attachment ended: the container's exit record (if the monitor sent one), or a detach by the client. */
export interface AttachEnd {
  exit?: ExitRecord;
  detached: boolean;
}

/**
 * Connects to a unix socket. Paths longer than sun_path's 108 bytes (a container dir under a deep root) go through
 * /proc/self/fd of the opened directory, as the monitor does when it binds.
 */
export function connectAttach(socketPath: string): Promise<Socket> {
  let dirFd: number | undefined;
  let path = socketPath;
  if (Buffer.byteLength(socketPath) >= 108) {
    dirFd = openSync(dirname(socketPath), 'r');
    path = `/proc/self/fd/${dirFd}/${basename(socketPath)}`;
  }
  return new Promise<Socket>((resolve, reject) => {
    const s = createConnection({ path, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  }).finally(() => {
    if (dirFd !== undefined) closeSync(dirFd);
  });
}

/** Pumps a connected attach socket until the monitor closes it or the client detaches. */
export function pumpAttach(sock: Socket, io: AttachStreams): Promise<AttachEnd> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let exit: ExitRecord | undefined;
    let detached = false;
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 8) {
        const len = buf.readUInt32BE(4);
        if (buf.length < 8 + len) break;
        const type = buf[0];
        const payload = buf.subarray(8, 8 + len);
        buf = buf.subarray(8 + len);
        if (type === 1) io.stdout.write(payload);
        else if (type === 2) io.stderr.write(payload);
        else if (type === 3) {
          try {
            exit = JSON.parse(payload.toString()) as ExitRecord;
          } catch {
            // a malformed exit frame: the caller falls back to exit.json
          }
        }
      }
    });
    if (io.stdin) {
      io.stdin.on('data', (d: Buffer) => {
        if (detached) return;
        if (!io.filter) {
          sock.write(d);
          return;
        }
        const { forward, detach } = io.filter(d);
        if (forward.length) sock.write(forward);
        if (detach) {
          detached = true;
          sock.destroy(); // a full close: the monitor leaves the container's stdin open
        }
      });
      io.stdin.on('end', () => {
        if (detached) return;
        const rest = io.flush?.();
        if (rest?.length) sock.write(rest);
        sock.end();
      });
    }
    const done = () => {
      io.stdin?.removeAllListeners('data');
      if (io.stdin && 'pause' in io.stdin) (io.stdin as NodeJS.ReadStream).pause();
      resolve({ detached, ...(exit && !detached ? { exit } : {}) });
    };
    // The monitor closes the connection after the exit frame; with allowHalfOpen the socket would stay
    // half-open (and no longer keep the event loop alive), so finish it here.
    sock.on('end', () => sock.destroy());
    sock.on('close', done);
    sock.on('error', () => sock.destroy());
  });
}

/** Sends a terminal size to the monitor's control FIFO. */
export function resizeTty(ctlPath: string, rows: number, cols: number): void {
  try {
    // Non-blocking: a FIFO whose monitor is gone fails with ENXIO instead of hanging.
    const fd = openSync(ctlPath, constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fd, `1 ${rows} ${cols}\n`);
    closeSync(fd);
  } catch {
    // the container may be gone
  }
}
