import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { expandInstruction } from '../../src/build/expand-instruction.js';
import { type Instruction, parseInstructions, parsePortSpec, sourceKind } from '../../src/build/instructions.js';
import { parseMount } from '../../src/build/run-mount.js';
import { parseDockerfile } from '../../src/build/parser.js';

function load(text: string) {
  const parsed = parseDockerfile(text);
  const r = parseInstructions(parsed);
  return { ...r, parsed, errors: r.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`) };
}

/** The one instruction of a text that must parse cleanly, without its source fields. */
function one(text: string): Record<string, unknown> {
  const r = load(text);
  assert.deepEqual(r.errors, [], `unexpected diagnostics for ${JSON.stringify(text)}`);
  assert.equal(r.instructions.length, 1);
  const { raw: _raw, line: _l, column: _c, endLine: _e, ...rest } = r.instructions[0]! as Instruction & Record<string, unknown>;
  return rest;
}

/** Error cases: [Dockerfile, "line:column message"]. */
const ERRORS: [string, string][] = [
  ['FOO bar', '1:1 unknown instruction: FOO (did you mean FROM?)'],
  ['RUNN x', '1:1 unknown instruction: RUNN (did you mean RUN?)'],
  ['copyy a b', '1:1 unknown instruction: copyy (did you mean copy?)'],
  ['XYZZY a', '1:1 unknown instruction: XYZZY'],
  ['FROM', '1:1 FROM requires either one or three arguments'],
  ['FROM a b', '1:6 FROM requires either one or three arguments'],
  ['FROM a AS', '1:6 FROM requires either one or three arguments'],
  ['FROM a is b', '1:6 FROM requires either one or three arguments'],
  ['FROM a AS 1st', '1:11 invalid name for build stage: "1st", name can\'t start with a number or contain symbols'],
  ['FROM a AS b$c', '1:11 invalid name for build stage: "b$c", name can\'t start with a number or contain symbols'],
  ['FROM --chown=1 a', '1:6 unknown flag: --chown'],
  ['FROM --platform a', '1:6 missing a value on flag: --platform'],
  ['FROM --platform=a --platform=b c', '1:19 duplicate flag specified: --platform'],
  ['RUN --chown=1 x', '1:5 unknown flag: --chown'],
  ['RUN --mout=type=cache x', '1:5 unknown flag: --mout (did you mean mount?)'],
  ['RUN', '1:1 RUN requires at least one argument'],
  ['RUN --network=bridge x', '1:5 invalid network mode "bridge"'],
  ['RUN --security=root x', '1:5 invalid security mode "root"'],
  ['RUN --mount=type=volume,target=/x y', '1:5 unsupported mount type "volume"'],
  ['RUN --mount=type=cache,target=/x,bogus=1 y', "1:5 unexpected key 'bogus' in 'bogus=1'"],
  ['RUN --mount=type=cache y', '1:5 mount type=cache requires a target'],
  ['RUN --mount=type=bind,target=/x,sharing=locked y', '1:5 invalid cache sharing set for bind mount'],
  ['RUN ["echo", 1]', '1:5 when using JSON array syntax, arrays must be comprised of strings only'],
  ['CMD ["a", null]', '1:5 when using JSON array syntax, arrays must be comprised of strings only'],
  ['CMD --link x', '1:5 unknown flag: --link'],
  ['ENV', '1:1 ENV requires at least one argument'],
  ['ENV foo', '1:1 ENV must have two arguments'],
  ['ENV a=1 b', '1:9 Syntax error - can\'t find = in "b". Must be of the form: name=value'],
  ['ENV =x', '1:5 ENV names can not be blank'],
  ['LABEL', '1:1 LABEL requires at least one argument'],
  ['LABEL a=1 =2', '1:11 LABEL names can not be blank'],
  ['ARG', '1:1 ARG requires at least one argument'],
  ['ARG a =b', '1:7 ARG names can not be blank'],
  ['MAINTAINER', '1:1 MAINTAINER requires exactly one argument'],
  ['USER', '1:1 USER requires exactly one argument'],
  ['WORKDIR', '1:1 WORKDIR requires exactly one argument'],
  ['STOPSIGNAL', '1:1 STOPSIGNAL requires exactly one argument'],
  ['STOPSIGNAL SIGNOPE', '1:12 Invalid signal: SIGNOPE'],
  ['EXPOSE', '1:1 EXPOSE requires at least one argument'],
  ['EXPOSE 80 http', '1:11 invalid containerPort: http'],
  ['EXPOSE 80/xyz', '1:8 invalid proto: xyz'],
  ['EXPOSE 70000', '1:8 invalid containerPort: 70000'],
  ['EXPOSE 90-80', '1:8 invalid range specified for container port: 90-80'],
  ['VOLUME', '1:1 VOLUME requires at least one argument'],
  ['VOLUME [""]', '1:8 VOLUME specified can not be an empty string'],
  ['COPY a', '1:1 COPY requires at least two arguments, but only one was provided. Destination could not be determined.'],
  ['ADD a', '1:1 ADD requires at least two arguments, but only one was provided. Destination could not be determined.'],
  ['COPY --mount=x a b', '1:6 unknown flag: --mount'],
  ['COPY --link=maybe a b', '1:6 expecting boolean value for flag --link, not: maybe'],
  ['COPY --link= a b', '1:6 missing a value on flag: --link'],
  ['COPY --from a b', '1:6 missing a value on flag: --from'],
  ['COPY --chmod=999 a b', '1:6 invalid chmod parameter: 999'],
  ['COPY --chmod=u+q a b', '1:6 invalid chmod parameter: u+q'],
  ['ADD --from=x a b', '1:5 unknown flag: --from'],
  ['ADD --parents a b', '1:5 unknown flag: --parents'],
  ['ADD --checksum=sha256:abc local.tar /x', "1:5 checksum can't be specified for non-HTTP(S) or non-Git sources"],
  ['COPY <<EOF <<EOF\nx\nEOF\n', '1:12 COPY cannot have a heredoc as a destination'],
  ['ONBUILD', '1:1 ONBUILD requires at least one argument'],
  ['ONBUILD ONBUILD RUN x', '1:9 Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
  ['ONBUILD FROM a', "1:9 FROM isn't allowed as an ONBUILD trigger"],
  ['ONBUILD maintainer me', "1:9 MAINTAINER isn't allowed as an ONBUILD trigger"],
  ['HEALTHCHECK', '1:1 HEALTHCHECK requires at least one argument'],
  ['HEALTHCHECK NONE x', '1:13 HEALTHCHECK NONE takes no arguments'],
  ['HEALTHCHECK TEST x', '1:13 Unknown type "TEST" in HEALTHCHECK (try CMD)'],
  ['HEALTHCHECK CMD', '1:13 Missing command after HEALTHCHECK CMD'],
  ['HEALTHCHECK CMD []', '1:13 Missing command after HEALTHCHECK CMD'],
  ['HEALTHCHECK --interval=5 CMD x', '1:13 time: missing unit in duration "5"'],
  ['HEALTHCHECK --timeout=1x CMD x', '1:13 time: unknown unit "x" in duration "1x"'],
  ['HEALTHCHECK --timeout=abc CMD x', '1:13 time: invalid duration "abc"'],
  ['HEALTHCHECK --interval=500us CMD x', '1:13 Interval "interval" cannot be less than 1ms'],
  ['HEALTHCHECK --retries=0 CMD x', '1:13 --retries must be at least 1 (not 0)'],
  ['HEALTHCHECK --retries=x CMD x', '1:13 strconv.ParseInt: parsing "x": invalid syntax'],
  ['HEALTHCHECK --mount=x CMD x', '1:13 unknown flag: --mount'],
  ['SHELL', '1:1 SHELL requires at least one argument'],
  ['SHELL []', '1:1 SHELL requires at least one argument'],
  ['SHELL /bin/bash -c', '1:7 SHELL requires the arguments to be in JSON form'],
  ['RUN \\\n  --mount=type=secret \\\n  x', '2:3 invalid secret mount: one of id, target or env is required'],
];

describe('instructions: errors carry the position of what is wrong', () => {
  for (const [text, expected] of ERRORS) {
    it(`${text.split('\n')[0]} -> ${expected}`, () => {
      const r = load(text);
      assert.deepEqual(r.errors, [expected]);
    });
  }

  it('keeps going after an error and reports every bad instruction', () => {
    const r = load('FROM a\nRUNN x\nRUN --chown=1 y\nCMD ok\n');
    assert.deepEqual(r.errors, ['2:1 unknown instruction: RUNN (did you mean RUN?)', '3:5 unknown flag: --chown']);
    assert.deepEqual(r.instructions.map((i) => i.kind), ['FROM', 'CMD']);
  });

  it('keeps a FROM with bad arguments best-effort so later instructions stay in their stage', () => {
    const r = load('FROM a b\nRUN x\n');
    assert.deepEqual(r.instructions.map((i) => i.kind), ['FROM', 'RUN']);
  });

  it('reports ONBUILD trigger problems as warnings (Docker checks them downstream)', () => {
    const r = load('ONBUILD RUNN x\n');
    assert.equal(r.diagnostics.length, 1);
    assert.equal(r.diagnostics[0]!.severity, 'warning');
    assert.equal(r.diagnostics[0]!.message, 'ONBUILD trigger: unknown instruction: RUNN (did you mean RUN?)');
  });
});

describe('instructions: FROM', () => {
  it('image only', () => assert.deepEqual(one('FROM alpine:3.20'), { kind: 'FROM', image: 'alpine:3.20' }));
  it('with a stage name (lower-cased) and platform', () => {
    assert.deepEqual(one('FROM --platform=$BUILDPLATFORM golang AS Build'), {
      kind: 'FROM',
      image: 'golang',
      stageName: 'build',
      stageNameText: 'Build',
      asText: 'AS',
      platform: '$BUILDPLATFORM',
    });
  });
  it('scratch and digests', () => {
    assert.equal(one('FROM scratch').image, 'scratch');
    assert.equal(one('FROM a@sha256:' + '0'.repeat(64) + ' as x').image, 'a@sha256:' + '0'.repeat(64));
  });
});

describe('instructions: RUN, CMD, ENTRYPOINT, SHELL', () => {
  it('shell form keeps the text as written', () => {
    assert.deepEqual(one('RUN echo "$HOME" \\\n  && ls').command, { form: 'shell', command: 'echo "$HOME"   && ls' });
  });
  it('exec form', () => {
    assert.deepEqual(one('RUN ["echo", "$HOME"]').command, { form: 'exec', args: ['echo', '$HOME'] });
    assert.deepEqual(one('CMD [ "a" , "b c" ]').command, { form: 'exec', args: ['a', 'b c'] });
  });
  it('malformed JSON is the shell form, like Docker', () => {
    assert.deepEqual(one('RUN ["c:\\windows\\system32\\tasklist.exe"]').command, {
      form: 'shell',
      command: '["c:\\windows\\system32\\tasklist.exe"]',
    });
    assert.deepEqual(one("CMD ['single', 'quotes']").command, { form: 'shell', command: "['single', 'quotes']" });
    assert.deepEqual(one('CMD ["a"] trailing').command, { form: 'shell', command: '["a"] trailing' });
  });
  it('escaped backslashes make valid JSON', () => {
    assert.deepEqual(one('RUN ["c:\\\\windows\\\\tasklist.exe"]').command, {
      form: 'exec',
      args: ['c:\\windows\\tasklist.exe'],
    });
  });
  it('ENTRYPOINT without arguments resets it (empty exec form)', () => {
    assert.deepEqual(one('ENTRYPOINT').command, { form: 'exec', args: [] });
    assert.deepEqual(one('ENTRYPOINT []').command, { form: 'exec', args: [] });
  });
  it('RUN flags', () => {
    const run = one('RUN --network=none --security=insecure --device=vendor.com/gpu=all x');
    assert.equal(run.network, 'none');
    assert.equal(run.security, 'insecure');
    assert.deepEqual(run.devices, ['vendor.com/gpu=all']);
  });
  it('RUN heredocs are attached', () => {
    const run = one('RUN <<EOF\necho hi\nEOF');
    assert.deepEqual(run.command, { form: 'shell', command: '<<EOF' });
    assert.equal((run.heredocs as { content: string }[])[0]!.content, 'echo hi\n');
  });
  it('SHELL', () => assert.deepEqual(one('SHELL ["powershell", "-command"]').shell, ['powershell', '-command']));
});

describe('instructions: RUN --mount', () => {
  const MOUNTS: [string, Record<string, unknown>][] = [
    ['type=cache,target=/root/.cache/go-build', { type: 'cache', target: '/root/.cache/go-build', readonly: false }],
    [
      'type=cache,target=/var/cache/apt,sharing=locked,id=apt,mode=0700,uid=1000,gid=1000',
      { type: 'cache', target: '/var/cache/apt', readonly: false, sharing: 'locked', id: 'apt', mode: 0o700, uid: 1000, gid: 1000 },
    ],
    ['target=.', { type: 'bind', target: '.', readonly: true }],
    ['type=bind,from=build,source=/out,target=/in,rw', { type: 'bind', from: 'build', source: '/out', target: '/in', readonly: false }],
    ['type=bind,target=/x,readwrite=true', { type: 'bind', target: '/x', readonly: false }],
    ['type=tmpfs,target=/tmp,size=64m', { type: 'tmpfs', target: '/tmp', readonly: false, size: '64m' }],
    ['type=secret,id=aws,target=/root/.aws/credentials', { type: 'secret', id: 'aws', target: '/root/.aws/credentials', readonly: true }],
    ['type=secret,id=API_KEY,env=API_KEY', { type: 'secret', id: 'API_KEY', env: 'API_KEY', readonly: true }],
    ['type=secret,target=/run/secrets/tok,required', { type: 'secret', id: 'tok', target: '/run/secrets/tok', readonly: true, required: true }],
    ['type=secret,source=npmrc,target=/x', { type: 'secret', id: 'npmrc', target: '/x', readonly: true }],
    ['type=ssh', { type: 'ssh', readonly: true }],
    ['type=ssh,id=default,required=true,mode=0600', { type: 'ssh', id: 'default', readonly: true, required: true, mode: 0o600 }],
    ['TYPE=Cache,Target=/x', { type: 'cache', target: '/x', readonly: false }],
    ['"type=bind","target=/a,b"', { type: 'bind', target: '/a,b', readonly: true }],
  ];
  for (const [spec, expected] of MOUNTS) {
    it(spec, () => assert.deepEqual(parseMount(spec), expected));
  }
  const BAD: [string, string][] = [
    ['type=bind,target=/x,mode=0755', 'mode not allowed for "bind" type mounts'],
    ['type=tmpfs,target=/x,uid=1', 'uid not allowed for "tmpfs" type mounts'],
    ['type=cache,target=/x,sharing=everyone', 'unsupported sharing value "everyone"'],
    ['type=cache,target=/x,mode=999', 'invalid value 999 for mode'],
    ['type=cache,target=/x,uid=-1', 'invalid value -1 for uid'],
    ['type=bind,target=/x,required', "unexpected key 'required' for mount type 'bind'"],
    ['type=secret,id=a,from=b', 'secret mount should not have a from'],
    ['type=secret,id=a,source=b', "both source and id can't be set"],
    ['type=cache,target=/x,ro=maybe', 'invalid value for ro: maybe'],
    ['type=cache,target', "invalid field 'target' must be a key=value pair"],
    ['type=cach,target=/x', 'unsupported mount type "cach" (did you mean cache?)'],
    ['type=cache,targt=/x', "unexpected key 'targt' in 'targt=/x' (did you mean target?)"],
    ['type=bind,target=/x,size=1g', 'size not allowed for "bind" type mounts'],
    ['"type=bind', 'failed to parse csv mounts: extraneous or missing " in quoted-field'],
  ];
  for (const [spec, message] of BAD) {
    it(`${spec} -> ${message}`, () => assert.equal(parseMount(spec), message));
  }

  it('RUN keeps mounts in order and defers ones that need variables', () => {
    const run = one('RUN --mount=type=cache,target=/a --mount=type=$T,target=/b --mount=type=tmpfs,target=/c x');
    assert.deepEqual((run.mounts as { target: string }[]).map((m) => m.target), ['/a', '/c']);
    assert.deepEqual(run.mountSpecs, ['type=cache,target=/a', 'type=$T,target=/b', 'type=tmpfs,target=/c']);
  });
});

describe('instructions: ENV, LABEL, ARG', () => {
  it('ENV key=value pairs keep quotes for the expander', () => {
    assert.deepEqual(one('ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy'), {
      kind: 'ENV',
      legacy: false,
      pairs: [
        { key: 'MY_NAME', value: '"John Doe"' },
        { key: 'MY_DOG', value: 'Rex\\ The\\ Dog' },
        { key: 'MY_CAT', value: 'fluffy' },
      ],
    });
  });
  it('legacy ENV key value takes the rest of the line', () => {
    assert.deepEqual(one('ENV ONE TWO= THREE=world'), { kind: 'ENV', legacy: true, pairs: [{ key: 'ONE', value: 'TWO= THREE=world' }] });
    assert.deepEqual(one('ENV MY_VAR my-value').pairs, [{ key: 'MY_VAR', value: 'my-value' }]);
  });
  it('empty values', () => {
    assert.deepEqual(one('ENV A= B=""').pairs, [
      { key: 'A', value: '' },
      { key: 'B', value: '""' },
    ]);
  });
  it('LABEL with quoted keys and multi-line values', () => {
    assert.deepEqual(one('LABEL "com.example.vendor"="ACME Incorporated" version="1.0"').pairs, [
      { key: '"com.example.vendor"', value: '"ACME Incorporated"' },
      { key: 'version', value: '"1.0"' },
    ]);
    assert.deepEqual(one('LABEL description="This text illustrates \\\nthat label-values can span multiple lines."').pairs, [
      { key: 'description', value: '"This text illustrates that label-values can span multiple lines."' },
    ]);
  });
  it('ARG with and without defaults, several per line', () => {
    assert.deepEqual(one('ARG user1 buildno=1 msg="hello world" empty='), {
      kind: 'ARG',
      args: [{ name: 'user1' }, { name: 'buildno', default: '1' }, { name: 'msg', default: '"hello world"' }, { name: 'empty', default: '' }],
    });
  });
  it('MAINTAINER keeps the whole text', () => assert.equal(one('MAINTAINER Jane <j@x.org>').maintainer, 'Jane <j@x.org>'));
});

describe('instructions: COPY and ADD', () => {
  it('COPY with every flag', () => {
    assert.deepEqual(
      one('COPY --from=build --chown=55:mygroup --chmod=644 --link --parents --exclude=*.txt --exclude=*.md a b /dst/'),
      {
        kind: 'COPY',
        sources: ['a', 'b'],
        inline: [],
        dest: '/dst/',
        json: false,
        link: true,
        parents: true,
        excludes: ['*.txt', '*.md'],
        from: 'build',
        chown: '55:mygroup',
        chmod: '644',
      },
    );
  });
  it('COPY JSON form for paths with spaces', () => {
    const c = one('COPY ["my file.txt", "/dest dir/"]');
    assert.deepEqual([c.sources, c.dest, c.json], [['my file.txt'], '/dest dir/', true]);
  });
  it('symbolic and variable chmod values are accepted', () => {
    assert.equal(one('COPY --chmod=u=rwX,go=rX . /app/').chmod, 'u=rwX,go=rX');
    assert.equal(one('COPY --chmod=+x s /app/').chmod, '+x');
    assert.equal(one('COPY --chmod=$MODE . .').chmod, '$MODE');
  });
  it('COPY --link=false', () => assert.equal(one('COPY --link=false a b').link, false));
  it('COPY heredoc sources become inline files', () => {
    const c = one('COPY <<EOF <<"RAW" /dest/\nhello $X\nEOF\nkeep $X\nRAW');
    assert.deepEqual(c.sources, []);
    assert.deepEqual(c.inline, [
      { name: 'EOF', content: 'hello $X\n', expand: true },
      { name: 'RAW', content: 'keep $X\n', expand: false },
    ]);
  });
  it('ADD with its flags', () => {
    assert.deepEqual(
      one('ADD --keep-git-dir=true --checksum=sha256:24454f83 --unpack=false --link https://github.com/moby/buildkit.git#v0.10.1 /buildkit'),
      {
        kind: 'ADD',
        sources: ['https://github.com/moby/buildkit.git#v0.10.1'],
        inline: [],
        dest: '/buildkit',
        json: false,
        link: true,
        excludes: [],
        keepGitDir: true,
        unpack: false,
        checksum: 'sha256:24454f83',
      },
    );
  });
  const KINDS: [string, string][] = [
    ['file.txt', 'local'],
    ['../x', 'local'],
    ['http://example.com/foobar', 'url'],
    ['https://example.com/archive.zip', 'url'],
    ['https://github.com/user/repo.git', 'git'],
    ['https://github.com/moby/buildkit.git#v0.14.1:docs', 'git'],
    ['git@github.com:moby/buildkit.git#v0.14.1:docs', 'git'],
    ['git@git.example.com:foo/bar.git', 'git'],
    ['ssh://git@host/repo', 'git'],
  ];
  for (const [src, kind] of KINDS) it(`ADD source ${src} is ${kind}`, () => assert.equal(sourceKind(src), kind));
});

describe('instructions: EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, HEALTHCHECK, ONBUILD', () => {
  it('EXPOSE keeps ports as written', () => assert.deepEqual(one('EXPOSE 80 443/tcp 53/udp 8000-8010 $PORT').ports, ['80', '443/tcp', '53/udp', '8000-8010', '$PORT']));
  const PORTS: [string, unknown][] = [
    ['80', { start: 80, end: 80, protocol: 'tcp' }],
    ['80/udp', { start: 80, end: 80, protocol: 'udp' }],
    ['80/TCP', { start: 80, end: 80, protocol: 'tcp' }],
    ['132/sctp', { start: 132, end: 132, protocol: 'sctp' }],
    ['8000-8010/tcp', { start: 8000, end: 8010, protocol: 'tcp' }],
    ['8080:80', { start: 80, end: 80, protocol: 'tcp', hostPart: '8080' }],
    ['127.0.0.1:8080:80/udp', { start: 80, end: 80, protocol: 'udp', hostPart: '127.0.0.1:8080' }],
    ['0', 'invalid containerPort: 0'],
  ];
  for (const [spec, expected] of PORTS) it(`port ${spec}`, () => assert.deepEqual(parsePortSpec(spec), expected));

  it('VOLUME JSON or words', () => {
    assert.deepEqual(one('VOLUME ["/var/www", "/var/log/apache2"]').paths, ['/var/www', '/var/log/apache2']);
    assert.deepEqual(one('VOLUME /var/log /var/db').paths, ['/var/log', '/var/db']);
  });
  it('USER and WORKDIR take the whole text', () => {
    assert.equal(one('USER patrick:staff').user, 'patrick:staff');
    assert.equal(one('WORKDIR /path/with space').path, '/path/with space');
  });
  it('STOPSIGNAL names and numbers', () => {
    assert.equal(one('STOPSIGNAL SIGKILL').signal, 'SIGKILL');
    assert.equal(one('STOPSIGNAL 9').signal, '9');
    assert.equal(one('STOPSIGNAL $SIG').signal, '$SIG');
  });
  it('HEALTHCHECK NONE', () => assert.deepEqual(one('HEALTHCHECK NONE'), { kind: 'HEALTHCHECK', test: ['NONE'] }));
  it('HEALTHCHECK CMD with Go durations in nanoseconds', () => {
    assert.deepEqual(
      one('HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=4 \\\n  CMD curl -f http://localhost/ || exit 1'),
      {
        kind: 'HEALTHCHECK',
        test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'],
        interval: 300e9,
        timeout: 3e9,
        startPeriod: 90e9,
        startInterval: 500e6,
        retries: 4,
      },
    );
    assert.deepEqual(one('HEALTHCHECK cmd ["/bin/check", "-q"]').test, ['CMD', '/bin/check', '-q']);
    assert.deepEqual(one('HEALTHCHECK --interval=0s CMD x'), { kind: 'HEALTHCHECK', test: ['CMD-SHELL', 'x'] });
  });
  it('HEALTHCHECK NONE with options warns that they are ignored', () => {
    const r = load('HEALTHCHECK --interval=5s NONE');
    assert.deepEqual(r.diagnostics.map((d) => [d.severity, d.message]), [['warning', 'HEALTHCHECK NONE ignores its options (--interval)']]);
  });
  it('ONBUILD keeps the expression and parses the trigger', () => {
    const o = one('ONBUILD COPY --from=build /usr/bin/app /app');
    assert.equal(o.expression, 'COPY --from=build /usr/bin/app /app');
    assert.equal((o.trigger as { kind: string; from: string }).kind, 'COPY');
    assert.equal((o.trigger as { from: string }).from, 'build');
  });
  it('ONBUILD with a heredoc keeps the body in the expression', () => {
    const o = one('ONBUILD RUN <<EOF\necho hi\nEOF');
    assert.equal(o.expression, 'RUN <<EOF\necho hi\nEOF');
  });
});

describe('instructions: expansion', () => {
  const env = new Map([
    ['FOO', '/bar'],
    ['abc', 'hello'],
    ['MODE', '440'],
    ['PORT', '8080'],
    ['PORTS', '80 443/udp'],
    ['SIG', 'SIGQUIT'],
    ['T', 'cache'],
    ['USERNAME', 'what_user'],
  ]);
  const expanded = (text: string, vars = env) => {
    const r = load(text);
    assert.deepEqual(r.errors, []);
    const e = expandInstruction(r.instructions[0]!, vars, r.parsed.directives.escape);
    assert.ok(e.ok, e.ok ? '' : e.diagnostic.message);
    const { raw: _r, line: _l, column: _c, endLine: _e, ...rest } = e.instruction as Instruction & Record<string, unknown>;
    return rest;
  };

  it('the reference example: WORKDIR ${FOO}, ADD . $FOO, COPY \\$FOO /quux', () => {
    assert.equal(expanded('WORKDIR ${FOO}').path, '/bar');
    assert.equal(expanded('ADD . $FOO').dest, '/bar');
    assert.deepEqual(expanded('COPY \\$FOO /quux').sources, ['$FOO']);
  });
  it('ENV uses the values from before the instruction for every pair', () => {
    assert.deepEqual(expanded('ENV abc=bye def=$abc').pairs, [
      { key: 'abc', value: 'bye' },
      { key: 'def', value: 'hello' },
    ]);
  });
  it('ENV and LABEL lose quotes and escapes', () => {
    assert.deepEqual(expanded('ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog').pairs, [
      { key: 'MY_NAME', value: 'John Doe' },
      { key: 'MY_DOG', value: 'Rex The Dog' },
    ]);
    assert.deepEqual(expanded('LABEL "com.example.vendor"="ACME $abc" single=\'$abc\'').pairs, [
      { key: 'com.example.vendor', value: 'ACME hello' },
      { key: 'single', value: '$abc' },
    ]);
    assert.deepEqual(expanded('ENV ONE TWO= THREE=world').pairs, [{ key: 'ONE', value: 'TWO= THREE=world' }]);
  });
  it('ARG defaults are expanded, a scope example from the reference', () => {
    assert.deepEqual(expanded('ARG CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}').args, [{ name: 'CONT_IMG_VER', default: 'v1.0.0' }]);
    assert.equal(expanded('USER ${username:-some_user}').user, 'some_user');
    assert.equal(expanded('USER ${USERNAME:-some_user}').user, 'what_user');
  });
  it('WORKDIR with an unset variable', () => assert.equal(expanded('WORKDIR $FOO/$DIRNAME', new Map([['FOO', '/path']])).path, '/path/'));
  it('EXPOSE splits expanded words and checks them', () => {
    assert.deepEqual(expanded('EXPOSE $PORT $PORTS').ports, ['8080', '80', '443/udp']);
    const r = load('EXPOSE $X');
    const e = expandInstruction(r.instructions[0]!, new Map([['X', 'nope']]));
    assert.equal(e.ok, false);
    assert.equal(!e.ok && e.diagnostic.message, 'invalid containerPort: nope');
  });
  it('COPY flags, sources, excludes and heredoc sources', () => {
    const c = expanded('COPY --chmod=$MODE --chown=$abc --from=$abc --exclude=$abc.txt <<EOF $FOO /dst\necho "hi ${abc}" \\$abc\nEOF');
    assert.equal(c.chmod, '440');
    assert.equal(c.chown, 'hello');
    assert.equal(c.from, 'hello');
    assert.deepEqual(c.excludes, ['hello.txt']);
    assert.deepEqual(c.sources, ['/bar']);
    assert.deepEqual(c.inline, [{ name: 'EOF', content: 'echo "hi hello" $abc\n', expand: true }]);
  });
  it('quoted heredoc delimiters keep the body as written', () => {
    const c = expanded('COPY <<-"EOT" /script.sh\n\techo "hello ${FOO}"\nEOT');
    assert.deepEqual(c.inline, [{ name: 'EOT', content: 'echo "hello ${FOO}"\n', expand: false }]);
  });
  it('VOLUME, STOPSIGNAL, FROM', () => {
    assert.deepEqual(expanded('VOLUME $FOO /data').paths, ['/bar', '/data']);
    assert.equal(expanded('STOPSIGNAL $SIG').signal, 'SIGQUIT');
    assert.equal(expanded('FROM --platform=$abc base:$abc AS x').image, 'base:hello');
  });
  it('RUN, CMD, ENTRYPOINT, HEALTHCHECK, SHELL and ONBUILD are left to the shell or the downstream build', () => {
    assert.deepEqual(expanded('RUN echo $FOO').command, { form: 'shell', command: 'echo $FOO' });
    assert.deepEqual(expanded('CMD ["echo", "$FOO"]').command, { form: 'exec', args: ['echo', '$FOO'] });
    assert.deepEqual(expanded('ENTRYPOINT echo $FOO').command, { form: 'shell', command: 'echo $FOO' });
    assert.deepEqual(expanded('HEALTHCHECK CMD echo $FOO').test, ['CMD-SHELL', 'echo $FOO']);
    assert.equal(expanded('ONBUILD WORKDIR $FOO').expression, 'WORKDIR $FOO');
  });
  it('RUN --mount values are expanded and re-checked', () => {
    const run = expanded('RUN --mount=type=$T,target=$FOO x');
    assert.deepEqual(run.mounts, [{ type: 'cache', target: '/bar', readonly: false }]);
    const r = load('RUN --mount=type=$T,target=/x y');
    const e = expandInstruction(r.instructions[0]!, new Map([['T', 'volume']]));
    assert.equal(!e.ok && e.diagnostic.message, 'unsupported mount type "volume"');
  });
  it('the escape directive applies to expansion', () => {
    assert.equal(expanded('# escape=`\nWORKDIR `$FOO').path, '$FOO');
  });
  it('reports expansion errors at the instruction and lists unset names', () => {
    const r = load('FROM a\nWORKDIR ${FOO:?needs FOO}');
    const e = expandInstruction(r.instructions[1]!, new Map());
    assert.equal(e.ok, false);
    assert.deepEqual(!e.ok && [e.diagnostic.line, e.diagnostic.column, e.diagnostic.message], [
      2,
      1,
      'failed to process "${FOO:?needs FOO}": FOO: needs FOO',
    ]);
    const ok = expandInstruction(load('USER $NOBODY').instructions[0]!, new Map());
    assert.deepEqual(ok.ok && ok.unset, ['NOBODY']);
  });
  it('STOPSIGNAL is checked after expansion', () => {
    const e = expandInstruction(load('STOPSIGNAL $S').instructions[0]!, new Map([['S', 'BOGUS']]));
    assert.equal(!e.ok && e.diagnostic.message, 'Invalid signal: BOGUS');
  });
});
