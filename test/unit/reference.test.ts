import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from '../../src/base/errors.js';
import {
  familiarName, familiarString, idPrefixHex, isFullId, isIdPrefix, normalizeReference, parseReference,
  referenceString, tryParseReference,
} from '../../src/image/reference.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseReference', () => {
  const cases: [string, string, string][] = [
    // input, full normalized, familiar
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['foo/bar', 'docker.io/foo/bar:latest', 'foo/bar:latest'],
    ['foo/bar/baz:v1', 'docker.io/foo/bar/baz:v1', 'foo/bar/baz:v1'],
    ['docker.io/library/foo/bar', 'docker.io/library/foo/bar:latest', 'library/foo/bar:latest'],
    ['localhost:5000/x', 'localhost:5000/x:latest', 'localhost:5000/x:latest'],
    ['localhost/x:1', 'localhost/x:1', 'localhost/x:1'],
    ['ghcr.io/o/r:tag', 'ghcr.io/o/r:tag', 'ghcr.io/o/r:tag'],
    ['Example.COM/x', 'Example.COM/x:latest', 'Example.COM/x:latest'],
    ['[::1]:5000/x', '[::1]:5000/x:latest', '[::1]:5000/x:latest'],
    ['a__b/c-d---e.f_g', 'docker.io/a__b/c-d---e.f_g:latest', 'a__b/c-d---e.f_g:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
  ];
  for (const [input, full, familiar] of cases) {
    it(`${input} -> ${full}`, () => {
      const ref = parseReference(input);
      assert.equal(referenceString(ref), full);
      assert.equal(familiarString(ref), familiar);
      assert.equal(ref.name, `${ref.domain}/${ref.path}`);
    });
  }

  it('splits domain, path, tag and digest', () => {
    assert.deepEqual(parseReference(`localhost:5000/a/b:t@${D}`), {
      domain: 'localhost:5000', path: 'a/b', name: 'localhost:5000/a/b', tag: 't', digest: D,
    });
  });

  it('adds latest only when asked and when there is no digest', () => {
    assert.equal(parseReference('busybox', { defaultTag: false }).tag, undefined);
    assert.equal(parseReference(`busybox@${D}`).tag, undefined);
    assert.equal(normalizeReference('alpine'), 'docker.io/library/alpine:latest');
  });

  const invalid: [string, string][] = [
    ['Busybox', 'invalid reference format: repository name (library/Busybox) must be lowercase'],
    ['foo/Bar:tag', 'invalid reference format: repository name (foo/Bar) must be lowercase'],
    ['busybox:', 'invalid reference format'],
    ['busybox:tag with space', 'invalid reference format'],
    [':tag', 'invalid reference format'],
    ['-busybox', 'invalid reference format'],
    ['busybox/', 'invalid reference format'],
    ['a//b', 'invalid reference format'],
    ['busybox@sha256:abc', 'invalid reference format'],
    [`busybox@sha256:${'a'.repeat(40)}`, 'invalid checksum digest length'],
    [`busybox@md5:${'a'.repeat(32)}`, 'unsupported digest algorithm'],
    [`busybox:${'t'.repeat(129)}`, 'invalid reference format'],
    ['a'.repeat(64), `invalid repository name (${'a'.repeat(64)}), cannot specify 64-byte hexadecimal strings`],
    ['', 'invalid reference format: repository name must have at least one component'],
    [`${'a'.repeat(250)}/bbbbbb`, 'invalid reference format: repository name must not be more than 255 characters'],
  ];
  for (const [input, message] of invalid) {
    it(`rejects ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '...' : input)}`, () => {
      assert.throws(() => parseReference(input), (e: unknown) => {
        assert.ok(isBerthError(e, 'invalid-argument'));
        assert.equal(e.message, message);
        return true;
      });
      assert.equal(tryParseReference(input), undefined);
    });
  }

  it('accepts a tag of 128 characters', () => {
    assert.equal(parseReference(`busybox:${'t'.repeat(128)}`).tag?.length, 128);
  });
});

describe('familiarName', () => {
  it('shortens only docker.io official images', () => {
    assert.equal(familiarName(parseReference('busybox')), 'busybox');
    assert.equal(familiarName(parseReference('foo/bar')), 'foo/bar');
    assert.equal(familiarName(parseReference('quay.io/library/x')), 'quay.io/library/x');
  });
});

describe('id helpers', () => {
  it('recognizes ids and id prefixes', () => {
    assert.ok(isFullId('a'.repeat(64)));
    assert.ok(!isFullId('a'.repeat(63)));
    assert.ok(isIdPrefix('a'));
    assert.ok(isIdPrefix('sha256:0123abc'));
    assert.ok(!isIdPrefix('busybox'));
    assert.ok(!isIdPrefix('ABC'));
    assert.ok(!isIdPrefix('a'.repeat(65)));
    assert.equal(idPrefixHex('sha256:ab'), 'ab');
    assert.equal(idPrefixHex('ab'), 'ab');
  });
});
