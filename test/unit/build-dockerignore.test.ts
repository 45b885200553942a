import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cleanPath, createIgnoreMatcher, ignoreFileCandidates, parseDockerignore } from '../../src/build/dockerignore.js';

/** [pattern, path, ignored] for a single pattern (parent directories count). */
const SINGLE: [string, string, boolean][] = [
  ['**', 'file', true],
  ['**', 'dir/file', true],
  ['**/', 'file', true],
  ['**/**', 'dir/file', true],
  ['dir/**', 'dir/file', true],
  ['dir/**', 'dir/dir2/file', true],
  ['dir/**', 'dir', false],
  ['**/dir', 'dir', true],
  ['**/dir', 'dir/file', true],
  ['**/dir2/*', 'dir/dir2/file', true],
  ['**/dir2/**', 'dir/dir2/dir3/file', true],
  ['**file', 'file', true],
  ['**file', 'dir/file', true],
  ['**/file', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file.txt', true],
  ['**/file*txt', 'dir/dir/file.txt', true],
  ['**/**/*.txt', 'dir/dir/file.txt', true],
  ['**/**/*.txt2', 'dir/dir/file.txt', false],
  ['**/*.txt', 'file.txt', true],
  ['**/*.go', 'a/b/c.go', true],
  ['**/*.go', 'a/b/c.gox', false],
  ['a**/*.txt', 'a/file.txt', true],
  ['a**/*.txt', 'a/dir/dir/file.txt', true],
  ['a/*.txt', 'a/dir/file.txt', false],
  ['a/*.txt', 'a/file.txt', true],
  ['a[b-d]e', 'ae', false],
  ['a[b-d]e', 'ace', true],
  ['a[b-d]e', 'aae', false],
  ['a[^b-d]e', 'aze', true],
  ['.*', '.foo', true],
  ['.*', 'foo', false],
  ['abc.def', 'abcdef', false],
  ['abc.def', 'abc.def', true],
  ['abc?def', 'abcZdef', true],
  ['abc?def', 'abcdef', false],
  ['abc?def', 'abc/def', false],
  ['a\\\\', 'a\\', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['**/foo/bar', 'foo/bar', true],
  ['**/foo/bar', 'dir/dir2/foo/bar', true],
  ['abc/**', 'abc/def/ghi', true],
  ['**/.foo', '.foo', true],
  ['**/.foo', 'bar.foo', false],
  ['a(b)c/def', 'a(b)c/def', true],
  ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
  ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  ['*', 'top', true],
  ['*', 'dir/file', true],
  ['node_modules', 'node_modules/x/y.js', true],
  ['node_modules', 'src/node_modules', false],
  ['/abs', 'abs/x', true],
  ['./rel', 'rel', true],
  ['dir/', 'dir/x', true],
  ['a/../b', 'b', true],
  ['*.md', 'docs/a.md', false],
];

describe('dockerignore: single patterns', () => {
  for (const [pattern, path, expected] of SINGLE) {
    it(`${pattern} ${expected ? 'ignores' : 'keeps'} ${path}`, () => {
      assert.equal(createIgnoreMatcher([pattern]).ignores(path), expected);
    });
  }
});

describe("dockerignore: Docker's documented examples", () => {
  const m = createIgnoreMatcher('# comment\n*/temp*\n*/*/temp*\ntemp?\n');
  const EXAMPLE: [string, boolean][] = [
    ['somedir/temporary.txt', true],
    ['somedir/temp', true],
    ['somedir/subdir/temporary.txt', true],
    ['tempa', true],
    ['tempb', true],
    ['temporary.txt', false],
    ['temp', false],
    ['a/b/c/temp', false],
    ['# comment', false],
  ];
  for (const [path, expected] of EXAMPLE) {
    it(`*/temp* */*/temp* temp?: ${path} ${expected ? 'ignored' : 'kept'}`, () => assert.equal(m.ignores(path), expected));
  }

  it('**/*.go excludes .go files in any directory', () => {
    const g = createIgnoreMatcher('**/*.go');
    assert.deepEqual(['main.go', 'cmd/x/main.go', 'README'].map((p) => g.ignores(p)), [true, true, false]);
  });

  it('*.md with !README.md keeps only README.md', () => {
    const r = createIgnoreMatcher('*.md\n!README.md\n');
    assert.deepEqual(['CHANGELOG.md', 'README.md'].map((p) => r.ignores(p)), [true, false]);
  });

  it('*.md, !README*.md, README-secret.md: README files except README-secret.md', () => {
    const r = createIgnoreMatcher('*.md\n!README*.md\nREADME-secret.md\n');
    assert.deepEqual(['a.md', 'README.md', 'README-dev.md', 'README-secret.md'].map((p) => r.ignores(p)), [true, false, false, true]);
  });

  it('*.md, README-secret.md, !README*.md: the last match wins, so every README is kept', () => {
    const r = createIgnoreMatcher('*.md\nREADME-secret.md\n!README*.md\n');
    assert.deepEqual(['a.md', 'README.md', 'README-secret.md'].map((p) => r.ignores(p)), [true, false, false]);
  });

  it('can list the Dockerfile and .dockerignore themselves (COPY then leaves them out)', () => {
    const r = createIgnoreMatcher('Dockerfile\n.dockerignore\n');
    assert.deepEqual(['Dockerfile', '.dockerignore', 'src/Dockerfile'].map((p) => r.ignores(p)), [true, true, false]);
  });
});

describe('dockerignore: exceptions and directories', () => {
  it('an excluded directory excludes its contents; an exception re-includes one file', () => {
    const m = createIgnoreMatcher('docs\n!docs/keep.md\n');
    assert.equal(m.ignores('docs', true), true);
    assert.equal(m.ignores('docs/other.md'), true);
    assert.equal(m.ignores('docs/keep.md'), false);
    assert.equal(m.ignores('docs/sub/x'), true);
  });

  it('an exception for a directory re-includes everything below it', () => {
    const m = createIgnoreMatcher('*\n!src\n');
    assert.equal(m.ignores('README'), true);
    assert.equal(m.ignores('src/a/b.ts'), false);
    assert.equal(m.ignores('other/src'), true);
  });

  it('mayMatchInside tells a walker which directories it can skip entirely', () => {
    const m = createIgnoreMatcher('node_modules\n.git\nbuild\n!build/keep\n*/cache\n!**/important\n');
    assert.equal(m.mayMatchInside('src'), true); // not ignored
    assert.equal(m.mayMatchInside('node_modules'), true); // **/important could be inside
    const strict = createIgnoreMatcher('node_modules\n.git\nbuild\n!build/keep\n');
    assert.equal(strict.mayMatchInside('node_modules'), false);
    assert.equal(strict.mayMatchInside('.git'), false);
    assert.equal(strict.mayMatchInside('build'), true);
    assert.equal(strict.mayMatchInside('build/other'), false);
    assert.equal(strict.mayMatchInside('build/keep'), true);
  });

  it('mayMatchInside follows wildcards in exception patterns segment by segment', () => {
    const m = createIgnoreMatcher('vendor\n!vendor/*/LICENSE\n');
    assert.equal(m.mayMatchInside('vendor'), true);
    assert.equal(m.mayMatchInside('vendor/lib'), true);
    assert.equal(m.mayMatchInside('vendor/lib/sub'), false);
  });

  it('never ignores the context root and accepts ./ and / prefixes', () => {
    const m = createIgnoreMatcher('*\n');
    assert.equal(m.ignores('.'), false);
    assert.equal(m.ignores(''), false);
    assert.equal(m.ignores('./a'), true);
    assert.equal(m.ignores('/a'), true);
  });
});

describe('dockerignore: file syntax', () => {
  it('skips comments (only at column 1), blank lines and trims whitespace', () => {
    const f = parseDockerignore('\uFEFF# c\n\n  a  \n  # not a comment\n! b\n/c/\n');
    assert.deepEqual(f.patterns, [
      { pattern: 'a', exclusion: false, line: 3 },
      { pattern: '# not a comment', exclusion: false, line: 4 },
      { pattern: 'b', exclusion: true, line: 5 },
      { pattern: 'c', exclusion: false, line: 6 },
    ]);
    assert.deepEqual(f.diagnostics, []);
  });

  it('reports bad patterns with their line and skips them', () => {
    const f = parseDockerignore('ok\n!\n[abc\na\\\n[]\n[z-a]\n[a-]\n');
    assert.deepEqual(f.patterns.map((p) => p.pattern), ['ok']);
    assert.deepEqual(f.diagnostics.map((d) => `${d.line} ${d.message}`), [
      '2 illegal exclusion pattern: "!"',
      '3 syntax error in pattern',
      '4 syntax error in pattern',
      '5 syntax error in pattern',
      '6 syntax error in pattern',
      '7 syntax error in pattern',
    ]);
  });

  it('cleans paths like Go', () => {
    const CLEAN: [string, string][] = [
      ['', '.'],
      ['a//b', 'a/b'],
      ['./a/./b/', 'a/b'],
      ['a/../..', '..'],
      ['/../a', '/a'],
      ['/', '/'],
    ];
    for (const [input, output] of CLEAN) assert.equal(cleanPath(input), output, input);
  });

  it('looks for <Dockerfile>.dockerignore before .dockerignore', () => {
    assert.deepEqual(ignoreFileCandidates('build/app.Dockerfile'), ['build/app.Dockerfile.dockerignore', '.dockerignore']);
  });
});
