import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Berth } from '../lib/berth.js';
import { validateSpec } from '../../src/runtime/schema.js';

// Real runc, overlayfs and cgroups, driven through the berth CLI.
describe('containers', () => {
  const b = new Berth();
  before(() => {
    b.importBusybox();
  });
  after(() => {
    assert.deepEqual(b.destroy(), [], 'berth left kernel state behind');
  });

  it('runs the command as PID 1 in its own PID namespace', () => {
    assert.equal(b.ok(['run', '--rm', 'busybox', 'sh', '-c', 'echo $$']), '1');
    const ps = b.ok(['run', '--rm', 'busybox', 'ps', '-o', 'pid']);
    assert.deepEqual(ps.split('\n').map((s) => s.trim()), ['PID', '1']);
  });

  it('writes OCI bundles that validate against the runtime-spec schema', () => {
    const id = b.ok(['run', '-d', '--init', '-m', '64m', '--cpus', '1', '--pids-limit', '50', '--read-only', '--tmpfs', '/run',
      '-v', `${b.root}/..:/host:ro`, '--cap-drop', 'NET_RAW', '--security-opt', 'no-new-privileges', '-u', 'app', 'busybox', 'sleep', '30']);
    try {
      const spec = JSON.parse(readFileSync(join(b.root, 'containers', id, 'config.json'), 'utf8'));
      validateSpec(spec);
      assert.equal(spec.root.readonly, true);
      assert.equal(spec.process.user.uid, 1000);
      assert.equal(spec.linux.resources.pids.limit, 50);
      assert.deepEqual(spec.process.args.slice(0, 2), ['/dev/init', '--']);
    } finally {
      b.ok(['rm', '-f', id]);
    }
  });

  it('gives the container its own hostname (UTS namespace)', () => {
    assert.equal(b.ok(['run', '--rm', '--hostname', 'box1', 'busybox', 'hostname']), 'box1');
    const id = b.ok(['create', 'busybox', 'hostname']);
    b.ok(['start', id]);
    b.ok(['wait', id]);
    assert.equal(b.ok(['logs', id]), id.slice(0, 12));
    b.ok(['rm', id]);
  });

  it('isolates mounts: the container sees its image, not the host', () => {
    const ls = b.ok(['run', '--rm', 'busybox', 'ls', '/']).split('\n');
    assert.ok(ls.includes('bin') && ls.includes('etc'));
    assert.ok(!ls.includes('work'));
    const mounts = b.ok(['run', '--rm', 'busybox', 'cat', '/proc/self/mounts']);
    assert.match(mounts, /^overlay \/ overlay /m);
    assert.equal(b.run(['run', '--rm', 'busybox', 'ls', b.root]).code, 1, 'the host state root is not visible inside');
  });

  it('writes go to a thin writable layer, never to the image', () => {
    const id = b.ok(['run', '-d', 'busybox', 'sh', '-c', 'echo hello > /etc/greeting; rm /etc/group']);
    b.ok(['wait', id]);
    const diff = b.ok(['diff', id]);
    assert.match(diff, /^A \/etc\/greeting$/m);
    assert.match(diff, /^D \/etc\/group$/m);
    assert.equal(b.run(['run', '--rm', 'busybox', 'cat', '/etc/greeting']).code, 1);
    b.ok(['rm', id]);
  });

  it('propagates exit codes like Docker: own code, 125, 126, 127', () => {
    assert.equal(b.run(['run', '--rm', 'busybox', 'sh', '-c', 'exit 42']).code, 42);
    const nf = b.run(['run', '--rm', 'busybox', 'no-such-command']);
    assert.equal(nf.code, 127);
    assert.match(nf.stderr, /executable file not found/);
    const ni = b.run(['run', '--rm', 'busybox', '/etc/passwd']);
    assert.equal(ni.code, 126);
    assert.match(ni.stderr, /permission denied/);
    const bad = b.run(['run', '--rm', '--no-such-flag', 'busybox', 'true']);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /unknown flag: --no-such-flag/);
    const missing = b.run(['run', '--rm', 'nosuchimage:1.0', 'true']);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /No such image: nosuchimage:1\.0/);
    assert.equal(b.ok(['ps', '-aq']), '', 'no container left by failed runs');
  });

  it('keeps a detached container running after the CLI exits and records its exit', () => {
    const id = b.ok(['run', '-d', '--name', 'det', 'busybox', 'sh', '-c', 'echo out; echo err >&2; sleep 1; exit 3']);
    assert.match(id, /^[a-f0-9]{64}$/);
    assert.equal(b.inspect('det').State.Running, true);
    assert.equal(b.ok(['ps', '--format', '{{.Names}}']), 'det');
    assert.equal(b.ok(['wait', 'det']), '3');
    const st = b.inspect('det').State;
    assert.equal(st.Status, 'exited');
    assert.equal(st.ExitCode, 3);
    const logs = b.run(['logs', 'det']);
    assert.equal(logs.stdout, 'out\n');
    assert.equal(logs.stderr, 'err\n');
    const raw = readFileSync(b.inspect('det').LogPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(raw.map((e) => e.stream).sort(), ['stderr', 'stdout']);
    assert.match(raw[0].time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    b.ok(['rm', 'det']);
  });

  it('records an OOM kill as exit 137 with State.OOMKilled', () => {
    const r = b.run(['run', '--name', 'oom', '-m', '16m', '--memory-swap', '16m', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/dev/null bs=64M count=1']);
    assert.equal(r.code, 137);
    const st = b.inspect('oom').State;
    assert.equal(st.OOMKilled, true);
    assert.equal(st.ExitCode, 137);
    b.ok(['rm', 'oom']);
  });

  it('stops a fork bomb at the pids limit', () => {
    const r = b.run(['run', '--rm', '--pids-limit', '10', 'busybox', 'sh', '-c', 'for i in $(seq 30); do sleep 2 & done; wait; echo done']);
    assert.match(r.stderr, /can't fork|Resource temporarily unavailable/);
  });

  it('sets the CPU quota and shares in the container cgroup', () => {
    const id = b.ok(['run', '-d', '--cpus', '0.5', '--cpu-shares', '512', 'busybox', 'sleep', '30']);
    try {
      const cg = `/sys/fs/cgroup/cpu/berth-${id}`;
      assert.equal(readFileSync(`${cg}/cpu.cfs_quota_us`, 'utf8').trim(), '50000');
      assert.equal(readFileSync(`${cg}/cpu.cfs_period_us`, 'utf8').trim(), '100000');
      assert.equal(readFileSync(`${cg}/cpu.shares`, 'utf8').trim(), '512');
      assert.equal(b.inspect(id).HostConfig.NanoCpus, 500000000);
    } finally {
      b.ok(['rm', '-f', id]);
    }
    assert.equal(existsSync(`/sys/fs/cgroup/cpu/berth-${id}`), false, 'cgroup removed with the container');
  });

  it('mounts the root filesystem read-only with --read-only, with --tmpfs writable', () => {
    const r = b.run(['run', '--rm', '--read-only', 'busybox', 'touch', '/x']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Read-only file system/);
    assert.equal(b.ok(['run', '--rm', '--read-only', '--tmpfs', '/scratch', 'busybox', 'sh', '-c', 'echo ok > /scratch/f && cat /scratch/f']), 'ok');
  });

  it('binds host directories and named volumes', () => {
    const host = join(b.root, '..', 'hostdir');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'in.txt'), 'from host\n');
    assert.equal(b.ok(['run', '--rm', '-v', `${host}:/data`, 'busybox', 'sh', '-c', 'cat /data/in.txt; echo back > /data/out.txt']), 'from host');
    assert.equal(readFileSync(join(host, 'out.txt'), 'utf8'), 'back\n');
    assert.equal(b.run(['run', '--rm', '-v', `${host}:/data:ro`, 'busybox', 'touch', '/data/x']).code, 1);
    b.ok(['volume', 'create', 'vol1']);
    b.ok(['run', '--rm', '-v', 'vol1:/v', 'busybox', 'sh', '-c', 'echo persisted > /v/f']);
    assert.equal(b.ok(['run', '--rm', '-v', 'vol1:/v', 'busybox', 'cat', '/v/f']), 'persisted');
    const inUse = b.ok(['create', '-v', 'vol1:/v', 'busybox', 'true']);
    assert.match(b.run(['volume', 'rm', 'vol1']).stderr, /volume is in use/);
    b.ok(['rm', inUse]);
    b.ok(['volume', 'rm', 'vol1']);
  });

  it('applies Docker default security: capabilities, masked /proc, no-new-privileges', () => {
    const caps = b.ok(['run', '--rm', 'busybox', 'grep', 'CapEff', '/proc/self/status']);
    assert.match(caps, /CapEff:\s+00000000a80425fb/);
    const dropped = b.ok(['run', '--rm', '--cap-drop', 'ALL', 'busybox', 'grep', 'CapEff', '/proc/self/status']);
    assert.match(dropped, /CapEff:\s+0000000000000000/);
    const added = b.ok(['run', '--rm', '--cap-add', 'NET_ADMIN', 'busybox', 'grep', 'CapEff', '/proc/self/status']);
    assert.match(added, /CapEff:\s+00000000a80435fb/);
    // /proc/keys has content on the host; masked, it reads empty.
    assert.equal(b.ok(['run', '--rm', 'busybox', 'sh', '-c', 'wc -c < /proc/keys']), '0');
    assert.match(b.ok(['run', '--rm', 'busybox', 'grep', 'Seccomp:', '/proc/self/status']), /Seccomp:\s+2/);
    assert.match(b.ok(['run', '--rm', '--security-opt', 'no-new-privileges', 'busybox', 'grep', 'NoNewPrivs', '/proc/self/status']), /NoNewPrivs:\s+1/);
    assert.equal(b.run(['run', '--rm', '--cap-add', 'BOGUS', 'busybox', 'true']).code, 125);
  });

  it('resolves --user names from the image /etc/passwd and /etc/group', () => {
    assert.equal(b.ok(['run', '--rm', '-u', 'app', 'busybox', 'id']), 'uid=1000(app) gid=1000(app) groups=50(staff)');
    assert.equal(b.ok(['run', '--rm', '-u', '1234:50', 'busybox', 'id']), 'uid=1234 gid=50(staff)');
    const r = b.run(['run', '--rm', '-u', 'ghost', 'busybox', 'id']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /unable to find user ghost/);
  });

  it('passes env, workdir, entrypoint override and labels', () => {
    const envFile = join(b.root, '..', 'env.list');
    writeFileSync(envFile, '# comment\nFROM_FILE=1\n');
    const out = b.ok(['run', '--rm', '-e', 'A=b', '--env-file', envFile, '-w', '/tmp', 'busybox', 'sh', '-c', 'echo $A $FROM_FILE $(pwd)']);
    assert.equal(out, 'b 1 /tmp');
    assert.equal(b.ok(['run', '--rm', '--entrypoint', '/bin/echo', 'busybox', 'via', 'entrypoint']), 'via entrypoint');
    const id = b.ok(['create', '-l', 'tier=web', 'busybox', 'true']);
    assert.equal(b.ok(['inspect', '-f', '{{index .Config.Labels "tier"}}', id]), 'web');
    assert.equal(b.ok(['ps', '-aq', '--filter', 'label=tier=web']), id.slice(0, 12));
    b.ok(['rm', id]);
  });

  it('refuses name conflicts and unknown containers with a clear error', () => {
    const id = b.ok(['create', '--name', 'taken', 'busybox', 'true']);
    const r = b.run(['create', '--name', 'taken', 'busybox', 'true']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /The container name "\/taken" is already in use/);
    const s = b.run(['stop', 'nosuch']);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /No such container: nosuch/);
    assert.match(b.run(['run', '--rm', 'BAD::ref', 'true']).stderr, /invalid reference format/);
    b.ok(['rm', id]);
  });

  it('pipes stdin with -i and runs exec in a running container', () => {
    assert.equal(b.ok(['run', '--rm', '-i', 'busybox', 'cat'], { input: 'through stdin\n' }), 'through stdin');
    const id = b.ok(['run', '-d', 'busybox', 'sleep', '30']);
    try {
      assert.equal(b.ok(['exec', id, 'sh', '-c', 'echo $HOME']), '/root');
      assert.equal(b.ok(['exec', '-u', 'app', '-w', '/tmp', '-e', 'X=1', id, 'sh', '-c', 'echo $(id -u) $(pwd) $X']), '1000 /tmp 1');
      assert.equal(b.run(['exec', id, 'sh', '-c', 'exit 7']).code, 7);
      assert.equal(b.run(['exec', id, 'nosuch']).code, 127);
      const top = b.ok(['top', id]);
      assert.match(top, /sleep 30/);
      b.ok(['pause', id]);
      assert.equal(b.inspect(id).State.Status, 'paused');
      b.ok(['unpause', id]);
      const stats = b.ok(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', id]);
      assert.match(stats, / 1$/);
    } finally {
      b.ok(['rm', '-f', id]);
    }
  });

  it('renames, restarts and prunes containers', () => {
    const id = b.ok(['create', '--name', 'first', 'busybox', 'sh', '-c', 'echo run']);
    b.ok(['rename', 'first', 'second']);
    assert.equal(b.inspect('second').Id, id);
    b.ok(['start', 'second']);
    b.ok(['wait', 'second']);
    b.ok(['restart', 'second']);
    b.ok(['wait', 'second']);
    assert.equal(b.ok(['logs', 'second']), 'run\nrun');
    const pruned = b.ok(['container', 'prune', '-f']);
    assert.match(pruned, new RegExp(id));
    assert.equal(b.ok(['ps', '-aq']), '');
  });
});
