import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from '../../src/sys/exec.js';
import { removeCgroups } from '../../src/runtime/cgroups.js';
import {
  bindMount, buildSpec, withArgs, withCapAdd, withCgroupsPath, withCpus, withHostCapabilities, withHostname, withInit,
  withMemory, withMounts, withPidsLimit, withPrivileged, withRlimits, withRootfs, type SpecOption,
} from '../../src/runtime/spec.js';
import { validateSpec } from '../../src/runtime/schema.js';
import { capabilitiesFromMask } from '../../src/security/capabilities.js';

/*
 * Runs containers from buildSpec under the real runc: the generated defaults (capabilities, seccomp, masked and
 * read-only paths, rlimits, cgroup limits) must be accepted by runc 1.1.5 and take effect.
 * Needs: root, runc, a static busybox, cgroup v1 memory controller.
 */
const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/usr/bin/busybox';
const TINI = '/usr/bin/tini-static';
const CGROUP_V1_MEMORY = '/sys/fs/cgroup/memory';

const missing = [
  process.getuid?.() !== 0 && 'root',
  !existsSync(RUNC) && RUNC,
  !existsSync(BUSYBOX) && BUSYBOX,
  !existsSync(join(CGROUP_V1_MEMORY, 'memory.limit_in_bytes')) && 'cgroup v1 memory controller',
].filter(Boolean);
const skip = missing.length ? `needs ${missing.join(', ')}` : false;

function hostLimits(): { nofile: number } {
  const m = /Max open files\s+\S+\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return { nofile: !m || m[1] === 'unlimited' ? Infinity : Number(m[1]) };
}

function hostCapabilities(): string[] {
  return capabilitiesFromMask(/CapBnd:\s*(\w+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]!);
}

/** A bundle with a busybox rootfs and a directory shared with the host at /shared. */
function makeBundle(dir: string): { bundle: string; shared: string } {
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp', 'mnt', 'shared']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  for (const tool of ['sh', 'cat', 'id', 'hostname', 'grep', 'ls', 'touch', 'wc', 'sleep', 'mount', 'tr']) {
    symlinkSync('busybox', join(rootfs, 'bin', tool));
  }
  const shared = join(dir, 'shared');
  mkdirSync(shared);
  return { bundle, shared };
}

/**
 * Runs `script` in a container. The script ends by signalling /shared/ready and waiting for /shared/go, so the
 * container is still running when `whileRunning` looks at it from the host.
 */
async function runContainer(
  state: string,
  id: string,
  dir: string,
  script: string,
  options: SpecOption[],
  whileRunning: () => void = () => {},
): Promise<{ code: number; out: string }> {
  const { bundle, shared } = makeBundle(dir);
  const wait = 'echo > /shared/ready; while [ ! -e /shared/go ]; do sleep 0.05; done';
  const spec = buildSpec(
    withArgs(['/bin/sh', '-c', `${script}\n${wait}`]),
    withRootfs('rootfs'),
    withRlimits(hostLimits()),
    withMounts([bindMount(shared, '/shared')]),
    ...options,
  );
  validateSpec(spec);
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  const signal = AbortSignal.timeout(30_000);
  let exited = false;
  const run = execFile(RUNC, ['--root', state, 'run', '--bundle', bundle, id], { check: false, signal })
    .finally(() => { exited = true; });
  try {
    const deadline = Date.now() + 15_000;
    while (!existsSync(join(shared, 'ready')) && !exited && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (existsSync(join(shared, 'ready'))) whileRunning();
  } finally {
    writeFileSync(join(shared, 'go'), '');
  }
  const r = await run;
  return { code: r.code, out: r.stdout + r.stderr };
}

const field = (out: string, name: string) => new RegExp(`^${name}[:=]\\s*(.*)$`, 'm').exec(out)?.[1]?.trim();

describe('specs from buildSpec under runc', { skip }, () => {
  it('the default spec confines the container and applies cgroup limits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-spec-runc-'));
    const state = join(dir, 'state');
    const id = `berth-test-${randomBytes(4).toString('hex')}`;
    const cgroupsPath = `/${id}`;
    let limit: string | undefined;
    let memsw: string | undefined;
    try {
      const { code, out } = await runContainer(state, id, dir, [
        "grep -E '^(CapEff|CapInh|CapAmb|Seccomp|NoNewPrivs):' /proc/self/status",
        'echo hostname=$(hostname)',
        'echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c)',
        'echo keys=$(cat /proc/keys | wc -c)',
        'echo firmware=$(ls /sys/firmware | wc -l)',
        'touch /proc/sys/kernel/hostname 2>/dev/null; echo touch_proc_sys=$?',
        'touch /sys/x 2>/dev/null; echo touch_sys=$?',
        'mount -t tmpfs t /mnt 2>/dev/null; echo mount=$?',
        'echo nofile=$(ulimit -n)',
        'echo uid=$(id -u)',
      ].join('\n'), [
        withHostname('berthbox'),
        withCgroupsPath(cgroupsPath),
        withMemory(64 * 1024 * 1024),
        withCpus(0.5),
        withPidsLimit(50),
      ], () => {
        const cg = join(CGROUP_V1_MEMORY, cgroupsPath);
        limit = readFileSync(join(cg, 'memory.limit_in_bytes'), 'utf8').trim();
        if (existsSync(join(cg, 'memory.memsw.limit_in_bytes'))) memsw = readFileSync(join(cg, 'memory.memsw.limit_in_bytes'), 'utf8').trim();
      });
      assert.equal(code, 0, out);
      // Docker's 14 capabilities: bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31.
      assert.equal(field(out, 'CapEff'), '00000000a80425fb', out);
      assert.equal(field(out, 'CapInh'), '0000000000000000');
      assert.equal(field(out, 'CapAmb'), '0000000000000000');
      assert.equal(field(out, 'Seccomp'), '2', out);
      assert.equal(field(out, 'hostname'), 'berthbox');
      assert.equal(field(out, 'kcore'), '0', 'masked (and absent on some kernels): nothing readable');
      assert.equal(field(out, 'keys'), '0', '/proc/keys is masked');
      assert.equal(field(out, 'firmware'), '0', '/sys/firmware is masked');
      assert.notEqual(field(out, 'touch_proc_sys'), '0', '/proc/sys is read-only');
      assert.notEqual(field(out, 'touch_sys'), '0', '/sys is read-only');
      assert.notEqual(field(out, 'mount'), '0', 'no CAP_SYS_ADMIN, mount not allowed by seccomp');
      assert.equal(field(out, 'nofile'), String(Math.min(1048576, hostLimits().nofile)));
      assert.equal(field(out, 'uid'), '0');
      assert.equal(limit, String(64 * 1024 * 1024), 'memory limit seen from the host while running');
      if (memsw !== undefined) assert.equal(memsw, String(128 * 1024 * 1024), 'swap defaults to twice the memory');
    } finally {
      await execFile(RUNC, ['--root', state, 'delete', '--force', id], { check: false });
      removeCgroups(cgroupsPath);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(!existsSync(join(CGROUP_V1_MEMORY, cgroupsPath)), 'cgroup removed');
  });

  it('--cap-add SYS_ADMIN opens mount in seccomp; --init runs the process under tini', { skip: !existsSync(TINI) && `needs ${TINI}` }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-spec-runc-'));
    const state = join(dir, 'state');
    const id = `berth-test-${randomBytes(4).toString('hex')}`;
    try {
      const { code, out } = await runContainer(state, id, dir, [
        "grep -E '^Seccomp:' /proc/self/status",
        'mount -t tmpfs t /mnt; echo mount=$?',
        "echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline)",
      ].join('\n'), [
        withCapAdd(['sys_admin']),
        withInit('/dev/init'),
        withMounts([bindMount(TINI, '/dev/init', { readonly: true })]),
      ]);
      assert.equal(code, 0, out);
      assert.equal(field(out, 'Seccomp'), '2');
      assert.equal(field(out, 'mount'), '0', out);
      assert.match(field(out, 'pid1') ?? '', /^\/dev\/init -- \/bin\/sh -c/);
    } finally {
      await execFile(RUNC, ['--root', state, 'delete', '--force', id], { check: false });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('privileged gets every capability the host can grant, no seccomp, writable /proc/sys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-spec-runc-'));
    const state = join(dir, 'state');
    const id = `berth-test-${randomBytes(4).toString('hex')}`;
    const host = hostCapabilities();
    try {
      const { code, out } = await runContainer(state, id, dir, [
        "grep -E '^(CapEff|Seccomp):' /proc/self/status",
        'touch /proc/sys/kernel/hostname 2>/dev/null; echo touch_proc_sys=$?',
      ].join('\n'), [withHostCapabilities(host), withPrivileged()]);
      assert.equal(code, 0, out);
      // Exactly the host's bounding set: asking runc for more (e.g. CAP_SYS_RESOURCE here) fails to start.
      assert.equal(field(out, 'CapEff'), /CapBnd:\s*(\w+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
      assert.equal(field(out, 'Seccomp'), '0');
      assert.equal(field(out, 'touch_proc_sys'), '0');
    } finally {
      await execFile(RUNC, ['--root', state, 'delete', '--force', id], { check: false });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
