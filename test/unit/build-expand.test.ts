import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { expand, expandWord, expandWords } from '../../src/build/expand.js';
import { isBerthError } from '../../src/base/errors.js';

const vars = new Map([
  ['PWD', '/home'],
  ['SHELL', 'bash'],
  ['EMPTY', ''],
  ['KOREAN', '한국어'],
  ['SPACED', 'a  b'],
  ['str', 'foobarbaz'],
  ['FOO', '/bar'],
]);

/** [input, expected value] with the vars above and `\` as escape. */
const WORD_CASES: [string, string][] = [
  ['hello', 'hello'],
  ['he\'llo\'', 'hello'],
  ['he"llo"', 'hello'],
  ["'hello world'", 'hello world'],
  ['"hello world"', 'hello world'],
  ['he\\"llo', 'he"llo'],
  ["he\\'llo", "he'llo"],
  ['\\$PWD', '$PWD'],
  ['\\${PWD}', '${PWD}'],
  ['$PWD', '/home'],
  ['${PWD}', '/home'],
  ['${PWD}_x', '/home_x'],
  ['$PWD_x', ''],
  ['"$PWD"', '/home'],
  ["'$PWD'", '$PWD'],
  ['"\'$PWD\'"', "'/home'"],
  ['\'"$PWD"\'', '"$PWD"'],
  ['"a\\"b"', 'a"b'],
  ['"a\\$b"', 'a$b'],
  ['"a\\\\b"', 'a\\b'],
  ['"a\\nb"', 'a\\nb'],
  ['$', '$'],
  ['a$', 'a$'],
  ['$.', '$.'],
  ['$1', ''],
  ['$$', ''],
  ['$UNSET', ''],
  ['${UNSET}', ''],
  ['${KOREAN}', '한국어'],
  ['a\\ b', 'a b'],
  ['trailing\\', 'trailing'],
  // defaults and alternatives
  ['${UNSET:-word}', 'word'],
  ['${EMPTY:-word}', 'word'],
  ['${SHELL:-word}', 'bash'],
  ['${UNSET-word}', 'word'],
  ['${EMPTY-word}', ''],
  ['${SHELL-word}', 'bash'],
  ['${UNSET:+word}', ''],
  ['${EMPTY:+word}', ''],
  ['${SHELL:+word}', 'word'],
  ['${UNSET+word}', ''],
  ['${EMPTY+word}', 'word'],
  ['${SHELL+word}', 'word'],
  ['${SHELL:?boom}', 'bash'],
  ['${EMPTY?boom}', ''],
  // nested words may hold variables, quotes and escaped braces
  ['${UNSET:-$PWD}', '/home'],
  ['${UNSET:-${SHELL:-x}}', 'bash'],
  ['${UNSET:-"a b"}', 'a b'],
  ['${UNSET:-a\\}b}', 'a}b'],
  ['${UNSET:-}', ''],
  // pattern operators (the reference's pre-release forms)
  ['${str#f*b}', 'arbaz'],
  ['${str##f*b}', 'az'],
  ['${str%b*}', 'foobar'],
  ['${str%%b*}', 'foo'],
  ['${str/ba/fo}', 'fooforbaz'],
  ['${str//ba/fo}', 'fooforfoz'],
  ['${str#x}', 'foobarbaz'],
  ['${str/o}', 'fobarbaz'],
  ['${str//o/}', 'fbarbaz'],
  ['${str#foo\\*}', 'foobarbaz'],
  ['${FOO#/}', 'bar'],
];

describe('expand: words as the builder expands them', () => {
  for (const [input, expected] of WORD_CASES) {
    it(`${input} -> ${JSON.stringify(expected)}`, () => {
      const r = expand(input, vars);
      assert.ok(r.ok, r.ok ? '' : r.error);
      assert.equal(r.value, expected);
    });
  }

  it('follows the reference example: WORKDIR ${FOO}, ADD . $FOO, COPY \\$FOO /quux', () => {
    const env = new Map([['FOO', '/bar']]);
    assert.equal(expandWord('${FOO}', env), '/bar');
    assert.equal(expandWord('$FOO', env), '/bar');
    assert.equal(expandWord('\\$FOO', env), '$FOO');
  });

  it('uses the backtick as escape character under `# escape=`', () => {
    assert.equal(expandWord('`$PWD', vars, { escape: '`' }), '$PWD');
    assert.equal(expandWord('c:\\dir', vars, { escape: '`' }), 'c:\\dir');
    assert.equal(expandWord('"a`"b"', vars, { escape: '`' }), 'a"b');
  });
});

describe('expand: errors', () => {
  const ERRORS: [string, string][] = [
    ['${', "syntax error: missing '}'"],
    ['${PWD', "syntax error: missing '}'"],
    ['${}', 'syntax error: bad substitution'],
    ['${:x}', 'syntax error: bad substitution'],
    ['${{x}', 'syntax error: bad substitution'],
    ['${PWD:=x}', 'unsupported modifier (=) in substitution'],
    ['${PWD:-x', "syntax error: missing '}'"],
    ["'open", 'unexpected end of statement while looking for matching single-quote'],
    ['"open', 'unexpected end of statement while looking for matching double-quote'],
    ['${UNSET:?}', 'UNSET: is not allowed to be unset'],
    ['${EMPTY:?}', 'EMPTY: is not allowed to be empty'],
    ['${UNSET?}', 'UNSET: is not allowed to be unset'],
    ['${UNSET:?custom message}', 'UNSET: custom message'],
    ['${EMPTY:?must be set}', 'EMPTY: must be set'],
  ];
  for (const [input, message] of ERRORS) {
    it(`${input} fails with "${message}"`, () => {
      const r = expand(input, vars);
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error, `failed to process ${JSON.stringify(input)}: ${message}`);
    });
  }

  it('expandWord throws an invalid-argument BerthError', () => {
    assert.throws(
      () => expandWord('${X:?needed}', new Map()),
      (e: unknown) => isBerthError(e, 'invalid-argument') && /X: needed/.test((e as Error).message),
    );
  });
});

describe('expand: word splitting', () => {
  const WORDS: [string, string[]][] = [
    ['a b  c', ['a', 'b', 'c']],
    ['"a b" c', ['a b', 'c']],
    ["'a b'c d", ['a bc', 'd']],
    ['a\\ b', ['a b']],
    ['$SPACED', ['a', 'b']],
    ['"$SPACED"', ['a  b']],
    ['x$SPACED', ['xa', 'b']],
    ['80 $PWD/tcp', ['80', '/home/tcp']],
    ['""', []],
    ['', []],
  ];
  for (const [input, words] of WORDS) {
    it(`${input} -> ${JSON.stringify(words)}`, () => {
      assert.deepEqual(expandWords(input, vars), words);
    });
  }
});

describe('expand: modes', () => {
  it('keepUnset leaves references to unset variables as written', () => {
    const r = expand('$A ${B} ${C:-x} $PWD', vars, { keepUnset: true });
    assert.ok(r.ok);
    assert.equal(r.value, '$A ${B} ${C:-x} /home');
  });

  it('keepQuotes (heredoc bodies) expands variables but keeps quotes and unrelated escapes', () => {
    const r = expand('echo "hello ${SHELL}" \'$PWD\' \\$PWD printf "a\\nb"\n', vars, { keepQuotes: true });
    assert.ok(r.ok);
    assert.equal(r.value, 'echo "hello bash" \'/home\' $PWD printf "a\\nb"\n');
  });

  it('rawQuotes and rawEscapes keep the characters while honouring them', () => {
    const r = expand('"a b" c\\ d', vars, { rawQuotes: true, rawEscapes: true });
    assert.ok(r.ok);
    assert.deepEqual(r.words, ['"a b"', 'c\\ d']);
  });

  it('reports used and unset names', () => {
    const r = expand('$PWD ${NOPE:-x} $EMPTY', vars);
    assert.ok(r.ok);
    assert.deepEqual(r.used.sort(), ['EMPTY', 'PWD']);
    assert.deepEqual(r.unset, ['NOPE']);
  });
});
