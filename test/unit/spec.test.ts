import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../../src/base/errors.js';
import {
  baseSpec, buildSpec, bindMount, tmpfsMount, withAnnotations, withArgs, withCapAdd, withCapDrop, withCgroupsPath,
  withCpuShares, withCpus, withCwd, withDevices, withEnv, withHostCapabilities, withHostname, withInit, withMaskedPaths,
  withMemory, withMounts, withNamespace, withNoNewPrivileges, withoutNamespace, withOomScoreAdj, withPidsLimit,
  withPrivileged, withReadonlyPaths, withRlimits, withRootfs, withSeccomp, withSysctls, withTerminal, withUlimits,
  withUser, withoutSeccompArches, type RuntimeSpec,
} from '../../src/runtime/spec.js';
import { validateSpec } from '../../src/runtime/schema.js';
import {
  ALL_CAPABILITIES, DEFAULT_CAPABILITIES, capabilitiesFromMask, normalizeCapability, tweakCapabilities,
} from '../../src/security/capabilities.js';
import { fromDockerProfile, resolveSeccomp, type DockerSeccompProfile } from '../../src/security/seccomp.js';
import { defaultSeccompTemplate } from '../../src/security/seccomp-default.js';

const MiB = 1024 * 1024;

function throwsKind(fn: () => unknown, kind: string, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isBerthError(e), `expected a BerthError, got ${String(e)}`);
    assert.equal(e.kind, kind);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

/** Syscall names the spec's seccomp allows unconditionally (no argument filter). */
function allowed(spec: RuntimeSpec): Set<string> {
  return new Set((spec.linux.seccomp?.syscalls ?? [])
    .filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args?.length).flatMap((r) => r.names));
}

const caps = (spec: RuntimeSpec) => spec.process.capabilities!;

describe('baseSpec', () => {
  const s = baseSpec();

  it('has the process defaults', () => {
    assert.equal(s.ociVersion, '1.0.2');
    assert.equal(s.process.terminal, false);
    assert.deepEqual(s.process.user, { uid: 0, gid: 0 });
    assert.equal(s.process.cwd, '/');
    assert.deepEqual(s.process.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    assert.deepEqual(s.root, { path: 'rootfs', readonly: false });
    assert.equal(typeof s.hostname, 'string');
  });

  it("has Docker's default mounts", () => {
    assert.deepEqual(s.mounts.map((m) => [m.destination, m.type, m.source, (m.options ?? []).join(',')]), [
      ['/proc', 'proc', 'proc', 'nosuid,noexec,nodev'],
      ['/dev', 'tmpfs', 'tmpfs', 'nosuid,strictatime,mode=755,size=65536k'],
      ['/dev/pts', 'devpts', 'devpts', 'nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5'],
      ['/sys', 'sysfs', 'sysfs', 'nosuid,noexec,nodev,ro'],
      ['/sys/fs/cgroup', 'cgroup', 'cgroup', 'ro,nosuid,noexec,nodev'],
      ['/dev/mqueue', 'mqueue', 'mqueue', 'nosuid,noexec,nodev'],
      ['/dev/shm', 'tmpfs', 'shm', 'nosuid,noexec,nodev,mode=1777,size=65536k'],
    ]);
  });

  it('has the namespaces and masked/readonly paths', () => {
    assert.deepEqual(s.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'network', 'cgroup']);
    assert.ok(s.linux.namespaces.every((n) => n.path === undefined));
    assert.deepEqual(s.linux.maskedPaths, [
      '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
      '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
    ]);
    assert.deepEqual(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  });

  it("has Docker's device cgroup rules", () => {
    const rules = s.linux.resources.devices!;
    assert.deepEqual(rules[0], { allow: false, access: 'rwm' });
    assert.deepEqual(rules[1], { allow: true, type: 'c', access: 'm' });
    assert.deepEqual(rules[2], { allow: true, type: 'b', access: 'm' });
    const rest = rules.slice(3).map((r) => `${r.type} ${r.major}:${r.minor ?? '*'} ${r.access}${r.allow ? '' : ' deny'}`);
    assert.deepEqual(rest, [
      'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 1:8 rwm', 'c 1:9 rwm',
      'c 136:* rwm', 'c 10:200 rwm',
    ]);
  });

  it("has Docker's 14 capabilities in bounding, effective and permitted only", () => {
    assert.equal(DEFAULT_CAPABILITIES.length, 14);
    const c = caps(s);
    for (const set of [c.bounding, c.effective, c.permitted]) assert.deepEqual(set, [...DEFAULT_CAPABILITIES]);
    assert.equal(c.inheritable, undefined);
    assert.equal(c.ambient, undefined);
  });

  it('caps RLIMIT_NOFILE at the host hard limit, or at 1048576', () => {
    assert.equal(s.process.rlimits, undefined);
    assert.deepEqual(baseSpec({ nofile: 20000 }).process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 }]);
    assert.deepEqual(baseSpec({ nofile: 4194304 }).process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }]);
    assert.deepEqual(baseSpec({ nofile: Infinity }).process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }]);
  });

  it("has the default seccomp profile resolved for Docker's capabilities", () => {
    const sc = s.linux.seccomp!;
    assert.equal(sc.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(sc.defaultErrnoRet, 1);
    assert.deepEqual(sc.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const names = allowed(s);
    for (const n of ['read', 'write', 'execve', 'chroot', 'arch_prctl', 'ptrace']) assert.ok(names.has(n), n);
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'reboot', 'init_module', 'bpf', 'open_by_handle_at', 'iopl']) {
      assert.ok(!names.has(n), n);
    }
    // Without CAP_SYS_ADMIN: clone only without namespace flags, clone3 fails with ENOSYS so libc falls back.
    const clone = sc.syscalls!.find((r) => r.names.includes('clone'));
    assert.deepEqual(clone?.args, [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }]);
    assert.deepEqual(sc.syscalls!.find((r) => r.names.includes('clone3')), { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    // s390-only and arm-only rules are gone; no unresolved conditions leak into config.json.
    assert.ok(!JSON.stringify(sc).includes('s390_pci_mmio_read'));
    assert.ok(!JSON.stringify(sc).includes('includes'));
    assert.ok(!JSON.stringify(sc).includes('excludes'));
  });

  it('passes schema validation', () => {
    validateSpec(baseSpec({ nofile: 20000 }));
  });
});

describe('process options', () => {
  it('withArgs sets the command and refuses an empty one', () => {
    assert.deepEqual(buildSpec(withArgs(['sh', '-c', 'echo hi'])).process.args, ['sh', '-c', 'echo hi']);
    throwsKind(() => withArgs([]), 'invalid-argument', 'No command specified');
  });

  it('withInit prepends the init whatever the order, once', () => {
    assert.deepEqual(buildSpec(withArgs(['top']), withInit('/dev/init')).process.args, ['/dev/init', '--', 'top']);
    assert.deepEqual(buildSpec(withInit('/dev/init'), withArgs(['top'])).process.args, ['/dev/init', '--', 'top']);
    assert.deepEqual(buildSpec(withArgs(['top']), withInit('/dev/init'), withInit('/sbin/tini')).process.args,
      ['/sbin/tini', '--', 'top']);
  });

  it('withEnv overrides by name in place and appends new names', () => {
    const s = buildSpec(withEnv(['A=1', 'PATH=/bin', 'B=x=y']), withEnv(['A=2']));
    assert.deepEqual(s.process.env, ['PATH=/bin', 'A=2', 'B=x=y']);
  });

  it('withCwd needs an absolute path', () => {
    assert.equal(buildSpec(withCwd('/srv')).process.cwd, '/srv');
    throwsKind(() => withCwd('srv'), 'invalid-argument', "the working directory 'srv' is invalid, it needs to be an absolute path");
  });

  it('withTerminal', () => {
    assert.equal(buildSpec(withTerminal(true)).process.terminal, true);
    assert.equal(buildSpec(withTerminal(true), withTerminal(false)).process.terminal, false);
  });

  it('withUser sets ids and dedupes additional groups', () => {
    assert.deepEqual(buildSpec(withUser({ uid: 1000, gid: 100, additionalGids: [10, 10, 20] })).process.user,
      { uid: 1000, gid: 100, additionalGids: [10, 20] });
    assert.deepEqual(buildSpec(withUser({ uid: 1, gid: 2 })).process.user, { uid: 1, gid: 2 });
    throwsKind(() => withUser({ uid: -1, gid: 0 }), 'invalid-argument', /invalid user or group id/);
  });

  it('withRlimits and withUlimits replace by type', () => {
    const s = buildSpec(withRlimits({ nofile: 20000 }), withUlimits([{ name: 'nproc', soft: 100, hard: 200 }]));
    assert.deepEqual(s.process.rlimits, [
      { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 },
      { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
    ]);
    const t = buildSpec(withRlimits({ nofile: 20000 }), withUlimits([{ name: 'nofile', soft: 1024, hard: 2048 }]));
    assert.deepEqual(t.process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 }]);
    throwsKind(() => withUlimits([{ name: 'nofile', soft: 10, hard: 5 }]), 'invalid-argument',
      'ulimit soft limit must be less than or equal to hard limit: 10 > 5');
    throwsKind(() => withUlimits([{ name: 'bogus', soft: 1, hard: 1 }]), 'invalid-argument', 'invalid ulimit type: bogus');
  });

  it('withNoNewPrivileges and withOomScoreAdj', () => {
    const s = buildSpec(withNoNewPrivileges(), withOomScoreAdj(-500));
    assert.equal(s.process.noNewPrivileges, true);
    assert.equal(s.process.oomScoreAdj, -500);
    throwsKind(() => withOomScoreAdj(1001), 'invalid-argument', 'Invalid value 1001, range for oom score adj is [-1000, 1000]');
  });
});

describe('identity, root and namespaces', () => {
  it('withHostname, withRootfs, withAnnotations', () => {
    const s = buildSpec(withHostname('abc123'), withRootfs('/var/lib/berth/x/merged', true), withAnnotations({ a: '1' }),
      withAnnotations({ b: '2' }));
    assert.equal(s.hostname, 'abc123');
    assert.deepEqual(s.root, { path: '/var/lib/berth/x/merged', readonly: true });
    assert.deepEqual(s.annotations, { a: '1', b: '2' });
    throwsKind(() => withHostname('a b'), 'invalid-argument', 'invalid hostname format: a b');
  });

  it('withoutNamespace shares the host namespace; withNamespace creates or joins one', () => {
    const host = buildSpec(withoutNamespace('network'));
    assert.deepEqual(host.linux.namespaces.map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'cgroup']);
    const none = buildSpec(withoutNamespace('network'), withNamespace('network'));
    assert.ok(none.linux.namespaces.some((n) => n.type === 'network' && n.path === undefined));
    const joined = buildSpec(withNamespace('network', '/run/berth/netns/abc'));
    assert.deepEqual(joined.linux.namespaces.filter((n) => n.type === 'network'), [{ type: 'network', path: '/run/berth/netns/abc' }]);
    const uts = buildSpec(withHostname('h'), withoutNamespace('uts'));
    assert.equal(uts.hostname, undefined);
    throwsKind(() => withNamespace('bogus' as never), 'invalid-argument', 'invalid namespace type: bogus');
  });
});

describe('mounts', () => {
  it('orders parents before children, stably', () => {
    const s = buildSpec(withMounts([
      bindMount('/h/logs', '/data/logs'),
      bindMount('/h/data', '/data/', { readonly: true }),
      tmpfsMount('/run', ['size=64m', 'mode=1777']),
    ]));
    const dests = s.mounts.map((m) => m.destination);
    assert.ok(dests.indexOf('/data') < dests.indexOf('/data/logs'));
    assert.ok(dests.indexOf('/dev') < dests.indexOf('/dev/pts'));
    assert.ok(dests.indexOf('/sys') < dests.indexOf('/sys/fs/cgroup'));
    for (let i = 1; i < dests.length; i++) {
      assert.ok(dests[i - 1]!.split('/').length <= dests[i]!.split('/').length, dests.join(' '));
    }
    assert.deepEqual(s.mounts.find((m) => m.destination === '/data'),
      { destination: '/data', type: 'bind', source: '/h/data', options: ['rbind', 'rprivate', 'ro'] });
    assert.deepEqual(s.mounts.find((m) => m.destination === '/run')?.options, ['noexec', 'nosuid', 'nodev', 'size=64m', 'mode=1777']);
  });

  it('tmpfsMount drops a default the user reverses', () => {
    assert.deepEqual(tmpfsMount('/x', ['exec']).options, ['nosuid', 'nodev', 'exec']);
  });

  it('a user mount on a default destination replaces the default', () => {
    const s = buildSpec(withMounts([tmpfsMount('/dev/shm', ['size=1g'])]));
    const shm = s.mounts.filter((m) => m.destination === '/dev/shm');
    assert.equal(shm.length, 1);
    assert.equal(shm[0]!.source, 'tmpfs');
    assert.ok(shm[0]!.options!.includes('size=1g'));
    assert.equal(s.mounts.length, 7);
  });

  it('a user /dev drops the default mounts below /dev', () => {
    const s = buildSpec(withMounts([bindMount('/dev', '/dev')]));
    assert.deepEqual(s.mounts.map((m) => m.destination).filter((d) => d.startsWith('/dev')), ['/dev']);
  });

  it('refuses relative and duplicate destinations', () => {
    throwsKind(() => withMounts([bindMount('/a', 'a')]), 'invalid-argument', "invalid mount path: 'a' mount path must be absolute");
    throwsKind(() => withMounts([bindMount('/a', '/x'), bindMount('/b', '/x/')]), 'invalid-argument', 'Duplicate mount point: /x');
  });

  it('withMaskedPaths and withReadonlyPaths replace the lists', () => {
    const s = buildSpec(withMaskedPaths([]), withReadonlyPaths(['/proc/sys']));
    assert.deepEqual(s.linux.maskedPaths, []);
    assert.deepEqual(s.linux.readonlyPaths, ['/proc/sys']);
  });

  it('withDevices adds a node and a cgroup rule', () => {
    const s = buildSpec(withDevices([{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, permissions: 'rw' }]));
    assert.deepEqual(s.linux.devices, [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666 }]);
    assert.deepEqual(s.linux.resources.devices!.at(-1), { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' });
  });
});

describe('resources', () => {
  it('--memory alone gives swap = 2x memory', () => {
    assert.deepEqual(buildSpec(withMemory(64 * MiB)).linux.resources.memory, { limit: 64 * MiB, swap: 128 * MiB });
  });

  it('--memory-swap is memory plus swap; -1 is unlimited', () => {
    assert.deepEqual(buildSpec(withMemory(64 * MiB, 100 * MiB)).linux.resources.memory, { limit: 64 * MiB, swap: 100 * MiB });
    assert.deepEqual(buildSpec(withMemory(64 * MiB, 64 * MiB)).linux.resources.memory, { limit: 64 * MiB, swap: 64 * MiB });
    assert.deepEqual(buildSpec(withMemory(64 * MiB, -1)).linux.resources.memory, { limit: 64 * MiB, swap: -1 });
  });

  it('refuses what Docker refuses', () => {
    throwsKind(() => withMemory(64 * MiB, 32 * MiB), 'invalid-argument', 'Minimum memoryswap limit should be larger than memory limit, see usage');
    throwsKind(() => withMemory(1 * MiB), 'invalid-argument', 'Minimum memory limit allowed is 6MB');
    throwsKind(() => withMemory(0, 100 * MiB), 'invalid-argument', 'You should always set the Memory limit when using Memoryswap limit, see usage');
    assert.equal(buildSpec(withMemory(0)).linux.resources.memory, undefined);
    assert.equal(buildSpec(withMemory(0, -1)).linux.resources.memory, undefined);
  });

  it('--cpus is a quota over a 100ms period', () => {
    assert.deepEqual(buildSpec(withCpus(1.5)).linux.resources.cpu, { period: 100000, quota: 150000 });
    assert.deepEqual(buildSpec(withCpus(0.01)).linux.resources.cpu, { period: 100000, quota: 1000 });
    throwsKind(() => withCpus(0), 'invalid-argument', /0\.01/);
    throwsKind(() => withCpus(8, 4), 'invalid-argument', 'range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available');
  });

  it('--cpu-shares, --pids-limit, cgroups path, sysctls', () => {
    const s = buildSpec(withCpus(2), withCpuShares(512), withPidsLimit(100), withCgroupsPath('/berth-abc'),
      withSysctls({ 'net.ipv4.ip_forward': '1' }), withSysctls({ 'kernel.msgmax': '65536' }));
    assert.deepEqual(s.linux.resources.cpu, { period: 100000, quota: 200000, shares: 512 });
    assert.deepEqual(s.linux.resources.pids, { limit: 100 });
    assert.equal(s.linux.cgroupsPath, '/berth-abc');
    assert.deepEqual(s.linux.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.msgmax': '65536' });
    assert.deepEqual(buildSpec(withPidsLimit(-5)).linux.resources.pids, { limit: -1 });
    assert.equal(buildSpec(withPidsLimit(10), withPidsLimit(0)).linux.resources.pids, undefined);
  });
});

describe('capabilities', () => {
  it('names are case-insensitive with or without CAP_', () => {
    assert.equal(normalizeCapability('net_admin'), 'CAP_NET_ADMIN');
    assert.equal(normalizeCapability('CAP_SYS_ADMIN'), 'CAP_SYS_ADMIN');
    assert.equal(normalizeCapability('cap_sys_time'), 'CAP_SYS_TIME');
    assert.equal(normalizeCapability('all'), 'ALL');
  });

  it('an unknown capability is an invalid argument', () => {
    throwsKind(() => withCapAdd(['foo']), 'invalid-argument', 'unknown capability: "CAP_FOO"');
    throwsKind(() => withCapDrop(['CAP_FOO']), 'invalid-argument', 'unknown capability: "CAP_FOO"');
  });

  it('--cap-add adds to every set but inheritable and ambient', () => {
    const c = caps(buildSpec(withCapAdd(['net_admin', 'NET_ADMIN'])));
    assert.deepEqual(c.effective, [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN']);
    assert.deepEqual(c.bounding, c.effective);
    assert.deepEqual(c.permitted, c.effective);
    assert.equal(c.inheritable, undefined);
    assert.equal(c.ambient, undefined);
  });

  it('--cap-drop removes', () => {
    const c = caps(buildSpec(withCapDrop(['chown', 'cap_net_raw'])));
    assert.deepEqual(c.effective, DEFAULT_CAPABILITIES.filter((x) => x !== 'CAP_CHOWN' && x !== 'CAP_NET_RAW'));
  });

  it('drops apply before adds, whatever the option order', () => {
    for (const s of [
      buildSpec(withCapAdd(['NET_ADMIN']), withCapDrop(['NET_ADMIN'])),
      buildSpec(withCapDrop(['NET_ADMIN']), withCapAdd(['NET_ADMIN'])),
    ]) {
      assert.ok(caps(s).effective!.includes('CAP_NET_ADMIN'));
    }
  });

  it('--cap-drop ALL keeps only the added ones', () => {
    assert.deepEqual(caps(buildSpec(withCapDrop(['ALL']), withCapAdd(['chown']))).effective, ['CAP_CHOWN']);
    assert.deepEqual(caps(buildSpec(withCapAdd(['chown']), withCapDrop(['all']))).effective, ['CAP_CHOWN']);
    assert.deepEqual(caps(buildSpec(withCapDrop(['ALL']))).effective, []);
  });

  it('--cap-add ALL grants everything available except the dropped', () => {
    const c = caps(buildSpec(withCapAdd(['ALL']), withCapDrop(['SYS_ADMIN'])));
    assert.deepEqual(c.effective, ALL_CAPABILITIES.filter((x) => x !== 'CAP_SYS_ADMIN'));
    const host = ALL_CAPABILITIES.filter((x) => x !== 'CAP_SYS_RESOURCE');
    assert.deepEqual(caps(buildSpec(withHostCapabilities(host), withCapAdd(['ALL']))).effective, host);
    throwsKind(() => buildSpec(withHostCapabilities(host), withCapAdd(['SYS_RESOURCE'])), 'invalid-argument',
      'capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"');
  });

  it('tweakCapabilities is the pure core', () => {
    assert.deepEqual(tweakCapabilities(['CAP_A' as string], [], []), ['CAP_A']);
    // Dropped from the base, then added back at the end.
    assert.deepEqual(tweakCapabilities(DEFAULT_CAPABILITIES, ['kill'], ['kill']),
      [...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_KILL'), 'CAP_KILL']);
  });

  it("capabilitiesFromMask reads /proc's hex masks", () => {
    const host = capabilitiesFromMask('000001fffeffffff');
    assert.equal(host.length, 40);
    assert.ok(!host.includes('CAP_SYS_RESOURCE'));
    assert.ok(host.includes('CAP_CHECKPOINT_RESTORE'));
    assert.deepEqual(capabilitiesFromMask('0000000000000005'), ['CAP_CHOWN', 'CAP_DAC_READ_SEARCH']);
  });

  it('the seccomp profile follows the final capabilities', () => {
    const admin = buildSpec(withCapAdd(['SYS_ADMIN']));
    const names = allowed(admin);
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3']) assert.ok(names.has(n), n);
    assert.ok(!admin.linux.seccomp!.syscalls!.some((r) => r.action === 'SCMP_ACT_ERRNO'), 'no clone3 ENOSYS rule');
    assert.ok(allowed(buildSpec(withCapAdd(['sys_time']))).has('settimeofday'));
    assert.ok(!allowed(baseSpec()).has('settimeofday'));
    // Dropping CAP_SYS_CHROOT takes chroot out.
    assert.ok(!allowed(buildSpec(withCapDrop(['SYS_CHROOT']))).has('chroot'));
  });
});

describe('privileged', () => {
  const host = ALL_CAPABILITIES.filter((x) => x !== 'CAP_SYS_RESOURCE');

  it('gets every capability, no seccomp, no masked or readonly paths, all devices, writable /sys', () => {
    const s = buildSpec(withPrivileged());
    assert.deepEqual(caps(s).effective, [...ALL_CAPABILITIES]);
    assert.equal(s.linux.seccomp, undefined);
    assert.deepEqual(s.linux.maskedPaths, []);
    assert.deepEqual(s.linux.readonlyPaths, []);
    assert.deepEqual(s.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
    assert.ok(!s.mounts.find((m) => m.destination === '/sys')!.options!.includes('ro'));
    assert.ok(!s.mounts.find((m) => m.destination === '/sys/fs/cgroup')!.options!.includes('ro'));
    validateSpec(s);
  });

  it('means what the host can grant, and overrides --cap-drop and --security-opt seccomp', () => {
    const s = buildSpec(withSeccomp(seccompSample), withCapDrop(['ALL']), withHostCapabilities(host), withPrivileged());
    assert.deepEqual(caps(s).effective, host);
    assert.equal(s.linux.seccomp, undefined);
    const t = buildSpec(withPrivileged(), withCapDrop(['ALL']), withSeccomp(seccompSample));
    assert.deepEqual(caps(t).effective, [...ALL_CAPABILITIES]);
    assert.equal(t.linux.seccomp, undefined);
  });
});

const seccompSample: DockerSeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
  ],
  syscalls: [
    { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
    { name: 'arch_prctl', action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
    { names: ['set_tls'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm', 'arm64'] } },
    { names: ['x86_only_not'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['amd64'] } },
    { names: ['newish'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '9.0' } },
    { names: ['mount'], action: 'SCMP_ACT_ALLOW', comment: 'admin', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  ],
};

describe('seccomp', () => {
  it('narrows a Docker profile to amd64, keeping capability conditions', () => {
    const t = fromDockerProfile(seccompSample, { arch: 'amd64' });
    assert.deepEqual(t.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    assert.deepEqual(t.syscalls.map((r) => r.names.join()), ['read,write', 'arch_prctl', 'newish', 'mount', 'clone3']);
    assert.deepEqual(t.syscalls[3], { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } });
    assert.deepEqual(fromDockerProfile(seccompSample, { arch: 'amd64', kernel: '6.1.0-18-amd64' }).syscalls.map((r) => r.names[0]),
      ['read', 'arch_prctl', 'mount', 'clone3']);
    assert.deepEqual(fromDockerProfile(seccompSample, { arch: 'arm64' }).architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });

  it('resolves capability conditions', () => {
    const t = fromDockerProfile(seccompSample);
    assert.deepEqual(resolveSeccomp(t, []).syscalls!.map((r) => r.names[0]), ['read', 'arch_prctl', 'newish', 'clone3']);
    assert.deepEqual(resolveSeccomp(t, ['CAP_SYS_ADMIN']).syscalls!.map((r) => r.names[0]), ['read', 'arch_prctl', 'newish', 'mount']);
  });

  it('refuses contradictory profiles', () => {
    throwsKind(() => fromDockerProfile({ ...seccompSample, architectures: ['SCMP_ARCH_X86_64'] }), 'invalid-argument', /both 'architectures' and 'archMap'/);
    throwsKind(() => fromDockerProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ALLOW' }] }), 'invalid-argument', /no syscall names/);
  });

  it('withSeccomp takes a profile or unconfined', () => {
    const s = buildSpec(withSeccomp(seccompSample), withCapAdd(['SYS_ADMIN']));
    assert.deepEqual(s.linux.seccomp!.syscalls!.map((r) => r.names[0]), ['read', 'arch_prctl', 'newish', 'mount']);
    assert.equal(buildSpec(withSeccomp('unconfined')).linux.seccomp, undefined);
  });

  it('the committed default profile is Docker-derived and amd64-only', () => {
    const t = defaultSeccompTemplate();
    assert.equal(t.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(t.defaultErrnoRet, 1);
    assert.deepEqual(t.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const all = t.syscalls.flatMap((r) => r.names);
    assert.ok(all.length > 350);
    assert.ok(all.includes('modify_ldt') && all.includes('arch_prctl'));
    assert.ok(!all.includes('riscv_flush_icache') && !all.includes('breakpoint'));
    assert.ok(t.syscalls.some((r) => r.includes?.caps?.includes('CAP_SYS_ADMIN')));
  });
});

describe('validateSpec', () => {
  const full = () => buildSpec(
    withArgs(['/bin/sh', '-c', 'echo hello']), withInit('/dev/init'), withEnv(['HOME=/root', 'TERM=xterm']), withCwd('/root'),
    withTerminal(true), withUser({ uid: 1000, gid: 1000, additionalGids: [10] }), withHostname('0123456789ab'),
    withRootfs('/var/lib/berth/overlay/abc/merged', true), withRlimits({ nofile: 20000 }),
    withMounts([bindMount('/var/lib/berth/containers/abc/hosts', '/etc/hosts'), tmpfsMount('/tmp', ['size=64m']),
      bindMount('/usr/bin/tini-static', '/dev/init', { readonly: true })]),
    withMemory(256 * MiB, 512 * MiB), withCpus(0.5), withCpuShares(512), withPidsLimit(64), withCgroupsPath('/berth-abc'),
    withCapDrop(['NET_RAW']), withCapAdd(['NET_ADMIN']), withNoNewPrivileges(), withOomScoreAdj(100),
    withSysctls({ 'net.core.somaxconn': '1024' }), withAnnotations({ 'io.berth.container.name': 'web' }),
    withNamespace('network', '/run/berth/netns/abc'),
  );

  it('passes for a realistic full spec, also after a JSON round trip', () => {
    const s = full();
    validateSpec(s);
    validateSpec(JSON.parse(JSON.stringify(s)));
  });

  it('fails without ociVersion', () => {
    const s: Record<string, unknown> = { ...full() };
    delete s.ociVersion;
    throwsKind(() => validateSpec(s), 'internal', /invalid runtime spec: .*ociVersion/);
  });

  it('fails for a mount without destination', () => {
    const s = full();
    s.mounts.push({ type: 'tmpfs', source: 'tmpfs' } as never);
    throwsKind(() => validateSpec(s), 'internal', /\/mounts\/\d+ must have required property 'destination'/);
  });

  it('lists several problems at once', () => {
    const s = full() as unknown as { process: { cwd?: string }; linux: { seccomp: { defaultAction: string } } };
    delete s.process.cwd;
    s.linux.seccomp.defaultAction = 'SCMP_ACT_NOPE';
    throwsKind(() => validateSpec(s), 'internal', /\/process must have required property 'cwd'.*\/linux\/seccomp\/defaultAction/);
  });
});

describe('withoutSeccompArches', () => {
  it('leaves the named architectures out of the filter and keeps every rule', () => {
    const full = buildSpec().linux.seccomp!;
    const s = buildSpec(withoutSeccompArches(['SCMP_ARCH_X32'])).linux.seccomp!;
    assert.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    assert.deepEqual(s.syscalls, full.syscalls);
  });

  it('still holds after capabilities change the resolved rules, whatever the option order', () => {
    const a = buildSpec(withoutSeccompArches(['SCMP_ARCH_X32']), withCapAdd(['SYS_ADMIN'])).linux.seccomp!;
    const b = buildSpec(withCapAdd(['SYS_ADMIN']), withoutSeccompArches(['SCMP_ARCH_X32'])).linux.seccomp!;
    assert.deepEqual(a.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    assert.deepEqual(a, b);
    assert.ok(a.syscalls!.some((r) => r.names.includes('mount')));
  });

  it("keeps a user's --security-opt seccomp profile as written", () => {
    const user = withSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }],
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }],
    } as never);
    for (const order of [[user, withoutSeccompArches(['SCMP_ARCH_X32'])], [withoutSeccompArches(['SCMP_ARCH_X32']), user]]) {
      assert.deepEqual(buildSpec(...order).linux.seccomp!.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    }
  });

  it('does not touch the shared default template', () => {
    buildSpec(withoutSeccompArches(['SCMP_ARCH_X32']));
    assert.deepEqual(buildSpec().linux.seccomp!.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  });
});
