import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseGitRef } from '../../src/build/git-source.js';

// Which ADD sources are Git repositories, and what of them is added (BuildKit's forms).

describe('parseGitRef', () => {
  it('reads the fragment and query forms', () => {
    assert.deepEqual(parseGitRef('https://example.com/org/repo.git'), { remote: 'https://example.com/org/repo.git' });
    assert.deepEqual(parseGitRef('https://example.com/org/repo.git#v1.2:docs/api'), { remote: 'https://example.com/org/repo.git', ref: 'v1.2', subdir: 'docs/api' });
    assert.deepEqual(parseGitRef('https://example.com/org/repo.git#:sub'), { remote: 'https://example.com/org/repo.git', subdir: 'sub' });
    assert.deepEqual(parseGitRef('git@github.com:org/repo.git#main'), { remote: 'git@github.com:org/repo.git', ref: 'main' });
    assert.deepEqual(parseGitRef('ssh://git@example.com/repo#dev'), { remote: 'ssh://git@example.com/repo', ref: 'dev' });
    assert.deepEqual(parseGitRef('git://example.com/repo'), { remote: 'git://example.com/repo' });
    assert.deepEqual(parseGitRef('https://example.com/org/repo?ref=v2&subdir=./a/&keep-git-dir=true&checksum=abc123'), {
      remote: 'https://example.com/org/repo', ref: 'v2', subdir: 'a', keepGitDir: true, checksum: 'abc123',
    });
  });

  it('leaves plain URLs and paths alone, and refuses a subdir that leaves the repository', () => {
    assert.equal(parseGitRef('https://example.com/file.tar.gz'), undefined);
    assert.equal(parseGitRef('src/app.git'), undefined);
    assert.equal(parseGitRef('./git@notremote'), undefined);
    assert.throws(() => parseGitRef('https://example.com/repo.git#main:../etc'), /leaves the repository/);
    assert.throws(() => parseGitRef('https://example.com/repo.git?ref=a#b'), /ref given twice/);
  });
});
