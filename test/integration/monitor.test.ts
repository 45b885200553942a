/**
 * Integration tests for monitor/berth-monitor (the per-container monitor, written in C).
 *
 * Needs: root, runc at /usr/sbin/runc, static busybox at /usr/bin/busybox, make + gcc, cgroup v1 memory controller
 * for the OOM case. Each test gets its own temp dir and runtime root; everything (runc state, processes, files) is
 * removed in t.after(), also when an assertion fails.
 */
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const monitorBin = path.join(repo, 'monitor', 'berth-monitor');
const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/usr/bin/busybox';
const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const f of [RUNC, BUSYBOX]) if (!fs.existsSync(f)) return `needs ${f}`;
  return false;
}

// ---------- fixtures ----------

let shared: string; // holds the read-only rootfs used by every container
let rootfs: string;

function makeRootfs(dir: string): void {
  for (const d of ['bin', 'proc', 'dev', 'tmp', 'etc']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'sleep', 'tty', 'stty', 'head', 'tr', 'printf', 'ls', 'true']) {
    fs.symlinkSync('busybox', path.join(dir, 'bin', applet));
  }
  // Executable but not a valid binary: runc create succeeds, the exec fails at start.
  fs.writeFileSync(path.join(dir, 'bin/badfmt'), 'garbage\0\x01\x02', { mode: 0o755 });
}

interface ConfigOptions {
  terminal?: boolean;
  memoryLimit?: number;
  cgroupsPath?: string;
}

/** A minimal OCI runtime config (shape learned from `runc spec`). */
function ociConfig(args: string[], o: ConfigOptions = {}): object {
  const linux: Record<string, unknown> = {
    namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }],
  };
  if (o.cgroupsPath) linux.cgroupsPath = o.cgroupsPath;
  if (o.memoryLimit) linux.resources = { memory: { limit: o.memoryLimit, swap: o.memoryLimit } };
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: o.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/bin', 'TERM=xterm'],
      cwd: '/',
    },
    root: { path: rootfs, readonly: true },
    hostname: 'monitor-test',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
      },
    ],
    linux,
  };
}

interface Fixture {
  tmp: string;
  runtimeRoot: string;
  bundle: string;
  dir: string;
  logPath: string;
  id: string;
  monitorPid?: number;
}

let seq = 0;

/** A bundle, runtime root and container dir in a fresh temp dir; removed (with any runc state) after the test. */
function fixture(t: TestContext, args: string[], o: ConfigOptions = {}): Fixture {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-monitor-'));
  const id = `mon-${process.pid}-${++seq}`;
  const fx: Fixture = {
    tmp,
    id,
    runtimeRoot: path.join(tmp, 'runc'),
    bundle: path.join(tmp, 'bundle'),
    dir: path.join(tmp, 'ctr'),
    logPath: path.join(tmp, 'ctr', 'ctr-json.log'),
  };
  for (const d of [fx.bundle, fx.dir]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(fx.bundle, 'config.json'), JSON.stringify(ociConfig(args, o)));
  t.after(() => {
    if (fx.monitorPid && alive(fx.monitorPid)) process.kill(fx.monitorPid, 'SIGKILL');
    spawnSync(RUNC, ['--root', fx.runtimeRoot, 'delete', '--force', fx.id], { stdio: 'ignore' });
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return fx;
}

// ---------- processes ----------

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Started {
  /** The one JSON line the monitor wrote to the sync fd. */
  sync: { pid?: number; error?: string };
  /** Exit code of the process berth spawned (the monitor's first process). */
  firstExit: number | null;
}

/** Spawns the monitor as berth does: stdio ignored, the sync pipe as fd 3. */
async function startMonitor(fx: Fixture, extra: string[] = []): Promise<Started> {
  const args = [
    '--runtime', RUNC, '--runtime-root', fx.runtimeRoot, '--id', fx.id, '--bundle', fx.bundle,
    '--dir', fx.dir, '--log-path', fx.logPath, '--sync-fd', '3', ...extra,
  ];
  const child = spawn(monitorBin, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const firstExit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const syncStream = child.stdio[3] as net.Socket;
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    syncStream.on('data', (b: Buffer) => chunks.push(b));
    syncStream.on('end', resolve);
    syncStream.on('error', reject);
  });
  const text = Buffer.concat(chunks).toString();
  assert.match(text, /^\{.*\}\n$/, `one JSON line on the sync fd, got ${JSON.stringify(text)}`);
  const pidText = readIf(path.join(fx.dir, 'monitor.pid'));
  if (pidText) fx.monitorPid = Number(pidText);
  return { sync: JSON.parse(text), firstExit: await firstExit };
}

function readIf(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function runc(fx: Fixture, ...args: string[]): string {
  return execFileSync(RUNC, ['--root', fx.runtimeRoot, ...args], { encoding: 'utf8' });
}

/** Waits until the monitor is done and checks it left nothing behind but exit.json and the logs. */
async function waitDone(fx: Fixture): Promise<ExitInfo> {
  assert.ok(fx.monitorPid, 'monitor.pid was written');
  await waitFor('the monitor to exit', () => !alive(fx.monitorPid!));
  assert.equal(runc(fx, 'list', '-q').trim(), '', 'no runc state left');
  for (const f of ['attach.sock', 'ctl', 'console.sock', 'pid', 'monitor.pid']) {
    assert.ok(!fs.existsSync(path.join(fx.dir, f)), `${f} removed`);
  }
  assert.deepEqual(processesMentioning(fx.tmp), [], 'no process left that refers to the test dir');
  return readExit(fx);
}

interface ExitInfo {
  exitCode: number;
  oomKilled: boolean;
  signal: number | null;
  finishedAt: string;
}

function readExit(fx: Fixture): ExitInfo {
  const info = JSON.parse(fs.readFileSync(path.join(fx.dir, 'exit.json'), 'utf8')) as ExitInfo;
  assert.match(info.finishedAt, RFC3339_NANO);
  assert.ok(Math.abs(Date.parse(info.finishedAt) - Date.now()) < 60_000, 'finishedAt is now-ish');
  return info;
}

/** Live processes whose command line contains needle (the monitor's has its paths; zombies have none). */
function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = readIf(`/proc/${pid}/cmdline`);
    if (cmd?.includes(needle)) found.push(`${pid}: ${cmd.replaceAll('\0', ' ')}`);
  }
  return found;
}

/** VmRSS (now) or VmHWM (peak) of a process, in kB. */
function memKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `${field} in /proc/<pid>/status`);
  return Number(m[1]);
}

// ---------- logs ----------

interface LogEntry {
  log: string;
  stream: string;
  time: string;
}

function readLog(file: string): LogEntry[] {
  const text = fs.readFileSync(file, 'utf8');
  if (text === '') return [];
  assert.ok(text.endsWith('\n'), 'log ends with a complete line');
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const e = JSON.parse(line) as LogEntry;
      assert.deepEqual(Object.keys(e), ['log', 'stream', 'time']);
      assert.match(e.time, RFC3339_NANO);
      return e;
    });
}

function joined(entries: LogEntry[], stream: string): string {
  return entries.filter((e) => e.stream === stream).map((e) => e.log).join('');
}

// ---------- attach ----------

interface Frame {
  type: number;
  data: Buffer;
}

/** An attach connection that parses the monitor's frames. */
class AttachClient {
  readonly frames: Frame[] = [];
  bytes = 0;
  private pending = Buffer.alloc(0);
  readonly closed: Promise<void>;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (b: Buffer) => {
      this.bytes += b.length;
      this.pending = Buffer.concat([this.pending, b]);
      while (this.pending.length >= 8) {
        const len = this.pending.readUInt32BE(4);
        assert.deepEqual([...this.pending.subarray(1, 4)], [0, 0, 0], 'frame header bytes 1..3 are zero');
        if (this.pending.length < 8 + len) break;
        this.frames.push({ type: this.pending[0]!, data: this.pending.subarray(8, 8 + len) });
        this.pending = this.pending.subarray(8 + len);
      }
    });
    this.closed = new Promise((resolve) => sock.on('close', () => resolve()));
    sock.on('error', () => {});
  }

  static connect(fx: Fixture): Promise<AttachClient> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(path.join(fx.dir, 'attach.sock'));
      sock.once('connect', () => resolve(new AttachClient(sock)));
      sock.once('error', reject);
    });
  }

  text(type: number): string {
    return Buffer.concat(this.frames.filter((f) => f.type === type).map((f) => f.data)).toString();
  }

  exit(): ExitInfo | undefined {
    const f = this.frames.find((x) => x.type === 3);
    return f ? (JSON.parse(f.data.toString()) as ExitInfo) : undefined;
  }
}

// ---------- tests ----------

describe('berth-monitor', { skip: skipReason() }, () => {
  before(() => {
    execFileSync('make', ['-s', '-C', path.join(repo, 'monitor')], { stdio: 'inherit' });
    shared = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-monitor-rootfs-'));
    rootfs = path.join(shared, 'rootfs');
    makeRootfs(rootfs);
  });
  after(() => {
    if (shared) fs.rmSync(shared, { recursive: true, force: true });
  });

  it('separates stdout and stderr, logs json-file entries and propagates the exit code', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', 'echo out1; echo err1 >&2; echo out2; printf tail; exit 3']);
    const started = await startMonitor(fx);
    assert.equal(started.firstExit, 0, 'the process berth spawned exits 0 at once');
    assert.ok(started.sync.pid && started.sync.pid > 1, `sync line has the pid: ${JSON.stringify(started.sync)}`);
    assert.equal(fs.readFileSync(path.join(fx.dir, 'pid'), 'utf8').trim(), String(started.sync.pid));
    assert.equal(fs.statSync(path.join(fx.dir, 'attach.sock')).mode & 0o777, 0o600);
    assert.ok(fs.statSync(path.join(fx.dir, 'ctl')).isFIFO());
    assert.ok(alive(fx.monitorPid!));
    assert.notEqual(fx.monitorPid, process.pid);

    const client = await AttachClient.connect(fx);
    runc(fx, 'start', fx.id);
    await client.closed;
    assert.equal(client.text(1), 'out1\nout2\ntail');
    assert.equal(client.text(2), 'err1\n');
    assert.deepEqual(client.frames.at(-1)?.type, 3, 'the exit frame comes last');
    const exit = await waitDone(fx);
    assert.deepEqual(client.exit(), exit, 'exit frame carries exit.json');
    assert.equal(exit.exitCode, 3);
    assert.equal(exit.signal, null);
    assert.equal(exit.oomKilled, false);

    const log = readLog(fx.logPath);
    // The order between the two pipes is not defined (both can be readable at once); within a stream it is.
    assert.deepEqual(log.filter((e) => e.stream === 'stdout').map((e) => e.log), ['out1\n', 'out2\n', 'tail']);
    assert.deepEqual(log.filter((e) => e.stream === 'stderr').map((e) => e.log), ['err1\n']);
    for (const e of log) assert.ok(Math.abs(Date.parse(e.time) - Date.now()) < 60_000);
  });

  it('pipes stdin with --stdin and closes it when the client shuts down writing', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['cat']);
    const started = await startMonitor(fx, ['--stdin']);
    assert.ok(started.sync.pid);
    const client = await AttachClient.connect(fx);
    runc(fx, 'start', fx.id);
    client.sock.write('hello\n');
    await waitFor('the echo of the first line', () => client.text(1) === 'hello\n');
    client.sock.end('world\n'); // shutdown(SHUT_WR): cat sees EOF and exits
    await client.closed;
    assert.equal(client.text(1), 'hello\nworld\n');
    const exit = await waitDone(fx);
    assert.equal(exit.exitCode, 0);
    assert.equal(joined(readLog(fx.logPath), 'stdout'), 'hello\nworld\n');
  });

  it('discards client input without --stdin', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', 'cat; echo "stdin done"']);
    await startMonitor(fx);
    const client = await AttachClient.connect(fx);
    client.sock.write('ignored\n');
    runc(fx, 'start', fx.id);
    await client.closed;
    assert.equal(client.text(1), 'stdin done\n', 'stdin is /dev/null: cat ends at once');
    assert.equal((await waitDone(fx)).exitCode, 0);
  });

  it('runs with a tty: sizes it, resizes it through ctl and takes input', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', 'tty; stty size; read line; stty size; echo "got $line"; exit 4'], { terminal: true });
    const started = await startMonitor(fx, ['--tty', '--stdin', '--tty-size', '30x100']);
    assert.ok(started.sync.pid, JSON.stringify(started.sync));
    assert.ok(!fs.existsSync(path.join(fx.dir, 'console.sock')), 'console.sock is gone once create finished');
    const client = await AttachClient.connect(fx);
    runc(fx, 'start', fx.id);
    await waitFor('the first stty size', () => client.text(1).includes('30 100'));
    assert.match(client.text(1), /^\/dev\/pts\/\d+\r\n30 100\r\n/);
    fs.writeFileSync(path.join(fx.dir, 'ctl'), '1 40 120\n');
    await sleep(100);
    client.sock.write('hi\n');
    await client.closed;
    const out = client.text(1);
    assert.match(out, /hi\r\n40 120\r\ngot hi\r\n$/);
    assert.equal(client.text(2), '', 'a tty has one stream');
    const exit = await waitDone(fx);
    assert.equal(exit.exitCode, 4);
    const log = readLog(fx.logPath);
    assert.ok(log.every((e) => e.stream === 'stdout'));
    assert.equal(joined(log, 'stdout'), out);
  });

  it('works with a container dir too long for a unix socket path', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', 'echo long; exit 5'], { terminal: true });
    fx.dir = path.join(fx.tmp, 'd'.repeat(60), 'e'.repeat(60));
    fx.logPath = path.join(fx.dir, 'ctr-json.log');
    fs.mkdirSync(fx.dir, { recursive: true });
    assert.ok(path.join(fx.dir, 'console.sock').length > 107);
    const started = await startMonitor(fx, ['--tty']);
    assert.ok(started.sync.pid, JSON.stringify(started.sync));
    assert.ok(fs.statSync(path.join(fx.dir, 'attach.sock')).isSocket());
    runc(fx, 'start', fx.id);
    assert.equal((await waitDone(fx)).exitCode, 5);
    assert.equal(joined(readLog(fx.logPath), 'stdout'), 'long\r\n');
  });

  it('reports a failed create through the sync fd and cleans up', { timeout: 60000 }, async (t) => {
    const cases: { args: string[]; tty: boolean; error: string }[] = [
      {
        args: ['/nonexistent'],
        tty: false,
        error: 'runc create failed: unable to start container process: exec: "/nonexistent": stat /nonexistent: no such file or directory',
      },
      {
        args: ['nonexistent'],
        tty: false,
        error: 'runc create failed: unable to start container process: exec: "nonexistent": executable file not found in $PATH',
      },
      {
        args: ['/bin'],
        tty: true,
        error: 'runc create failed: unable to start container process: exec: "/bin": permission denied',
      },
    ];
    for (const c of cases) {
      const fx = fixture(t, c.args, { terminal: c.tty });
      const started = await startMonitor(fx, c.tty ? ['--tty'] : []);
      assert.equal(started.firstExit, 0);
      assert.deepEqual(started.sync, { error: c.error });
      assert.equal(fx.monitorPid, undefined, 'monitor.pid is removed before the error is reported');
      assert.equal(runc(fx, 'list', '-q').trim(), '');
      assert.deepEqual(fs.readdirSync(fx.dir).filter((f) => f !== 'ctr-json.log'), [], 'nothing left in the container dir');
      await waitFor('the monitor to exit', () => processesMentioning(fx.tmp).length === 0);
    }
  });

  it('kills and deletes the created container when setup fails after create', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sleep', '100']);
    fs.mkdirSync(path.join(fx.dir, 'attach.sock')); // a directory in the way: the socket cannot be bound
    const started = await startMonitor(fx);
    assert.deepEqual(started.sync, { error: 'cannot create attach.sock: Address already in use' });
    assert.equal(runc(fx, 'list', '-q').trim(), '', 'the created container was deleted');
    await waitFor('the monitor to exit', () => processesMentioning(fx.tmp).length === 0);
    assert.ok(!fs.existsSync(path.join(fx.dir, 'exit.json')), 'reported through the sync fd instead');
  });

  it('reduces the runtime\'s stderr to its last message', { timeout: 20000 }, async (t) => {
    const cases: { stderr: string; code: number; error: (runtime: string) => string }[] = [
      {
        stderr: 'time="2026-01-01T00:00:00Z" level=warning msg="early"\ntime="2026-01-01T00:00:00Z" level=error msg="a \\"quoted\\" thing\\\\ here"\n',
        code: 1,
        error: () => 'a "quoted" thing\\ here',
      },
      { stderr: 'level=error msg=bare-word\n', code: 1, error: () => 'bare-word' },
      { stderr: 'first line\nplain failure  \n\n', code: 2, error: () => 'plain failure' },
      { stderr: '', code: 3, error: (rt) => `${rt} create: exit status 3` },
    ];
    for (const c of cases) {
      const fx = fixture(t, ['true']);
      const runtime = path.join(fx.tmp, 'fake-runtime');
      fs.writeFileSync(path.join(fx.tmp, 'stderr.txt'), c.stderr);
      fs.writeFileSync(runtime, `#!/bin/sh\ncase " $* " in *" create "*) cat ${fx.tmp}/stderr.txt >&2; exit ${c.code};; esac\nexit 0\n`, { mode: 0o755 });
      const child = spawn(monitorBin, [
        '--runtime', runtime, '--runtime-root', fx.runtimeRoot, '--id', fx.id, '--bundle', fx.bundle, '--dir', fx.dir,
        '--log-path', fx.logPath, '--sync-fd', '3',
      ], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
      let text = '';
      for await (const b of child.stdio[3] as net.Socket) text += String(b);
      assert.deepEqual(JSON.parse(text), { error: c.error(runtime) });
    }
  });

  it('reports a runtime that cannot be run', { timeout: 10000 }, async (t) => {
    const fx = fixture(t, ['true']);
    const args = ['--runtime', path.join(fx.tmp, 'no-runc')];
    const child = spawn(monitorBin, [
      ...args, '--runtime-root', fx.runtimeRoot, '--id', fx.id, '--bundle', fx.bundle, '--dir', fx.dir,
      '--log-path', fx.logPath, '--sync-fd', '3',
    ], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    let text = '';
    for await (const b of child.stdio[3] as net.Socket) text += String(b);
    assert.deepEqual(JSON.parse(text), { error: `cannot run ${path.join(fx.tmp, 'no-runc')}: No such file or directory` });
    assert.deepEqual(fs.readdirSync(fx.dir).filter((f) => f !== 'ctr-json.log'), []);
  });

  it('does not pass its ignored signals or blocked SIGCHLD on to the container', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['cat', '/proc/self/status']);
    await startMonitor(fx);
    runc(fx, 'start', fx.id);
    await waitDone(fx);
    const status = joined(readLog(fx.logPath), 'stdout');
    assert.match(status, /^SigBlk:\s+0+$/m);
    assert.match(status, /^SigIgn:\s+0+$/m);
  });

  it('a binary that cannot be executed fails at start: exit 1 with the error on stderr', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['/bin/badfmt']);
    const started = await startMonitor(fx);
    assert.ok(started.sync.pid, 'create succeeds');
    // runc start exits 0, unless the container already failed and the monitor deleted it while runc was still
    // removing its exec fifo (a race of runc's own cleanup with the monitor's, harmless).
    const r = spawnSync(RUNC, ['--root', fx.runtimeRoot, 'start', fx.id], { encoding: 'utf8' });
    assert.ok(r.status === 0 || /exec\.fifo/.test(r.stderr), r.stderr);
    const exit = await waitDone(fx);
    assert.equal(exit.exitCode, 1);
    assert.deepEqual(
      readLog(fx.logPath).map((e) => [e.stream, e.log]),
      [['stderr', 'exec /bin/badfmt: exec format error\n']],
    );
  });

  it('records the exit and logs of a container nobody is attached to', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', 'echo quiet; exit 7']);
    await startMonitor(fx);
    runc(fx, 'start', fx.id);
    const exit = await waitDone(fx);
    assert.equal(exit.exitCode, 7);
    assert.deepEqual(readLog(fx.logPath).map((e) => e.log), ['quiet\n']);
  });

  it('escapes JSON, keeps UTF-8 and splits lines longer than 16 KiB', { timeout: 30000 }, async (t) => {
    const script = String.raw`printf '\001 \377 "q" \\ \t h\303\251llo \342\234\223\n'; head -c 40000 /dev/zero | tr '\0' a`;
    const fx = fixture(t, ['sh', '-c', script]);
    await startMonitor(fx);
    runc(fx, 'start', fx.id);
    await waitDone(fx);
    const raw = fs.readFileSync(fx.logPath, 'utf8').split('\n')[0]!;
    assert.ok(raw.includes(String.raw`"log":"\u0001 \ufffd \"q\" \\ \t héllo ✓\n"`), raw);
    const log = readLog(fx.logPath);
    assert.equal(log[0]!.log, '\u0001 \ufffd "q" \\ \t héllo ✓\n');
    assert.deepEqual(log.slice(1).map((e) => e.log.length), [16384, 16384, 40000 - 2 * 16384]);
    assert.ok(log.slice(1).every((e) => /^a+$/.test(e.log)));
  });

  it('rotates the log at --log-max-size keeping --log-max-files files', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done']);
    await startMonitor(fx, ['--log-max-size', '2000', '--log-max-files', '3']);
    runc(fx, 'start', fx.id);
    assert.equal((await waitDone(fx)).exitCode, 0);
    const files = fs.readdirSync(fx.dir).filter((f) => f.startsWith('ctr-json.log')).sort();
    assert.deepEqual(files, ['ctr-json.log', 'ctr-json.log.1', 'ctr-json.log.2']);
    const older = [fx.logPath + '.2', fx.logPath + '.1', fx.logPath].map((f) => readLog(f));
    for (const [i, entries] of older.entries()) {
      const size = fs.statSync([fx.logPath + '.2', fx.logPath + '.1', fx.logPath][i]!).size;
      assert.ok(size <= 2000 + 100, `each file stays near the limit (${size})`);
      assert.ok(entries.length > 0);
    }
    const lines = older.flat().map((e) => Number(/^line (\d+)\n$/.exec(e.log)![1]));
    assert.equal(lines.at(-1), 299, 'the newest line is in the current file');
    assert.deepEqual(lines, lines.map((_, i) => lines[0]! + i), 'the kept files hold consecutive lines');
  });

  it('truncates instead of rotating with --log-max-files 1', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done']);
    await startMonitor(fx, ['--log-max-size', '2000', '--log-max-files', '1']);
    runc(fx, 'start', fx.id);
    await waitDone(fx);
    assert.deepEqual(fs.readdirSync(fx.dir).filter((f) => f.startsWith('ctr-json.log')), ['ctr-json.log']);
    const log = readLog(fx.logPath);
    assert.ok(fs.statSync(fx.logPath).size <= 2100);
    assert.equal(log.at(-1)!.log, 'line 299\n');
  });

  it('runs the exit command after cleaning up', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['true']);
    const marker = path.join(fx.tmp, 'marker');
    await startMonitor(fx, [
      '--exit-command', '/bin/sh',
      '--exit-arg', '-c',
      '--exit-arg', `{ echo "args:$0 $1"; ls "${fx.dir}"; } > ${marker}.tmp; mv ${marker}.tmp ${marker}`,
      '--exit-arg', 'first',
      '--exit-arg', 'second',
    ]);
    runc(fx, 'start', fx.id);
    await waitFor('the exit command', () => fs.existsSync(marker));
    await waitDone(fx);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'args:first second\nctr-json.log\nexit.json\n');
  });

  it('stays under 2 MB resident, propagates a kill signal and leaves nothing behind', { timeout: 60000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', "head -c 3000000 /dev/zero | tr '\\0' y; echo; echo ready; exec sleep 1000"]);
    await startMonitor(fx);
    const client = await AttachClient.connect(fx);
    runc(fx, 'start', fx.id);
    await waitFor('all output', () => client.text(1).endsWith('ready\n'), 30000);
    const rss = memKb(fx.monitorPid!, 'VmRSS');
    const peak = memKb(fx.monitorPid!, 'VmHWM');
    t.diagnostic(`monitor after 3 MB of output to a client: VmRSS ${rss} kB, peak (VmHWM) ${peak} kB`);
    assert.ok(rss < 2048, `VmRSS ${rss} kB < 2048 kB`);
    assert.ok(peak < 2048, `VmHWM ${peak} kB < 2048 kB`);
    runc(fx, 'kill', fx.id, 'KILL');
    await client.closed;
    const exit = await waitDone(fx);
    assert.deepEqual([exit.exitCode, exit.signal], [137, 9]);
  });

  it('holds output for a slow client, drops a stuck one after 5 s, loses nothing in the log', { timeout: 60000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', "head -c 4000000 /dev/zero | tr '\\0' x; echo; echo end"]);
    await startMonitor(fx);
    const stuck = await AttachClient.connect(fx);
    stuck.sock.pause();
    const slow = await AttachClient.connect(fx);
    let slept = 0;
    slow.sock.on('data', () => {
      // a reader slower than the container: it must still get everything
      if (slept++ % 20 === 0) {
        slow.sock.pause();
        setTimeout(() => slow.sock.resume(), 50);
      }
    });
    const start = Date.now();
    runc(fx, 'start', fx.id);
    await slow.closed;
    const elapsed = Date.now() - start;
    const exit = await waitDone(fx);
    assert.equal(exit.exitCode, 0);
    assert.equal(slow.text(1), 'x'.repeat(4000000) + '\nend\n', 'the slow client got all output');
    assert.deepEqual(slow.exit(), exit);
    assert.ok(elapsed >= 4500 && elapsed < 20000, `the stuck client held output about 5 s (${elapsed} ms)`);
    stuck.sock.resume();
    await stuck.closed;
    assert.ok(stuck.bytes < 4000000, `the stuck client got ${stuck.bytes} bytes, not all`);
    assert.equal(stuck.exit(), undefined, 'a dropped client gets no exit frame');
    assert.equal(joined(readLog(fx.logPath), 'stdout'), 'x'.repeat(4000000) + '\nend\n', 'the log is complete');
  });

  it('records oomKilled from the cgroup memory.oom_control', { timeout: 60000 }, async (t) => {
    const memCgroup = '/sys/fs/cgroup/memory';
    if (!fs.existsSync(path.join(memCgroup, 'memory.oom_control'))) {
      t.skip('needs the cgroup v1 memory controller');
      return;
    }
    const cg = `/berth-monitor-test-${process.pid}-${Date.now()}`;
    const fx = fixture(t, ['sh', '-c', "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"], {
      cgroupsPath: cg,
      memoryLimit: 16 * 1024 * 1024,
    });
    t.after(() => {
      for (const c of fs.readdirSync('/sys/fs/cgroup')) {
        try {
          fs.rmdirSync(path.join('/sys/fs/cgroup', c, cg));
        } catch {
          // already removed by runc delete, or not a hierarchy
        }
      }
    });
    await startMonitor(fx, ['--oom-file', path.join(memCgroup, cg, 'memory.oom_control')]);
    runc(fx, 'start', fx.id);
    const exit = await waitDone(fx);
    assert.deepEqual([exit.exitCode, exit.signal, exit.oomKilled], [137, 9, true]);
    assert.ok(!fs.existsSync(path.join(memCgroup, cg)), 'runc delete removed the cgroup');
  });

  it('--start runs the container at once and --attach-wait holds its output for the first client', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['sh', '-c', 'echo early; echo early-err >&2; exit 5']);
    const started = await startMonitor(fx, ['--start', '--attach-wait', '10000']);
    assert.ok(started.sync.pid, JSON.stringify(started.sync));
    await sleep(300); // the container has exited by now; its output must wait for the client
    assert.equal(fs.existsSync(path.join(fx.dir, 'exit.json')), false, 'nothing is finished before the client came');
    const client = await AttachClient.connect(fx);
    await client.closed;
    assert.equal(client.text(1), 'early\n');
    assert.equal(client.text(2), 'early-err\n');
    assert.equal(client.exit()?.exitCode, 5);
    await waitDone(fx);
  });

  it('--start reports an executable that does not exist like create does', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['/nonexistent']);
    const started = await startMonitor(fx, ['--start']);
    assert.match(started.sync.error ?? '', /no such file or directory/);
    assert.equal(runc(fx, 'list', '-q').trim(), '');
  });

  it('--cgroup-path deletes the stopped container without the runtime, and --remove-dir removes its directory', { timeout: 30000 }, async (t) => {
    const cg = `/berth-monitor-test-${process.pid}-${Date.now()}`;
    const fx = fixture(t, ['sh', '-c', 'sleep 0.2 & exit 0'], { cgroupsPath: cg, memoryLimit: 64 * 1024 * 1024 });
    t.after(() => {
      for (const c of fs.readdirSync('/sys/fs/cgroup')) spawnSync('rmdir', [path.join('/sys/fs/cgroup', c, cg)], { stdio: 'ignore' });
    });
    // --remove-dir only removes a directory named like a container id
    const dir = path.join(fx.tmp, 'a'.repeat(64));
    fs.mkdirSync(dir);
    fx.dir = dir;
    fx.logPath = path.join(dir, 'log.json');
    await startMonitor(fx, ['--start', '--cgroup-path', cg, '--remove-dir']);
    await waitFor('the monitor to exit', () => !alive(fx.monitorPid!));
    assert.equal(runc(fx, 'list', '-q').trim(), '', 'runtime state removed');
    assert.deepEqual(fs.readdirSync('/sys/fs/cgroup').filter((c) => fs.existsSync(path.join('/sys/fs/cgroup', c, cg))), [], 'cgroups removed');
    assert.equal(fs.existsSync(dir), false, 'container dir removed');
  });

  it('unmounts --rootfs-mount when done', { timeout: 30000 }, async (t) => {
    const fx = fixture(t, ['true']);
    const mnt = path.join(fx.tmp, 'mnt');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
    t.after(() => spawnSync('umount', ['-l', mnt], { stdio: 'ignore' }));
    await startMonitor(fx, ['--rootfs-mount', mnt]);
    runc(fx, 'start', fx.id);
    await waitDone(fx);
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `), 'unmounted');
  });

  it('rejects bad arguments through the sync fd', { timeout: 10000 }, async (t) => {
    const fx = fixture(t, ['true']);
    const started = await startMonitor(fx, ['--tty-size', 'big']);
    assert.equal(started.firstExit, 2);
    assert.deepEqual(started.sync, { error: 'invalid --tty-size (want ROWSxCOLS)' });
  });
});
