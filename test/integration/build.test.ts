import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { Berth, runAsync } from '../lib/berth.js';
import { writeBuildContext, type FileSpec } from '../lib/build-context.js';

// `berth build` through the real CLI: the image config and history a Dockerfile makes, the Dockerfile syntax,
// COPY/ADD semantics, .dockerignore, multi-stage plans and parallel stages, the content-addressed cache and its
// explanations, reproducible images, build secrets (never in a layer, the config, the history or the output),
// malformed input and failing steps, contexts on stdin, and interrupted builds that must leave nothing behind.

const work = mkdtempSync(join(tmpdir(), 'berth-build-test-'));
let ctxSeq = 0;

/** A build context directory made of files (a Dockerfile among them, usually). */
const context = (files: Record<string, FileSpec>): string => writeBuildContext(join(work, `ctx-${++ctxSeq}`), files);

/** Build steps from plain progress output: each "#N [stage i/n] TEXT" with the lines that followed it. */
function steps(out: string): { name: string; lines: string[] }[] {
  const byId = new Map<string, { name: string; lines: string[] }>();
  for (const line of out.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (!m || m[1] === '0') continue;
    const s = byId.get(m[1]!);
    if (s) s.lines.push(m[2]!);
    else byId.set(m[1]!, { name: m[2]!, lines: [] });
  }
  return [...byId.values()];
}

/** The step whose instruction text contains `text`: cached or why it missed. */
function step(out: string, text: string): { cached: boolean; miss?: string; lines: string[] } {
  const s = steps(out).find((x) => x.name.includes(text));
  assert.ok(s, `no step "${text}" in:\n${out}`);
  // "<instruction>: cache miss: <reason>"
  const miss = s.lines.find((l) => l.startsWith(`${s.name.replace(/^\[[^\]]*\] /, '')}: cache miss: `));
  return { cached: s.lines.includes('CACHED'), ...(miss ? { miss: miss.slice(miss.indexOf(': cache miss: ') + ': cache miss: '.length) } : {}), lines: s.lines };
}

/** Whether the process that made a `<prefix><pid>-<random>` name is gone (names of live builds, maybe other roots', are not leftovers). */
function ownerGone(name: string, prefix: string): boolean {
  const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/** What a build may leave behind besides the kernel state Berth.leftovers() checks: temp dirs, secrets, cgroups. */
function buildLeftovers(b: Berth): string[] {
  const out = b.leftovers();
  const tmp = join(b.root, 'tmp');
  if (existsSync(tmp)) for (const n of readdirSync(tmp)) if (/^(build-|berth-build-|from-)/.test(n)) out.push(`tmp ${n}`);
  for (const n of readdirSync('/dev/shm')) {
    for (const prefix of ['berth-secret-', 'berth-build-']) if (n.startsWith(prefix) && ownerGone(n, prefix)) out.push(`/dev/shm/${n}`);
  }
  for (const ctl of readdirSync('/sys/fs/cgroup')) {
    try {
      for (const d of readdirSync(join('/sys/fs/cgroup', ctl))) if (d.startsWith('berth-build-') && ownerGone(d, 'berth-build-')) out.push(`cgroup ${ctl}/${d}`);
    } catch {
      // not a directory
    }
  }
  const runc = join(b.root, 'run', 'runc');
  if (existsSync(runc)) for (const n of readdirSync(runc)) if (!out.includes(`runc state ${n}`)) out.push(`runc state ${n}`);
  return out;
}

/** Every blob of a saved image, decompressed, for grepping. */
function savedBlobs(b: Berth, ref: string): Buffer[] {
  const dir = join(work, `save-${++ctxSeq}`);
  mkdirSync(dir);
  b.ok(['save', '-o', join(dir, 'img.tar'), ref]);
  spawnSync('tar', ['-C', dir, '-xf', join(dir, 'img.tar')]);
  const blobs: Buffer[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, n.name);
      if (n.isDirectory()) walk(p);
      else if (n.name !== 'img.tar') {
        const data = readFileSync(p);
        blobs.push(data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data);
      }
    }
  };
  walk(dir);
  return blobs;
}

/** Names in a layer tar (plain), in order. */
function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const name = h.subarray(0, 100).toString().replace(/\0.*$/s, '');
    const prefix = h.subarray(345, 500).toString().replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString().replace(/\0.*$/s, '').trim() || '0', 8);
    names.push(prefix ? `${prefix}/${name}` : name);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

describe('berth build', { concurrency: false }, () => {
  const b = new Berth();
  before(() => {
    b.importBusybox();
  });
  after(() => {
    const left = buildLeftovers(b);
    const destroyed = b.destroy();
    rmSync(work, { recursive: true, force: true });
    assert.deepEqual(left, []);
    assert.deepEqual(destroyed, []);
  });

  it('writes the config and history a Dockerfile describes, and the image runs', () => {
    const dir = context({
      'hello.txt': 'hello\n',
      Dockerfile: [
        'FROM busybox',
        'LABEL org.example.a="1" b=two',
        'MAINTAINER someone@example.com',
        'ENV APP=/srv/app PATH=/usr/local/bin:/usr/bin:/bin',
        'WORKDIR $APP',
        'COPY --link --chmod=644 hello.txt ./',
        'ARG VERSION=1 NOTE UNSET',
        'RUN echo built > built.txt',
        'USER app',
        'EXPOSE 8080 53/udp',
        'VOLUME ["/data"]',
        'STOPSIGNAL SIGUSR1',
        'HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD ["true"]',
        'SHELL ["/bin/sh", "-ec"]',
        'ONBUILD RUN echo triggered > /onbuild.txt',
        'ENTRYPOINT ["/bin/sh", "-c"]',
        'CMD ["cat built.txt hello.txt"]',
        '',
      ].join('\n'),
    });
    const r = b.run(['build', '-t', 'cfg:1', '-t', 'cfg:latest', '--label', 'extra=yes', '--build-arg', 'NOTE=hi', '--progress', 'plain', dir]);
    assert.equal(r.code, 0, r.stderr);
    const img = b.inspect('cfg:1');
    assert.deepEqual(img.RepoTags.sort(), ['cfg:1', 'cfg:latest']);
    const c = img.Config;
    assert.deepEqual(c.Env, ['PATH=/usr/local/bin:/usr/bin:/bin', 'APP=/srv/app']);
    assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(c.Cmd, ['cat built.txt hello.txt']);
    assert.equal(c.User, 'app');
    assert.equal(c.WorkingDir, '/srv/app');
    assert.deepEqual(c.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
    assert.deepEqual(c.Volumes, { '/data': {} });
    assert.deepEqual(c.Labels, { 'org.example.a': '1', b: 'two', extra: 'yes' });
    assert.equal(c.StopSignal, 'SIGUSR1');
    assert.deepEqual(c.Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9, Timeout: 2e9, Retries: 3 });
    assert.deepEqual(c.Shell, ['/bin/sh', '-ec']);
    assert.deepEqual(c.OnBuild, ['RUN echo triggered > /onbuild.txt']);
    assert.equal(img.Author, 'someone@example.com');
    // busybox's layer, then WORKDIR (creates the directory), COPY, RUN.
    assert.equal(img.RootFS.Layers.length, 4);

    const hist = JSON.parse(b.ok(['image', 'inspect', '--format', '{{json .}}', 'cfg:1'])) as Record<string, unknown>;
    assert.ok(hist);
    const h = b.ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Size}}', 'cfg:1']).split('\n');
    // BuildKit's texts: ONBUILD writes no entry, HEALTHCHECK is Go's %+v of its config, COPY keeps --chmod (not
    // --link), ARG shows the values it took.
    const expected = [
      'CMD ["cat built.txt hello.txt"]|0B',
      'ENTRYPOINT ["/bin/sh" "-c"]|0B',
      'SHELL [/bin/sh -ec]|0B',
      'HEALTHCHECK {Test:[CMD true] Interval:5s Timeout:2s StartPeriod:0s StartInterval:0s Retries:3}|0B',
      'STOPSIGNAL SIGUSR1|0B',
      'VOLUME [/data]|0B',
      'EXPOSE [8080/tcp 53/udp]|0B',
      'USER app|0B',
    ];
    assert.deepEqual(h.slice(0, expected.length), expected);
    assert.match(h[expected.length]!, /^RUN \|3 VERSION=1 NOTE=hi UNSET= \/bin\/sh -c echo built > built.txt # buildkit\|[1-9]/);
    assert.equal(h[expected.length + 1], 'ARG VERSION=1 NOTE=hi UNSET|0B');
    assert.match(h[expected.length + 2]!, /^COPY --chmod=644 hello.txt \.\/ # buildkit\|[1-9]/);
    assert.match(h[expected.length + 3]!, /^WORKDIR \/srv\/app\|[1-9]/);
    assert.deepEqual(h.slice(expected.length + 4, expected.length + 7), ['ENV APP=/srv/app PATH=/usr/local/bin:/usr/bin:/bin|0B', 'MAINTAINER someone@example.com|0B', 'LABEL org.example.a=1 b=two|0B']);

    // The RUN layer holds what the command wrote, and not the mount points of /etc/hosts and friends.
    const layers = savedBlobs(b, 'cfg:1').map(tarNames).filter((n) => n.some((x) => x.includes('built.txt')));
    assert.equal(layers.length, 1);
    assert.deepEqual(layers[0]!.filter((n) => !n.endsWith('/')), ['srv/app/built.txt']);

    assert.equal(b.ok(['run', '--rm', 'cfg:1']), 'built\nhello');
    assert.equal(b.ok(['run', '--rm', 'cfg:1', 'id -u; pwd']), '1000\n/srv/app');
  });

  it('reads directives, comments, continuations, heredocs, both command forms, and scopes ARGs like Docker', () => {
    const dir = context({
      Dockerfile: [
        '# escape=`',
        '# a comment before the first instruction',
        'ARG BASE=busybox',
        'ARG GLOBAL=g1',
        'FROM ${BASE} AS one',
        'ARG GLOBAL',
        'ARG LOCAL=l1',
        'ARG TARGETARCH',
        'ENV E1="x y" `',
        '    # a comment inside a continuation',
        '    E2=${LOCAL:-none} E3=${UNSET:-dflt} E4=${LOCAL:+set}',
        'RUN echo "global=$GLOBAL local=$LOCAL arch=$TARGETARCH e1=$E1 e2=$E2 e3=$E3 e4=$E4" > /args.txt',
        'RUN <<EOT',
        'echo heredoc-run > /h.txt',
        'echo line2 >> /h.txt',
        'EOT',
        'COPY <<-EOT /c.txt',
        '\tinline $LOCAL',
        '\tEOT',
        'COPY <<"EOT" /q.txt',
        'not $expanded',
        'EOT',
        'RUN ["/bin/sh", "-c", "echo exec-form > /e.txt"]',
        'SHELL ["/bin/sh", "-xc"]',
        'RUN echo shelled > /s.txt',
        'FROM one',
        'RUN echo "next stage sees global=[$GLOBAL] local=[$LOCAL]" > /two.txt; cat /args.txt /h.txt /c.txt /q.txt /e.txt /s.txt /two.txt',
        '',
      ].join('\n'),
    });
    const r = b.run(['build', '--progress', 'plain', '--build-arg', 'LOCAL=over', '-t', 'syntax', dir]);
    assert.equal(r.code, 0, r.stderr);
    const out = step(r.stderr, 'next stage sees').lines;
    assert.deepEqual(out.filter((l) => !l.startsWith('+') && !l.includes(': cache miss: ') && !l.startsWith('DONE')), [
      'global=g1 local=over arch=amd64 e1=x y e2=over e3=dflt e4=set',
      'heredoc-run',
      'line2',
      'inline over',
      'not $expanded',
      'exec-form',
      'shelled',
      'next stage sees global=[] local=[]',
    ]);
    // SHELL applies to later RUNs of the stage and of stages built on it: -x traces the command.
    assert.ok(out.includes("+ echo 'next stage sees global=[] local=[]'"), out.join('\n'));
  });

  it('runs a heredoc with "#!" as a program, and takes symbolic --chmod modes', () => {
    const dir = context({
      'tool.sh': 'echo tool\n',
      'docs/readme.txt': 'readme\n',
      Dockerfile: [
        '# syntax=docker/dockerfile:1.7-labs',
        'FROM busybox',
        'RUN <<EOT',
        '#!/bin/cat',
        'printed by cat, which sh would have run as a command',
        'EOT',
        'COPY --chmod=+x tool.sh /bin/tool.sh',
        'COPY --chmod=u=rwX,go=rX docs /docs',
        'RUN stat -c "%a %n" /bin/tool.sh /docs /docs/readme.txt',
        '',
      ].join('\n'),
    });
    chmodSync(join(dir, 'tool.sh'), 0o640);
    chmodSync(join(dir, 'docs/readme.txt'), 0o600);
    const r = b.run(['build', '--progress', 'plain', '-t', 'prog', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(step(r.stderr, 'RUN <<EOT').lines.slice(1, 3), ['#!/bin/cat', 'printed by cat, which sh would have run as a command']);
    assert.deepEqual(step(r.stderr, 'RUN stat').lines.slice(1, 4), ['751 /bin/tool.sh', '755 /docs', '644 /docs/readme.txt']);
    const h = b.ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'prog']).split('\n');
    assert.ok(h.includes('RUN /bin/sh -c /dev/pipes/EOT # buildkit'), h.join('\n'));
    assert.ok(h.includes('COPY --chmod=+x tool.sh /bin/tool.sh # buildkit'), h.join('\n'));
    assert.doesNotMatch(r.stderr, /WARNING/);
    b.ok(['rmi', 'prog']);

    // A frontend other than docker/dockerfile is not run: berth says so and builds with its own.
    const custom = context({ Dockerfile: '# syntax=example.com/custom/frontend:2\nFROM busybox\nRUN true\n' });
    const c = b.run(['build', '--progress', 'plain', custom]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /WARNING: # syntax=example.com\/custom\/frontend:2: berth builds with its own Dockerfile frontend/);
  });

  it('reports malformed Dockerfiles with line and column, and exits 1 (usage errors 125)', () => {
    const cases: [string, RegExp][] = [
      ['FROM busybox\nFOO bar\n', /Dockerfile:2:1: .*unknown instruction: FOO/],
      ['FROM busybox\nRUN <<EOF\necho x\n', /Dockerfile:2:\d+: .*heredoc/],
      ['FROM busybox\nCOPY --frm=x a /b\n', /Dockerfile:2:6: .*unknown flag: --frm/],
      ['FROM busybox\nENV A=${B:?must}\n', /Dockerfile:2:1: .*B: must/],
      ['RUN echo no stage\n', /Dockerfile:1:1: .*no build stage/],
      ['FROM busybox AS a\nFROM busybox\nCOPY --from=a /x /y\n', /Dockerfile:3: .*"\/x" not found/],
    ];
    for (const [text, re] of cases) {
      const r = b.run(['build', '-t', 'never', context({ Dockerfile: text })]);
      assert.equal(r.code, 1, `${text}: ${r.stderr}`);
      assert.match(r.stderr, re, text);
    }
    const missingTarget = b.run(['build', '--target', 'nope', context({ Dockerfile: 'FROM busybox AS a\n' })]);
    assert.equal(missingTarget.code, 1);
    assert.match(missingTarget.stderr, /target stage "nope" could not be found/);
    assert.equal(b.run(['build', '--bogus', '.']).code, 125);
    assert.equal(b.run(['build']).code, 1); // wrong argument count: 1, as Docker
    const noCtx = b.run(['build', join(work, 'does-not-exist')]);
    assert.equal(noCtx.code, 1);
    assert.match(noCtx.stderr, /unable to prepare context: path ".*does-not-exist" not found/);
    assert.equal(b.run(['images', '-q', 'never']).stdout, '');
  });

  it('copies and adds files like Docker: directories, globs, owners, modes, stages, images, excludes, parents, archives, links', () => {
    const archive = join(work, 'archive-src');
    mkdirSync(join(archive, 'x'), { recursive: true });
    writeFileSync(join(archive, 'x/y.txt'), 'from archive\n');
    const dir = context({
      'dir/a.txt': 'a\n',
      'dir/sub/b.txt': 'b\n',
      'dir/skip.md': 'md\n',
      'dir/inner-link': { link: '../c.txt' },
      'c.txt': { data: 'c\n', mode: 0o755 },
      'd.txt': 'd\n',
      'link.txt': { link: 'c.txt' },
      'out': { link: '/etc/shadow' },
      'p/q/r.txt': 'q\n',
      'p/s/r.txt': 's\n',
      'with space.txt': 'space\n',
      Dockerfile: [
        'FROM busybox AS src',
        'RUN mkdir -p /out && echo from-stage > /out/f.txt && ln -s f.txt /out/l.txt',
        'FROM busybox',
        'COPY dir/ /d/',
        'COPY --chown=app:app --chmod=640 c.txt /owned/',
        'COPY *.txt /glob/',
        'COPY --from=src /out/ /fromstage/',
        'COPY --from=0 /out/f.txt /fromindex.txt',
        'COPY --from=busybox /etc/passwd /fromimage-passwd',
        'COPY --exclude=*.md dir /excl/',
        'COPY --parents p/*/r.txt /par/',
        'COPY --link c.txt /linked.txt',
        'ADD archive.tar.gz /unpacked/',
        'ADD --chown=1000:50 --chmod=600 d.txt /added.txt',
        'COPY link.txt /deref.txt',
        'COPY ["with space.txt", "/spaced/"]',
        'COPY . /all/',
        'RUN set -e; cd /; ' + [
          'test "$(cat /d/a.txt /d/sub/b.txt)" = "$(printf "a\\nb")"',
          'test ! -e /d/dir',
          'test "$(stat -c "%u:%g %a" /owned/c.txt /owned)" = "$(printf "1000:1000 640\\n1000:1000 755")"',
          'test "$(ls /glob)" = "$(printf "c.txt\\nd.txt\\nlink.txt\\nwith space.txt")"',
          'test "$(cat /fromstage/f.txt)" = from-stage && test -L /fromstage/l.txt',
          'test "$(cat /fromindex.txt)" = from-stage',
          'grep -q "^root:" /fromimage-passwd',
          'test -f /excl/a.txt && test -f /excl/sub/b.txt && test ! -e /excl/skip.md',
          'test "$(cat /par/p/q/r.txt /par/p/s/r.txt)" = "$(printf "q\\ns")"',
          'test "$(stat -c %a /linked.txt)" = 755',
          'test "$(cat /unpacked/x/y.txt)" = "from archive"',
          'test "$(stat -c "%u:%g %a" /added.txt)" = "1000:50 600"',
          'test ! -L /deref.txt && test "$(cat /deref.txt)" = c',
          'test "$(cat "/spaced/with space.txt")" = space',
          'test "$(readlink /all/out)" = /etc/shadow && test "$(readlink /all/dir/inner-link)" = ../c.txt',
          'test "$(readlink /all/link.txt)" = c.txt',
          'echo all-copy-checks-passed',
        ].join('; '),
        '',
      ].join('\n'),
    });
    spawnSync('tar', ['-C', archive, '-czf', join(dir, 'archive.tar.gz'), 'x']);
    const r = b.run(['build', '--progress', 'plain', '-t', 'copies', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(step(r.stderr, 'set -e').lines.includes('all-copy-checks-passed'));

    // A named symlink is followed only inside the context: one pointing out of it is not there.
    const outward = b.run(['build', context({ 'out': { link: '/etc/passwd' }, 'ldir': { link: '/etc' }, Dockerfile: 'FROM busybox\nCOPY out /x\n' })]);
    assert.equal(outward.code, 1);
    assert.match(outward.stderr, /COPY out \/x: source "out": not found in the build context/);
    const through = b.run(['build', context({ 'ldir': { link: '/etc' }, Dockerfile: 'FROM busybox\nCOPY ldir/passwd /x\n' })]);
    assert.equal(through.code, 1);
    assert.match(through.stderr, /source "ldir\/passwd": not found/);
    const missing = b.run(['build', context({ Dockerfile: 'FROM busybox\nCOPY a.txt nope.txt /x/\n', 'a.txt': 'a' })]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Dockerfile:2: COPY a.txt nope.txt \/x\/: source "nope.txt": not found in the build context/);
    const outside = b.run(['build', context({ Dockerfile: 'FROM busybox\nCOPY ../secret /x\n' })]);
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /source "..\/secret" is outside the build context/);
  });

  it('applies .dockerignore (**, ! exceptions) and <Dockerfile>.dockerignore, and ignored files never invalidate the cache', () => {
    const dir = context({
      '.dockerignore': '**/*.log\nsecret\n!secret/keep.txt\n*.tmp\n',
      'Dockerfile.alt.dockerignore': 'keep.txt\n',
      'a.log': 'log', 'sub/deep/b.log': 'log', 'secret/key.pem': 'KEY', 'secret/keep.txt': 'keep', 'x.tmp': 'tmp', 'keep.txt': 'keep',
      Dockerfile: 'FROM busybox\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sort\n',
      'Dockerfile.alt': 'FROM busybox\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sort | tr "\\n" " "\n',
    });
    const r = b.run(['build', '--progress', 'plain', dir]);
    assert.equal(r.code, 0, r.stderr);
    const files = step(r.stderr, 'find . -type f').lines.filter((l) => l.startsWith('./'));
    assert.deepEqual(files, ['./.dockerignore', './Dockerfile', './Dockerfile.alt', './Dockerfile.alt.dockerignore', './keep.txt', './secret/keep.txt']);

    const alt = b.run(['build', '--progress', 'plain', '-f', join(dir, 'Dockerfile.alt'), dir]);
    assert.equal(alt.code, 0, alt.stderr);
    const altFiles = step(alt.stderr, 'find . -type f').lines.find((l) => l.startsWith('./'))!.trim().split(' ');
    assert.ok(altFiles.includes('./a.log') && altFiles.includes('./secret/key.pem') && !altFiles.includes('./keep.txt'), altFiles.join(' '));

    writeFileSync(join(dir, 'a.log'), 'changed log');
    writeFileSync(join(dir, 'secret/key.pem'), 'changed key');
    const again = b.run(['build', '--progress', 'plain', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(step(again.stderr, 'COPY . /ctx/').cached, again.stderr);
    const named = b.run(['build', context({ '.dockerignore': 'hidden.txt\n', 'hidden.txt': 'x', Dockerfile: 'FROM busybox\nCOPY hidden.txt /\n' })]);
    assert.equal(named.code, 1);
    assert.match(named.stderr, /source "hidden.txt": not found in the build context \(excluded by \.dockerignore\)/);
  });

  it('builds only the stages the target needs, independent stages in parallel, and stops at --target', () => {
    const nonce = String(Date.now());
    // Stages a and b each wait for the other's marker in a shared cache mount: they only finish if run together.
    const wait = (me: string, other: string) =>
      `RUN --mount=type=cache,id=handshake,target=/hs touch /hs/${me}-$NONCE; i=0; while [ ! -e /hs/${other}-$NONCE ]; do i=$((i+1)); [ $i -gt 150 ] && exit 7; sleep 0.1; done; echo ${me}-met-${other}`;
    const dir = context({
      Dockerfile: [
        'FROM busybox AS a', 'ARG NONCE', wait('a', 'b'), 'RUN echo a > /a',
        'FROM busybox AS b', 'ARG NONCE', wait('b', 'a'), 'RUN echo b > /b',
        'FROM busybox AS unused', 'RUN echo unused-ran; exit 9',
        'FROM busybox AS final', 'COPY --from=a /a /a', 'COPY --from=b /b /b', 'RUN cat /a /b',
        'FROM final AS after', 'RUN echo after-ran',
        '',
      ].join('\n'),
    });
    // Neither stage finds busybox unpacked: both need its layer at once (unpacked once; a second flock of the layer's
    // lock in the same process used to block the thread the first one needed).
    for (const l of b.inspect('busybox').RootFS.Layers as string[]) rmSync(join(b.root, 'layers', l.slice(7)), { recursive: true, force: true });
    const t0 = Date.now();
    const r = b.run(['build', '--progress', 'plain', '--target', 'final', '--build-arg', `NONCE=${nonce}`, '-t', 'stages', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 < 15_000);
    assert.ok(step(r.stderr, 'RUN --mount=type=cache,id=handshake').lines.some((l) => /^[ab]-met-[ab]$/.test(l)));
    assert.deepEqual(step(r.stderr, 'RUN cat /a /b').lines.filter((l) => /^[ab]$/.test(l)), ['a', 'b']);
    assert.doesNotMatch(r.stderr, /unused|after-ran/);
    const img = b.inspect('stages');
    assert.equal(img.RootFS.Layers.length, 3);
  });

  it('caches by content: hits survive tags, restarts, a moved context, rmi and prune; a changed file reruns only what reads it, saying why', () => {
    const dir = context({
      'a.txt': 'a\n',
      'src/app.js': 'console.log(1)\n',
      'src/lib.js': 'lib\n',
      Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\nRUN echo first-run\nCOPY src/ /src/\nRUN cat /src/app.js\nCMD ["sh"]\n',
    });
    const first = b.run(['build', '--progress', 'plain', '-t', 'cache:1', dir]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(step(first.stderr, 'COPY a.txt').miss, 'no earlier build of this step');
    const id1 = b.inspect('cache:1').Id;

    // Same input, new tag: everything cached, same image.
    const second = b.run(['build', '--progress', 'plain', '-t', 'cache:2', dir]);
    assert.equal(second.code, 0, second.stderr);
    for (const s of ['COPY a.txt', 'echo first-run', 'COPY src/', 'cat /src/app.js']) assert.ok(step(second.stderr, s).cached, s);
    assert.equal(b.inspect('cache:2').Id, id1);

    // mtimes and the context's location are not inputs.
    const now = new Date();
    for (const f of ['a.txt', 'src/app.js']) utimesSync(join(dir, f), now, new Date(now.getTime() + 100_000));
    const moved = join(work, 'moved-context');
    cpSync(dir, moved, { recursive: true });
    const third = b.run(['build', '--progress', 'plain', moved]);
    assert.equal(third.code, 0, third.stderr);
    assert.ok(step(third.stderr, 'cat /src/app.js').cached, third.stderr);

    // One file changes: the step reading it and later steps rerun, each saying why; earlier steps are cached.
    writeFileSync(join(dir, 'src/app.js'), 'console.log(2)\n');
    const fourth = b.run(['build', '--progress', 'plain', '-t', 'cache:1', dir]);
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.ok(step(fourth.stderr, 'COPY a.txt').cached);
    assert.ok(step(fourth.stderr, 'echo first-run').cached);
    assert.equal(step(fourth.stderr, 'COPY src/').miss, '1 file changed: src/app.js');
    assert.equal(step(fourth.stderr, 'cat /src/app.js').miss, 'parent step changed');
    assert.ok(step(fourth.stderr, 'cat /src/app.js').lines.includes('console.log(2)'));

    // The cache outlives the images that used it.
    b.ok(['rmi', 'cache:1', 'cache:2']);
    b.ok(['image', 'prune', '-f']);
    // Removed layers take their lock files with them.
    const layerLocks = readdirSync(join(b.root, 'locks')).filter((n) => /^layer-[0-9a-f]{64}\.lock$/.test(n));
    assert.deepEqual(layerLocks.filter((n) => !existsSync(join(b.root, 'layers', n.slice(6, 70)))), []);
    const fifth = b.run(['build', '--progress', 'plain', '-t', 'cache:3', dir]);
    assert.equal(fifth.code, 0, fifth.stderr);
    assert.ok(step(fifth.stderr, 'cat /src/app.js').cached, fifth.stderr);
    assert.equal(b.ok(['run', '--rm', 'cache:3', 'cat', '/src/app.js']), 'console.log(2)');

    const noCache = b.run(['build', '--progress', 'plain', '--no-cache', dir]);
    assert.equal(noCache.code, 0);
    assert.equal(step(noCache.stderr, 'COPY a.txt').miss, 'disabled by --no-cache');

    const df = b.ok(['system', 'df']).split('\n');
    assert.match(df[0]!, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
    assert.deepEqual(df.slice(1).map((l) => l.split(/\s{2,}/)[0]), ['Images', 'Containers', 'Local Volumes', 'Build Cache']);
    const cacheRow = df[4]!.split(/\s{2,}/);
    assert.ok(Number(cacheRow[1]) > 0 && cacheRow[3] !== '0B', df[4]);

    const prune = b.ok(['builder', 'prune', '-af']);
    assert.match(prune, /Total reclaimed space: [1-9][\d.]*[kMG]?B/);
    assert.match(b.ok(['system', 'df']).split('\n')[4]!, /^Build Cache\s+0\s+0\s+0B\s+0B$/);
    const afterPrune = b.run(['build', '--progress', 'plain', dir]);
    assert.equal(afterPrune.code, 0);
    assert.equal(step(afterPrune.stderr, 'COPY a.txt').miss, 'cached result was pruned');
    assert.ok(!step(afterPrune.stderr, 'COPY a.txt').cached);
  });

  it('keys what a step reads from another stage by content, and metadata only into the steps that use it (as BuildKit)', () => {
    const dir = context({
      'src/a.txt': 'a\n',
      'src/b.txt': 'b\n',
      Dockerfile: [
        'FROM busybox AS build',
        'COPY src/ /src/',
        'RUN mkdir /out && cat /src/a.txt > /out/app && echo tool > /out/tool',
        'FROM busybox',
        'LABEL v=1',
        'ENV MODE=x',
        'ARG UNUSED=1',
        'COPY --from=build /out/app /app',
        'RUN --mount=type=bind,from=build,source=/out/tool,target=/tool cat /tool /app',
        'RUN echo mode=$MODE',
        '',
      ].join('\n'),
    });
    const build = (...args: string[]) => {
      const r = b.run(['build', '--progress', 'plain', ...args, dir]);
      assert.equal(r.code, 0, r.stderr);
      return r.stderr;
    };
    build('-t', 'bykey:1');
    const id1 = b.inspect('bykey:1').Id;

    // The build stage runs again (src/b.txt changed) but makes the same /out: what reads /out is cached.
    writeFileSync(join(dir, 'src/b.txt'), 'b2\n');
    let out = build('-t', 'bykey:2');
    assert.equal(step(out, 'RUN mkdir /out').miss, 'parent step changed');
    assert.ok(step(out, 'COPY --from=build').cached, out);
    assert.ok(step(out, 'cat /tool /app').cached, out);
    assert.equal(b.inspect('bykey:2').Id, id1);

    // It makes a different /out/app: the COPY says which file of which stage changed.
    writeFileSync(join(dir, 'src/a.txt'), 'a2\n');
    out = build('-t', 'bykey:3');
    assert.equal(step(out, 'COPY --from=build').miss, '1 file changed in stage build: /out/app');
    assert.equal(step(out, 'cat /tool /app').miss, 'parent step changed');
    assert.ok(step(out, 'cat /tool /app').lines.includes('a2'), out);

    // A label leaves every step's cache alone; an ENV and an ARG only the RUNs (their environment): COPY is cached.
    writeFileSync(join(dir, 'Dockerfile'), readFileSync(join(dir, 'Dockerfile'), 'utf8').replace('LABEL v=1', 'LABEL v=2'));
    out = build('-t', 'bykey:4');
    for (const s of ['COPY --from=build', 'cat /tool /app', 'echo mode=$MODE']) assert.ok(step(out, s).cached, out);
    writeFileSync(join(dir, 'Dockerfile'), readFileSync(join(dir, 'Dockerfile'), 'utf8').replace('MODE=x', 'MODE=y'));
    out = build('-t', 'bykey:4', '--build-arg', 'UNUSED=2');
    assert.ok(step(out, 'COPY --from=build').cached, out);
    assert.equal(step(out, 'cat /tool /app').miss, 'ENV, build arguments changed');
    assert.equal(step(out, 'echo mode=$MODE').miss, 'parent step changed');
    assert.ok(step(out, 'echo mode=$MODE').lines.includes('mode=y'), out);
    const img = b.inspect('bykey:4');
    assert.deepEqual(img.Config.Labels, { v: '2' });
    const h = b.ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'bykey:4']).split('\n');
    assert.ok(h.includes('ARG UNUSED=2'), h.join('\n'));
    assert.ok(h.includes('LABEL v=2'), h.join('\n'));
    assert.equal(b.ok(['run', '--rm', 'bykey:4', 'cat', '/app']), 'a2');
    b.ok(['rmi', 'bykey:1', 'bykey:2', 'bykey:3', 'bykey:4']);
  });

  it('reads a stage again when its layers changed under the same key (a --no-cache rebuild of it), and not otherwise', () => {
    const dir = context({
      Dockerfile: 'FROM busybox AS build\nRUN mkdir /out && cat /proc/sys/kernel/random/uuid > /out/rand\nFROM busybox\nCOPY --from=build /out/rand /rand\n',
    });
    const env = { BERTH_TRACE: '1' };
    const first = b.run(['build', '--progress', 'plain', '-t', 'rand:1', dir], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /hashing --from=build/);
    // Nothing changed: the stage's files are the ones the last build read, not hashed again.
    const again = b.run(['build', '--progress', 'plain', '-t', 'rand:2', dir], { env });
    assert.ok(step(again.stderr, 'COPY --from=build').cached, again.stderr);
    assert.match(again.stderr, /--from=build read as the last build read it/);
    assert.doesNotMatch(again.stderr, /hashing --from=build/);
    // The stage rebuilt without cache: same keys, new layers, a new /out/rand. The next build must copy that one.
    const fresh = b.run(['build', '--progress', 'plain', '--no-cache', '--target', 'build', '-t', 'rand:stage', dir]);
    assert.equal(fresh.code, 0, fresh.stderr);
    const third = b.run(['build', '--progress', 'plain', '-t', 'rand:3', dir], { env });
    assert.equal(third.code, 0, third.stderr);
    assert.ok(step(third.stderr, 'RUN mkdir /out').cached, third.stderr);
    assert.equal(step(third.stderr, 'COPY --from=build').miss, '1 file changed in stage build: /out/rand');
    const cat = (ref: string, p: string) => b.ok(['run', '--rm', ref, 'cat', p]);
    assert.equal(cat('rand:3', '/rand'), cat('rand:stage', '/out/rand'));
    assert.notEqual(cat('rand:3', '/rand'), cat('rand:1', '/rand'));
    b.ok(['rmi', 'rand:1', 'rand:2', 'rand:3', 'rand:stage']);
  });

  it('rebuilds a COPY of an edited context by linking the unchanged files from the last layer: the layer a --no-cache build makes', () => {
    // The second COPY goes into a directory only the base has, over one of its symlinks (/bin/yes).
    const files: Record<string, FileSpec> = { Dockerfile: 'FROM busybox\nCOPY src/ /app/\nRUN cat /app/edited.txt\nCOPY tools/ /bin/\n' };
    Object.assign(files, { 'tools/new-tool': '#!/bin/sh\necho new\n', 'tools/yes': '#!/bin/sh\necho no\n' });
    for (let i = 0; i < 20; i++) files[`src/f${i}.txt`] = `file ${i}\n`;
    Object.assign(files, { 'src/edited.txt': 'before\n', 'src/touched.txt': 'same\n', 'src/moded.sh': 'echo\n', 'src/sub/deep.txt': 'deep\n' });
    const dir = context(files);
    // Files older than SOURCE_DATE_EPOCH keep their mtimes in the layer tar; the directories COPY makes get it.
    const old = new Date('2020-01-01T00:00:00.250Z');
    for (const f of Object.keys(files)) utimesSync(join(dir, f), old, old);
    const env = { SOURCE_DATE_EPOCH: '1700000000', BERTH_TRACE: '1' };
    const layers = (ref: string) => b.inspect(ref).RootFS.Layers as string[];
    const lastLayer = (ref: string) => layers(ref).at(-2)!; // COPY src/ (RUN cat adds no layer)
    const layerFile = (ref: string, p: string) => lstatSync(join(b.root, 'layers', lastLayer(ref).slice(7), 'diff', 'app', p));
    assert.equal(b.run(['build', '--progress', 'plain', '-t', 'inc:1', dir], { env }).code, 0);

    writeFileSync(join(dir, 'src/edited.txt'), 'after\n');
    utimesSync(join(dir, 'src/touched.txt'), old, new Date('2021-01-01T00:00:00Z'));
    chmodSync(join(dir, 'src/moded.sh'), 0o755);
    const r = b.run(['build', '--progress', 'plain', '-t', 'inc:2', dir], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(step(r.stderr, 'COPY src/').miss, '2 files changed: src/edited.txt, src/moded.sh'); // an mtime is no input
    assert.match(r.stderr, /copy: placed, 21 to link/);
    assert.ok(step(r.stderr, 'RUN cat').lines.includes('after'));
    // Unchanged files share the earlier layer's inodes; the three that changed (content, mtime, mode) are new.
    assert.equal(layerFile('inc:2', 'f7.txt').ino, layerFile('inc:1', 'f7.txt').ino);
    assert.equal(layerFile('inc:2', 'sub/deep.txt').ino, layerFile('inc:1', 'sub/deep.txt').ino);
    for (const p of ['edited.txt', 'touched.txt', 'moded.sh']) assert.notEqual(layerFile('inc:2', p).ino, layerFile('inc:1', p).ino, p);
    assert.equal(layerFile('inc:2', 'moded.sh').mode & 0o777, 0o755);
    assert.equal(layerFile('inc:2', 'touched.txt').mtime.toISOString(), '2021-01-01T00:00:00.000Z');

    // Written from scratch, the layer is the same, byte for byte.
    assert.equal(b.run(['build', '--no-cache', '--progress', 'plain', '-t', 'inc:3', dir], { env }).code, 0);
    assert.deepEqual(layers('inc:3'), layers('inc:2'));
    assert.notEqual(lastLayer('inc:2'), lastLayer('inc:1'));
    assert.equal(b.ok(['run', '--rm', 'inc:2', 'cat', '/app/edited.txt', '/app/f7.txt']), 'after\nfile 7');

    // A file that cannot be linked (immutable: link(2) fails) is written as usual, through the overlay mounted again.
    const pinned = join(b.root, 'layers', lastLayer('inc:2').slice(7), 'diff', 'app', 'f3.txt');
    spawnSync('chattr', ['+i', pinned]);
    try {
      writeFileSync(join(dir, 'src/edited.txt'), 'again\n');
      const again = b.run(['build', '--progress', 'plain', '-t', 'inc:4', dir], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /copy: linked, 1 failed/);
      assert.equal(b.run(['build', '--no-cache', '--progress', 'plain', '-t', 'inc:5', dir], { env }).code, 0);
      assert.deepEqual(layers('inc:4'), layers('inc:5'));
    } finally {
      spawnSync('chattr', ['-i', pinned]);
    }
    b.ok(['rmi', 'inc:1', 'inc:2', 'inc:3', 'inc:4', 'inc:5']);
  });

  it('gives the same image digest for the same input with SOURCE_DATE_EPOCH, on fresh roots, without cache', () => {
    const files = {
      'app.txt': 'app\n',
      Dockerfile: 'FROM busybox\nCOPY app.txt /app/\nRUN echo built > /app/built-at && mkdir -p /var/x && echo y > /var/x/y\nENV A=1\nCMD ["cat", "/app/app.txt"]\n',
    };
    const tar = join(work, 'busybox-image.tar');
    b.ok(['save', '-o', tar, 'busybox']);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const fresh = new Berth();
      try {
        fresh.ok(['load', '-i', tar]);
        const dir = context(files);
        if (i === 1) utimesSync(join(dir, "app.txt"), new Date(Date.now() + 1_000_000), new Date(Date.now() + 1_000_000));
        const r = fresh.run(['build', '--no-cache', '-q', dir], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
        assert.equal(r.code, 0, r.stderr);
        const img = fresh.inspect(r.stdout.trim());
        ids.push(`${r.stdout.trim()} ${img.Descriptor.digest}`);
        assert.equal(img.Created, '2023-11-14T22:13:20.000Z');
      } finally {
        assert.deepEqual(fresh.destroy(), []);
      }
    }
    // Same image ID (config digest) and same manifest digest.
    assert.match(ids[0]!, /^sha256:[0-9a-f]{64} sha256:[0-9a-f]{64}$/);
    assert.equal(ids[0], ids[1]);
  });

  it('keeps build secrets inside the RUN that mounts them: never in a layer, the config, the history or the output', () => {
    const secret = `s3cr3t-${sha256(String(Math.random())).slice(0, 24)}`;
    const envSecret = `envs3cr3t-${sha256(String(Math.random())).slice(0, 24)}`;
    const secretFile = join(work, 'token.txt');
    writeFileSync(secretFile, secret);
    const dir = context({
      Dockerfile: [
        'FROM busybox',
        'RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64; stat -c "%a %u" /run/secrets/tok',
        'RUN --mount=type=secret,id=envtok,env=TOKEN printf %s "$TOKEN" | sha256sum | cut -c1-64',
        'RUN --mount=type=secret,id=tok,target=/etc/app/token,mode=0440,uid=1000 test "$(stat -c "%a %u" /etc/app/token)" = "440 1000" && echo target-ok',
        'RUN test ! -e /run/secrets/tok && test ! -e /etc/app && echo gone-after',
        'RUN --mount=type=secret,id=missing,required=false echo optional-ok',
        '',
      ].join('\n'),
    });
    const r = b.run(['build', '--progress', 'plain', '-t', 'secrets', '--secret', `id=tok,src=${secretFile}`, '--secret', 'id=envtok,env=MY_TOKEN', dir], { env: { MY_TOKEN: envSecret } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(step(r.stderr, 'id=tok sha256sum').lines.slice(1, 3), [sha256(secret), '400 0']);
    assert.ok(step(r.stderr, 'env=TOKEN').lines.includes(sha256(envSecret)));
    assert.ok(step(r.stderr, 'target=/etc/app/token').lines.includes('target-ok'));
    assert.ok(step(r.stderr, 'gone-after').lines.includes('gone-after'));
    assert.ok(step(r.stderr, 'optional-ok').lines.includes('optional-ok'));
    const places = {
      output: r.stdout + r.stderr,
      config: b.ok(['image', 'inspect', 'secrets']),
      history: b.ok(['history', '--no-trunc', 'secrets']),
      blobs: Buffer.concat(savedBlobs(b, 'secrets')).toString('latin1'),
      state: spawnSync('grep', ['-rl', '--', secret, b.root], { encoding: 'utf8' }).stdout,
    };
    for (const [where, text] of Object.entries(places)) {
      assert.ok(!text.includes(secret) && !text.includes(envSecret), `secret found in ${where}`);
    }
    const required = b.run(['build', context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=absent,required cat /run/secrets/absent\n' })]);
    assert.equal(required.code, 1);
    assert.match(required.stderr, /secret absent not found/);

    // Secret-looking build args and ENV values get a warning naming the alternative (and not the value).
    const token = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
    const warn = b.run(['build', '--progress', 'plain', '--build-arg', `GITHUB_TOKEN=${token}`,
      context({ Dockerfile: 'FROM busybox\nARG GITHUB_TOKEN\nENV API_KEY=notreallysecret\nRUN true\n' })]);
    assert.equal(warn.code, 0, warn.stderr);
    assert.match(warn.stderr, /WARNING: .*--build-arg GITHUB_TOKEN.*--secret/);
    assert.match(warn.stderr, /WARNING: SecretsUsedInArgOrEnv: .*ENV "API_KEY".*RUN --mount=type=secret/);
    assert.ok(!warn.stderr.includes(token));
  });

  it('stops at a failing RUN with its exit code and last output, tags nothing, and leaves nothing behind', () => {
    const dir = context({
      Dockerfile: 'FROM busybox\nRUN echo before\nRUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line-$i; done; echo oops >&2; exit 3\nRUN echo never-runs\n',
    });
    const r = b.run(['build', '--progress', 'plain', '-t', 'failing', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERROR: Dockerfile:3: process "\/bin\/sh -c for i in .*" did not complete successfully: exit code: 3/);
    // The last lines of its output (stdout and stderr as they came), not the first ones.
    const tail = r.stderr.split('\n').filter((l) => l.startsWith('  > '));
    // stdout and stderr are separate pipes: "oops" may arrive before or after the last stdout lines.
    assert.ok(tail.length <= 10 && tail.includes('  > line-12') && !tail.includes('  > line-1'), tail.join('\n'));
    assert.match(r.stderr, /oops/);
    assert.doesNotMatch(r.stderr, /never-runs/);
    assert.equal(b.run(['image', 'inspect', 'failing']).code, 1);
    assert.deepEqual(buildLeftovers(b), []);
  });

  it('takes the context or the Dockerfile on stdin', () => {
    const dir = context({ 'f.txt': 'from tar\n', Dockerfile: 'FROM busybox\nCOPY f.txt /\nRUN cat /f.txt\n', 'other.Dockerfile': 'FROM busybox\nRUN echo other-file\n' });
    const tar = spawnSync('tar', ['-C', dir, '-c', '.']).stdout;
    const r = b.run(['build', '--progress', 'plain', '-t', 'stdin:tar', '-'], { input: tar });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(step(r.stderr, 'cat /f.txt').lines.includes('from tar'));
    // A compressed tar too: Docker takes gzip, bzip2 and xz contexts.
    for (const [name, packed] of [['gzip', gzipSync(tar)], ['bzip2', spawnSync('bzip2', ['-c'], { input: tar }).stdout], ['xz', spawnSync('xz', ['-c'], { input: tar }).stdout]] as const) {
      const r2 = b.run(['build', '--progress', 'plain', '-'], { input: packed });
      assert.equal(r2.code, 0, `${name}: ${r2.stderr}`);
      assert.ok(step(r2.stderr, 'COPY f.txt').cached, `${name}: ${r2.stderr}`);
    }
    const alt = b.run(['build', '--progress', 'plain', '-f', 'other.Dockerfile', '-'], { input: tar });
    assert.equal(alt.code, 0, alt.stderr);
    assert.ok(step(alt.stderr, 'echo other-file').lines.includes('other-file'));
    const df = b.run(['build', '--progress', 'plain', '-f', '-', dir], { input: 'FROM busybox\nCOPY f.txt /g.txt\nRUN cat /g.txt\n' });
    assert.equal(df.code, 0, df.stderr);
    assert.ok(step(df.stderr, 'cat /g.txt').lines.includes('from tar'));
    const bare = b.run(['build', '--progress', 'plain', '-'], { input: 'FROM busybox\nRUN echo no-context\n' });
    assert.equal(bare.code, 0, bare.stderr);
    assert.equal(b.run(['build', '-f', '-', '-'], { input: 'x' }).code, 1);
  });

  it('prints only the image ID with -q, writes --iidfile, and renders json progress', () => {
    const dir = context({ Dockerfile: 'FROM busybox\nRUN echo quiet-run\n' });
    const iid = join(work, 'iid');
    const q = b.run(['build', '-q', '--iidfile', iid, dir]);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
    assert.equal(q.stderr, '');
    assert.equal(readFileSync(iid, 'utf8'), q.stdout.trim());
    // --progress quiet is -q.
    const pq = b.run(['build', '--progress', 'quiet', dir]);
    assert.equal(pq.code, 0, pq.stderr);
    assert.equal(pq.stderr, '');
    assert.equal(pq.stdout, q.stdout);
    const j = b.run(['build', '--progress', 'json', dir]);
    assert.equal(j.code, 0);
    const events = j.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; id?: string });
    assert.ok(events.some((e) => e.type === 'cached'));
    assert.equal(events.at(-1)!.type, 'image');
    assert.equal(events.at(-1)!.id, q.stdout.trim());
    // A miss names its step and says why, in json and in plain output.
    const jn = b.run(['build', '--progress', 'json', '--no-cache', dir]);
    const miss = jn.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; text?: string; reason?: string }).find((e) => e.type === 'miss');
    assert.deepEqual(miss && { text: miss.text, reason: miss.reason }, { text: 'RUN echo quiet-run', reason: 'disabled by --no-cache' });
    const plain = b.run(['build', '--progress', 'plain', '--no-cache', dir]);
    assert.match(plain.stderr, /^#\d+ RUN echo quiet-run: cache miss: disabled by --no-cache$/m);

    // --build-arg NAME takes the value from the environment (Docker's rule); unset there, the ARG keeps its default.
    const fromEnv = context({ Dockerfile: 'FROM busybox\nARG FROMENV=dflt\nRUN echo "v=$FROMENV"\n' });
    const e1 = b.run(['build', '--progress', 'plain', '--build-arg', 'FROMENV', fromEnv], { env: { FROMENV: 'from-env' } });
    assert.equal(e1.code, 0, e1.stderr);
    assert.ok(step(e1.stderr, 'echo "v=$FROMENV"').lines.includes('v=from-env'), e1.stderr);
    const e2 = b.run(['build', '--progress', 'plain', '--build-arg', 'FROMENV', fromEnv]);
    assert.ok(step(e2.stderr, 'echo "v=$FROMENV"').lines.includes('v=dflt'), e2.stderr);
  });

  it('builds FROM scratch, gives proxy build args to RUN only, and adds a compressed file that is no tar as it is', () => {
    const dir = context({
      'note.gz': gzipSync('just text, no tar\n'),
      Dockerfile: [
        'FROM scratch',
        'COPY --from=busybox /bin/busybox /bin/sh',
        'ADD note.gz /n/',
        'RUN echo "proxy=$http_proxy"; test -f /n/note.gz && echo kept-compressed',
        'CMD ["/bin/sh", "-c", "echo from-scratch"]',
        '',
      ].join('\n'),
    });
    const r = b.run(['build', '--progress', 'plain', '-t', 'scratchy', '--build-arg', 'http_proxy=http://127.0.0.1:9', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(step(r.stderr, 'proxy=').lines.filter((l) => /proxy=|kept/.test(l) && !l.includes(': cache miss: ')), ['proxy=http://127.0.0.1:9', 'kept-compressed']);
    assert.doesNotMatch(r.stderr, /not consumed/);
    const img = b.inspect('scratchy');
    assert.deepEqual(img.Config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    assert.equal(img.RootFS.Layers.length, 2);
    assert.doesNotMatch(b.ok(['history', '--no-trunc', 'scratchy']), /127\.0\.0\.1/);
    assert.equal(b.ok(['run', '--rm', 'scratchy']), 'from-scratch');
  });

  it('builds past the 40-odd layers that absolute overlay paths fit in one mount', () => {
    const n = 48;
    const lines = ['FROM busybox', ...Array.from({ length: n }, (_, i) => `COPY f.txt /f${i}`), `RUN cat /f0 /f${n - 1} | wc -l`, ''];
    const r = b.run(['build', '--progress', 'plain', '-t', 'layered', context({ 'f.txt': 'x\n', Dockerfile: lines.join('\n') })]);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.ok(step(r.stderr, 'RUN cat /f0').lines.includes('2'));
    assert.equal(b.inspect('layered').RootFS.Layers.length, n + 1);
  });

  it('runs ONBUILD triggers when a later build uses the image as its base', () => {
    const base = b.run(['build', '-t', 'onbuild-base', context({ Dockerfile: 'FROM busybox\nONBUILD COPY trigger.txt /trigger.txt\nONBUILD RUN echo triggered > /ran.txt\n' })]);
    assert.equal(base.code, 0, base.stderr);
    const child = b.run(['build', '--progress', 'plain', '-t', 'onbuild-child', context({ 'trigger.txt': 'from child context\n', Dockerfile: 'FROM onbuild-base\nRUN cat /trigger.txt /ran.txt\n' })]);
    assert.equal(child.code, 0, child.stderr);
    assert.deepEqual(step(child.stderr, 'cat /trigger.txt').lines.filter((l) => !/: cache miss: |^DONE/.test(l)), ['from child context', 'triggered']);
    assert.equal(b.inspect('onbuild-child').Config.OnBuild, null);
  });

  it('runs RUN mounts: cache (kept across builds), tmpfs, bind from the context and a stage; --network none and host', () => {
    const dir = context({
      'ctx.txt': 'context file\n',
      Dockerfile: [
        'FROM busybox AS tools',
        'RUN mkdir /tools && echo tool > /tools/t',
        'FROM busybox',
        'ARG N',
        'RUN --mount=type=cache,target=/cache echo "$N" >> /cache/runs && cat /cache/runs | wc -l',
        'RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/file && test -f /scratch/file',
        'RUN --mount=type=bind,target=/src,rw echo changed > /src/ctx.txt && cat /src/ctx.txt',
        'RUN --mount=type=bind,source=ctx.txt,target=/one.txt cat /one.txt',
        'RUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/t',
        'RUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " | tr "\\n" " "; echo',
        'RUN test ! -e /scratch/file && test ! -e /src && test ! -e /t && test ! -e /one.txt && test ! -e /cache && echo clean',
        '',
      ].join('\n'),
    });
    const r1 = b.run(['build', '--progress', 'plain', '--build-arg', 'N=1', dir]);
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = b.run(['build', '--progress', 'plain', '--build-arg', 'N=2', dir]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok(step(r1.stderr, 'type=cache').lines.includes('1'));
    assert.ok(step(r2.stderr, 'type=cache').lines.includes('2'), r2.stderr);
    assert.ok(step(r1.stderr, 'target=/src,rw').lines.includes('changed'));
    assert.equal(readFileSync(join(dir, 'ctx.txt'), 'utf8'), 'context file\n');
    assert.ok(step(r1.stderr, 'target=/one.txt').lines.includes('context file'));
    assert.ok(step(r1.stderr, 'from=tools').lines.includes('tool'));
    assert.ok(step(r1.stderr, '--network=none').lines.includes('lo '));
    assert.ok(step(r1.stderr, 'echo clean').lines.includes('clean'));
    // Changing a file a bind mount reads reruns the step.
    writeFileSync(join(dir, 'ctx.txt'), 'edited\n');
    const r3 = b.run(['build', '--progress', 'plain', '--build-arg', 'N=2', dir]);
    assert.equal(step(r3.stderr, 'target=/src,rw').miss, '1 file changed: ctx.txt');
    assert.equal(step(r3.stderr, 'target=/one.txt').miss, 'parent step changed');
    const host = b.run(['build', '--progress', 'plain', '--network', 'host', context({ Dockerfile: 'FROM busybox\nRUN cat /proc/net/dev | tail -n +3 | wc -l\n' })]);
    assert.equal(host.code, 0, host.stderr);
    assert.ok(Number(step(host.stderr, '/proc/net/dev').lines.find((l) => /^\d+$/.test(l))) >= 1);
  });

  it('runs RUN --security=insecure only with --allow security.insecure, and forwards ssh-agent sockets to RUN --mount=type=ssh', async () => {
    // Without the entitlement the build stops; with it the step has every capability (Docker's default set is a8425fb).
    const insecure = context({ Dockerfile: 'FROM busybox\nRUN --security=insecure grep CapEff /proc/self/status\n' });
    const denied = b.run(['build', '--progress', 'plain', insecure]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /granting entitlement security\.insecure is not allowed: build with --allow security\.insecure/);
    const allowed = b.run(['build', '--progress', 'plain', '--allow', 'security.insecure', insecure]);
    assert.equal(allowed.code, 0, allowed.stderr);
    const capEff = /CapEff:\s+([0-9a-f]+)/.exec(allowed.stderr)?.[1];
    assert.ok(capEff && BigInt(`0x${capEff}`) > 0xa80425fbn, allowed.stderr);
    assert.match(b.run(['build', '--allow', 'bogus', insecure]).stderr, /invalid entitlement: bogus/);

    // A fake agent answers what it is sent; a static client in the image talks to it through $SSH_AUTH_SOCK.
    const dir = context({
      'client.c': [
        '#include <stdio.h>', '#include <stdlib.h>', '#include <string.h>', '#include <unistd.h>', '#include <sys/socket.h>', '#include <sys/un.h>',
        'int main(void) {',
        '  const char *p = getenv("SSH_AUTH_SOCK"); struct sockaddr_un a = { .sun_family = AF_UNIX }; char buf[64] = {0};',
        '  if (!p) { puts("no SSH_AUTH_SOCK"); return 2; }',
        '  strncpy(a.sun_path, p, sizeof a.sun_path - 1); int s = socket(AF_UNIX, SOCK_STREAM, 0);',
        '  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }',
        '  write(s, "ping", 4); int n = read(s, buf, sizeof buf - 1); printf("%s %s\\n", p, n > 0 ? buf : "(nothing)"); return 0;',
        '}', '',
      ].join('\n'),
      Dockerfile: [
        'FROM busybox',
        'COPY client /client',
        'RUN --mount=type=ssh /client',
        'RUN --mount=type=ssh,id=other,target=/tmp/agent.sock,uid=1000,mode=0660 stat -c "%u %a %F" /tmp/agent.sock',
        '',
      ].join('\n'),
    });
    const cc = spawnSync('gcc', ['-static', '-O1', '-o', join(dir, 'client'), join(dir, 'client.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const sock = join(work, 'agent.sock');
    const agent = createNetServer((c) => c.on('data', (d) => c.end(`agent got ${d.toString()}`)));
    await new Promise<void>((resolve) => agent.listen(sock, resolve));
    try {
      const r = await runAsync(b, ['build', '--progress', 'plain', '--ssh', `default=${sock}`, '--ssh', `other=${sock}`, dir]).done;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(step(r.stderr, 'RUN --mount=type=ssh /client').lines.includes('/run/buildkit/ssh_agent.0 agent got ping'), r.stderr);
      assert.ok(step(r.stderr, 'stat -c').lines.includes('1000 660 socket'), r.stderr);
      // Not given: an optional mount is left out, a required one stops the build naming the id.
      const req = context({ Dockerfile: 'FROM busybox\nRUN --mount=type=ssh,id=deploy,required echo never\n' });
      const missing = await runAsync(b, ['build', '--progress', 'plain', req]).done;
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no SSH key "deploy" forwarded from the client/);
      const notSocket = await runAsync(b, ['build', '--ssh', `default=${join(dir, 'client.c')}`, req]).done;
      assert.equal(notSocket.code, 1);
      assert.match(notSocket.stderr, /is no ssh-agent socket/);
    } finally {
      agent.close();
    }
    assert.deepEqual(buildLeftovers(b), []);
  });

  it('adds remote files with --checksum, and reruns when their content changes; --unpack=true extracts an archive', async () => {
    let body = 'remote content v1\n';
    const tarDir = mkdtempSync(join(work, 'remote-tar-'));
    mkdirSync(join(tarDir, 'pkg'));
    writeFileSync(join(tarDir, 'pkg', 'inside.txt'), 'packed\n');
    const tgz = spawnSync('tar', ['-czf', '-', '-C', tarDir, 'pkg']).stdout;
    const server: Server = createServer((req, res) => {
      if (req.url === '/pkg.tar.gz') {
        res.writeHead(200, { 'content-type': 'application/gzip' });
        res.end(tgz);
      } else if (req.url === '/file.txt') {
        res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT' });
        res.end(body);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const url = `http://127.0.0.1:${port}/file.txt`;
      const sum = `sha256:${sha256(body)}`;
      const dir = context({ Dockerfile: `FROM busybox\nADD --checksum=${sum} ${url} /dl/\nRUN cat /dl/file.txt; stat -c "%a %Y" /dl/file.txt\n` });
      const r1 = await runAsync(b, ['build', '--progress', 'plain', '--network', 'host', dir]).done;
      assert.equal(r1.code, 0, r1.stderr);
      assert.deepEqual(step(r1.stderr, 'cat /dl/file.txt').lines.slice(1, 3), ['remote content v1', '600 1700000000']);
      const r2 = await runAsync(b, ['build', '--progress', 'plain', dir]).done;
      assert.ok(step(r2.stderr, `ADD --checksum`).cached, r2.stderr);
      body = 'remote content v2\n';
      const bad = await runAsync(b, ['build', '--progress', 'plain', dir]).done;
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /checksum mismatch/);
      const plain = context({ Dockerfile: `FROM busybox\nADD ${url} /dl.txt\nRUN cat /dl.txt\n` });
      const r3 = await runAsync(b, ['build', '--progress', 'plain', plain]).done;
      assert.equal(r3.code, 0, r3.stderr);
      body = 'remote content v3\n';
      const r4 = await runAsync(b, ['build', '--progress', 'plain', plain]).done;
      assert.equal(step(r4.stderr, 'ADD http').miss, `${url} changed`);
      assert.ok(step(r4.stderr, 'cat /dl.txt').lines.includes('remote content v3'));

      // A remote archive stays packed, unless --unpack=true.
      const tgzUrl = `http://127.0.0.1:${port}/pkg.tar.gz`;
      const unpack = context({ Dockerfile: `FROM busybox\nADD ${tgzUrl} /packed/\nADD --unpack=true ${tgzUrl} /unpacked/\nRUN ls /packed; cat /unpacked/pkg/inside.txt\n` });
      const r5 = await runAsync(b, ['build', '--progress', 'plain', unpack]).done;
      assert.equal(r5.code, 0, r5.stderr);
      assert.deepEqual(step(r5.stderr, 'ls /packed').lines.slice(1, 3), ['pkg.tar.gz', 'packed']);
    } finally {
      server.close();
    }
  });

  it('adds a Git repository at a ref and a subdir, keyed by the commit the ref names', async () => {
    const gitIn = (cwd: string, ...args: string[]) => {
      const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' });
      assert.equal(r.status, 0, `git ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim();
    };
    const src = join(work, 'git-src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'a at v1\n');
    writeFileSync(join(src, 'sub', 'b.txt'), 'b\n');
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
    gitIn(work, 'init', '-q', src);
    gitIn(src, 'add', '.');
    gitIn(src, 'commit', '-qm', 'one');
    gitIn(src, 'tag', '-a', 'v1', '-m', 'v1');
    const v1 = gitIn(src, 'rev-parse', 'HEAD');
    // Served as a "dumb" HTTP remote: static files (git falls back to it when the server speaks no smart protocol).
    const served = join(work, 'git-served');
    mkdirSync(served);
    const bare = join(served, 'repo.git');
    gitIn(work, 'clone', '-q', '--bare', src, bare);
    gitIn(bare, 'update-server-info');
    const server: Server = createServer((req, res) => {
      const file = join(served, decodeURIComponent((req.url ?? '/').split('?')[0]!));
      if (!file.startsWith(served) || !existsSync(file) || !lstatSync(file).isFile()) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/repo.git`;
    try {
      const dir = context({
        Dockerfile: [
          'FROM busybox',
          `ADD ${url}#v1 /v1/`,
          `ADD ${url}#main:sub /sub`,
          `ADD --keep-git-dir=true ${url} /kept/`,
          'RUN cat /v1/a.txt /sub/b.txt; /v1/run.sh; ls -a /v1 | tr "\\n" " "; echo; test -d /kept/.git && echo kept',
          '',
        ].join('\n'),
      });
      const build = async () => {
        const r = await runAsync(b, ['build', '--progress', 'plain', '-t', 'fromgit', dir]).done;
        assert.equal(r.code, 0, r.stderr);
        return r.stderr;
      };
      let out = await build();
      assert.deepEqual(step(out, 'RUN cat').lines.slice(1, 6), ['a at v1', 'b', 'run', '. .. a.txt run.sh sub ', 'kept']);
      // The files take the commit's time.
      const time = Number(gitIn(src, 'log', '-1', '--format=%ct'));
      assert.equal(b.ok(['run', '--rm', 'fromgit', 'stat', '-c', '%Y', '/v1/a.txt']), String(time));
      out = await build();
      for (const s of [`${url}#v1`, `${url}#main:sub`]) assert.ok(step(out, s).cached, out);

      // A new commit on main: what follows main reruns and says so; the tag's step stays cached.
      writeFileSync(join(src, 'sub', 'b.txt'), 'b2\n');
      gitIn(src, 'commit', '-qam', 'two');
      gitIn(src, 'push', '-q', bare, 'main');
      gitIn(bare, 'update-server-info');
      out = await build();
      assert.ok(step(out, `${url}#v1`).cached, out);
      assert.equal(step(out, `${url}#main:sub`).miss, `${url}#main:sub changed`);
      assert.ok(step(out, 'RUN cat').lines.includes('b2'), out);

      // --checksum pins the commit; a ref that is not there is named.
      const pinned = context({ Dockerfile: `FROM busybox\nADD --checksum=${v1.slice(0, 12)} ${url}#main /x/\n` });
      const bad = await runAsync(b, ['build', '--progress', 'plain', pinned]).done;
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, new RegExp(`checksum mismatch for ${url}#main: expected commit ${v1.slice(0, 12)}, got [0-9a-f]{40}`));
      const noRef = context({ Dockerfile: `FROM busybox\nADD ${url}#nope /x/\n` });
      const missing = await runAsync(b, ['build', '--progress', 'plain', noRef]).done;
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /has no ref "nope"/);
      const copyGit = context({ Dockerfile: 'FROM busybox\nCOPY git@example.com:org/repo.git /x/\n' });
      assert.match(b.run(['build', copyGit]).stderr, /source can't be a git ref for COPY/);
      b.ok(['rmi', 'fromgit']);
    } finally {
      server.close();
    }
    assert.deepEqual(buildLeftovers(b), []);
  });

  it('cleans up after SIGINT mid-RUN at once, and after SIGKILL at the start of the next build', async () => {
    const dir = context({ Dockerfile: 'FROM busybox\nARG NONCE\nRUN echo started-$NONCE; sleep 60\n' });
    const started = async (p: ReturnType<typeof runAsync>) => {
      for (let i = 0; i < 200 && !/^#\d+ started-/m.test(p.stderr()); i++) await sleep(50);
      assert.match(p.stderr(), /^#\d+ started-/m);
    };
    const p = runAsync(b, ['build', '--progress', 'plain', '--build-arg', `NONCE=${Date.now()}`, '-t', 'interrupted', dir]);
    await started(p);
    const t0 = Date.now();
    p.child.kill('SIGINT');
    const r = await p.done;
    assert.equal(r.code, 130, r.stderr);
    assert.ok(Date.now() - t0 < 10_000);
    assert.match(r.stderr, /build canceled/);
    assert.deepEqual(buildLeftovers(b), []);
    assert.equal(b.run(['image', 'inspect', 'interrupted']).code, 1);

    const k = runAsync(b, ['build', '--progress', 'plain', '--build-arg', `NONCE=${Date.now()}`, dir]);
    await started(k);
    k.child.kill('SIGKILL');
    await k.done;
    assert.notDeepEqual(buildLeftovers(b), []);
    const next = b.run(['build', '-q', context({ Dockerfile: 'FROM busybox\nRUN true\n' })]);
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(buildLeftovers(b), []);
  });
});
