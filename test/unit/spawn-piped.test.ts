import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { spawnDaemon, spawnPiped } from '../../src/sys/exec.js';

// The native posix_spawn paths of src/sys/exec.ts: a program's output through pipes, its exit code or signal, a
// program that does not exist, and no descriptor left open in berth afterwards.

/**
 * The pipes berth holds open, as "fd:pipe:[inode]". Only pipes are compared: the test runner and libuv open and close
 * descriptors of their own at any time (a plain count of /proc/self/fd once differed by one in CI), but a pipe that
 * spawnPiped made and did not close stays listed here.
 */
function openPipes(): Set<string> {
  const pipes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('pipe:')) pipes.add(`${fd}:${target}`);
    } catch {
      // closed while listed (the directory's own descriptor)
    }
  }
  return pipes;
}

/** The pipes open now that were not before. */
const newPipes = (before: Set<string>) => [...openPipes()].filter((p) => !before.has(p));

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = spawnPiped(cmd, args);
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { code: await p.exited, out, err };
}

describe('spawnPiped', () => {
  // The first socket and the first wait set up descriptors of Node's own that stay (not leaks).
  before(async () => void (await run('/bin/true', [])));

  it('relays stdout and stderr apart and gives the exit code', async () => {
    const before = openPipes();
    const r = await run('/bin/sh', ['-c', 'echo out; echo err >&2; head -c 200000 /dev/zero | tr "\\0" x; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.err, 'err\n');
    assert.equal(r.out.length, 'out\n'.length + 200000);
    assert.deepEqual(newPipes(before), []);
  });

  it('gives 128+signal for a killed program, and stdin is /dev/null', async () => {
    assert.equal((await run('/bin/sh', ['-c', 'cat; kill -TERM $$'])).code, 128 + 15);
  });

  it('waits for every holder of the pipes (a background child keeps them open)', async () => {
    const t0 = Date.now();
    const r = await run('/bin/sh', ['-c', '(sleep 0.3; echo late) & echo early']);
    assert.equal(r.out, 'early\nlate\n');
    assert.ok(Date.now() - t0 >= 250);
  });

  it('throws for a program that does not exist, leaving no descriptor open', () => {
    const before = openPipes();
    assert.throws(() => spawnPiped('/nonexistent/program', []), /ENOENT|No such file/);
    assert.deepEqual(newPipes(before), []);
  });
});

describe('spawnDaemon', () => {
  it("returns what the program wrote on fd 3 once every holder closed it", async () => {
    assert.equal(await spawnDaemon('/bin/sh', ['-c', 'echo ready >&3']), 'ready\n');
  });
});
