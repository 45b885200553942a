import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../../src/base/errors.js';
import { applyChanges } from '../../src/image/changes.js';
import type { ContainerConfigSpec } from '../../src/image/types.js';

const apply = (changes: string[], base: ContainerConfigSpec = {}) => applyChanges(base, changes);

function rejects(changes: string[], message: string | RegExp) {
  assert.throws(() => apply(changes), (e: unknown) => {
    assert.ok(isBerthError(e, 'invalid-argument'), String(e));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

describe('applyChanges', () => {
  it('CMD and ENTRYPOINT in exec and shell form', () => {
    assert.deepEqual(apply(['CMD ["echo","hi"]']).Cmd, ['echo', 'hi']);
    assert.deepEqual(apply(['CMD echo "hi there"']).Cmd, ['/bin/sh', '-c', 'echo "hi there"']);
    assert.deepEqual(apply(['cmd [not json']).Cmd, ['/bin/sh', '-c', '[not json']);
    assert.deepEqual(apply(['ENTRYPOINT ["/init"]']).Entrypoint, ['/init']);
    assert.deepEqual(apply(['CMD x'], { Shell: ['/bin/bash', '-ec'] }).Cmd, ['/bin/bash', '-ec', 'x']);
  });

  it('ENTRYPOINT clears an inherited Cmd unless CMD came first', () => {
    assert.equal(apply(['ENTRYPOINT ["/e"]'], { Cmd: ['old'] }).Cmd, null);
    assert.deepEqual(apply(['CMD ["new"]', 'ENTRYPOINT ["/e"]'], { Cmd: ['old'] }).Cmd, ['new']);
    assert.deepEqual(apply(['ENTRYPOINT ["/e"]', 'CMD ["new"]'], { Cmd: ['old'] }).Cmd, ['new']);
  });

  it('ENV in both forms, with quotes and expansion, replacing existing keys', () => {
    const base = { Env: ['PATH=/usr/bin', 'A=old'] };
    const out = apply(['ENV A=1 B="two words" C=\'$lit\'', 'ENV PATH=$PATH:/x D=${A}-${NOPE:-dflt}', 'ENV LEGACY some value'], base);
    assert.deepEqual(out.Env, ['PATH=/usr/bin:/x', 'A=1', 'B=two words', 'C=$lit', 'D=1-dflt', 'LEGACY=some value']);
    assert.deepEqual(base.Env, ['PATH=/usr/bin', 'A=old'], 'input not modified');
    assert.deepEqual(apply(['ENV E=a\\ b F=\\$x']).Env, ['E=a b', 'F=$x']);
  });

  it('LABEL, USER, WORKDIR, EXPOSE, VOLUME, STOPSIGNAL', () => {
    const out = apply([
      'LABEL a=1 "b c"=2', 'USER app:app', 'WORKDIR /srv', 'WORKDIR sub/../data', 'EXPOSE 80 53/udp 8000-8001',
      'VOLUME ["/v1", "/v 2"]', 'VOLUME /v3 /v4', 'STOPSIGNAL SIGQUIT',
    ]);
    assert.deepEqual(out.Labels, { a: '1', 'b c': '2' });
    assert.equal(out.User, 'app:app');
    assert.equal(out.WorkingDir, '/srv/data');
    assert.deepEqual(out.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} });
    assert.deepEqual(Object.keys(out.Volumes ?? {}), ['/v1', '/v 2', '/v3', '/v4']);
    assert.equal(out.StopSignal, 'SIGQUIT');
    assert.equal(apply(['ENV D=/opt', 'WORKDIR $D/x']).WorkingDir, '/opt/x');
  });

  it('ONBUILD and HEALTHCHECK', () => {
    assert.deepEqual(apply(['ONBUILD RUN make']).OnBuild, ['RUN make']);
    assert.deepEqual(apply(['HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://x/']).Healthcheck, {
      Interval: 30e9, Timeout: 90e9, Retries: 3, Test: ['CMD-SHELL', 'curl -f http://x/'],
    });
    assert.deepEqual(apply(['HEALTHCHECK CMD ["true"]']).Healthcheck, { Test: ['CMD', 'true'] });
    assert.deepEqual(apply(['HEALTHCHECK NONE']).Healthcheck, { Test: ['NONE'] });
  });

  it('several instructions in one change, with continuations and comments', () => {
    const out = apply(['# comment\nENV A=1 \\\n  B=2\nUSER nobody']);
    assert.deepEqual(out.Env, ['A=1', 'B=2']);
    assert.equal(out.User, 'nobody');
  });

  it('rejects what Docker rejects', () => {
    rejects(['RUN echo'], 'run is not a valid change command');
    rejects(['FROM x'], 'from is not a valid change command');
    rejects(['ENV'], 'ENV requires at least one argument');
    rejects(['ENV =x'], 'ENV names can not be blank');
    rejects(['ENV a=1 b'], 'Syntax error - can\'t find = in "b". Must be of the form: name=value');
    rejects(['EXPOSE 80/xyz'], 'Invalid containerPort: 80/xyz');
    rejects(['EXPOSE 70000'], 'Invalid containerPort: 70000');
    rejects(['VOLUME [""]'], 'VOLUME specified can not be an empty string');
    rejects(['STOPSIGNAL SIGNOPE'], 'Invalid signal: SIGNOPE');
    rejects(['USER a b'], 'USER requires exactly one argument');
    rejects(['ONBUILD ONBUILD RUN x'], "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    rejects(['HEALTHCHECK --interval=1xs CMD x'], /invalid duration "1xs"/);
    rejects(['HEALTHCHECK BOGUS'], /Unknown type "BOGUS"/);
    rejects(['ENV A="unterminated'], /matching double-quote/);
  });
});
