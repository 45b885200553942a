import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type RawInstruction, argsPosition, parseDockerfile, positionAt } from '../../src/build/parser.js';

/** keyword, rawArgs, line:column-endLine, flags as name=value. */
function summary(i: RawInstruction): string {
  const flags = i.flags.map((f) => (f.value === undefined ? `--${f.name}` : `--${f.name}=${f.value}`)).join(' ');
  return `${i.keyword}|${i.rawArgs}|${i.line}:${i.column}-${i.endLine}${flags ? `|${flags}` : ''}`;
}

function parse(text: string) {
  const r = parseDockerfile(text);
  return { ...r, summary: r.instructions.map(summary) };
}

/** [name, Dockerfile, expected summaries, expected diagnostics as "severity line:col message"] */
const CASES: [string, string, string[], string[]?][] = [
  ['simple instruction', 'FROM alpine\n', ['FROM|alpine|1:1-1']],
  ['keyword case is normalised', 'from alpine\nrUn echo\n', ['FROM|alpine|1:1-1', 'RUN|echo|2:1-2']],
  ['no trailing newline', 'FROM a', ['FROM|a|1:1-1']],
  ['CRLF line endings', 'FROM a\r\nRUN b \\\r\n c\r\n', ['FROM|a|1:1-1', 'RUN|b  c|2:1-3']],
  ['byte order mark', '\uFEFFFROM a\n', ['FROM|a|1:1-1']],
  ['leading whitespace is ignored', '   FROM a\n\t RUN b\n', ['FROM|a|1:4-1', 'RUN|b|2:3-2']],
  ['comments and blank lines', '# c1\n\nFROM a\n  # indented comment\nRUN b # not a comment\n', [
    'FROM|a|3:1-3',
    'RUN|b # not a comment|5:1-5',
  ]],
  ['trailing whitespace in arguments is trimmed', 'RUN echo hi   \n', ['RUN|echo hi|1:1-1']],
  ['line continuation keeps whitespace', 'RUN echo \\\n  hello \\\n  world\n', ['RUN|echo   hello   world|1:1-3']],
  ['continuation with blanks after the escape', 'RUN a \\  \t\nb\n', ['RUN|a b|1:1-2']],
  ['comment lines inside a continuation are dropped', 'RUN echo hello \\\n# comment\n  # indented\nworld\n', [
    'RUN|echo hello world|1:1-4',
  ]],
  [
    'empty continuation lines are skipped with a warning',
    'RUN a \\\n\n   \nb\n',
    ['RUN|a b|1:1-4'],
    ['warning 2:1 Empty continuation line'],
  ],
  ['comments do not continue', '# comment \\\nFROM a\n', ['FROM|a|2:1-2']],
  ['escaped escape at line end does not continue', 'RUN echo \\\\\nFROM a\n', ['RUN|echo \\\\|1:1-1', 'FROM|a|2:1-2']],
  ['continuation at end of file', 'RUN a \\\n', ['RUN|a|1:1-1']],
  ['continuation into a comment then end of file', 'RUN a \\\n# c\n', ['RUN|a|1:1-2']],
  ['the reference escape example joins lines with \\', 'FROM n\nCOPY testfile.txt c:\\\\\nRUN dir c:\\\n', [
    'FROM|n|1:1-1',
    'COPY|testfile.txt c:\\\\|2:1-2',
    'RUN|dir c:|3:1-3',
  ]],
  ['backtick escape directive', '# escape=`\nFROM n\nCOPY testfile.txt c:\\\nRUN dir c:\\\nRUN a `\n b\n', [
    'FROM|n|2:1-2',
    'COPY|testfile.txt c:\\|3:1-3',
    'RUN|dir c:\\|4:1-4',
    'RUN|a  b|5:1-6',
  ]],
  ['flags are split off in order', 'COPY --from=build --chown=1:2 --link a b\n', [
    'COPY|a b|1:1-1|--from=build --chown=1:2 --link',
  ]],
  ['repeated flags are kept', 'RUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b x\n', [
    'RUN|x|1:1-1|--mount=type=cache,target=/a --mount=type=tmpfs,target=/b',
  ]],
  ['quoted flag values', 'COPY --chown="a b" --exclude=\'*.md\' x y\n', ['COPY|x y|1:1-1|--chown=a b --exclude=*.md']],
  ['-- ends the flags', 'COPY -- --weird-name /dst\n', ['COPY|--weird-name /dst|1:1-1']],
  ['a single dash is an argument', 'RUN -x\n', ['RUN|-x|1:1-1']],
  ['flags on a continuation line', 'RUN \\\n  --network=none \\\n  echo\n', ['RUN|echo|1:1-3|--network=none']],
  ['empty instruction arguments', 'FROM a\nCMD\n', ['FROM|a|1:1-1', 'CMD||2:1-2']],
  ['exec form keeps the JSON text', 'CMD ["echo", "hi"]\n', ['CMD|["echo", "hi"]|1:1-1']],
  ['ONBUILD keeps the trigger text', 'ONBUILD RUN echo\n', ['ONBUILD|RUN echo|1:1-1']],
  ['a file with only comments has no instructions', '# nothing\n\n', [], ['error 2:1 file with no instructions']],
  ['an empty file has no instructions', '', [], ['error 1:1 file with no instructions']],
];

describe('parser: lines, continuations, comments, flags', () => {
  for (const [name, text, expected, diags] of CASES) {
    it(name, () => {
      const r = parse(text);
      assert.deepEqual(r.summary, expected);
      assert.deepEqual(
        r.diagnostics.map((d) => `${d.severity} ${d.line}:${d.column} ${d.message}`),
        diags ?? [],
      );
    });
  }

  it('tags the empty-continuation warning with its lint rule', () => {
    const r = parse('RUN a \\\n\nb\n');
    assert.equal(r.diagnostics[0]?.rule, 'NoEmptyContinuation');
  });

  it('keeps comments directly above an instruction', () => {
    const r = parse('# base image\n# second line\nFROM a\n\n# unrelated\n\nRUN b\n');
    assert.deepEqual(r.instructions[0]!.comments, ['base image', 'second line']);
    assert.deepEqual(r.instructions[1]!.comments, []);
  });

  it('records keyword spelling and the full logical line', () => {
    const r = parse('Run --network=none echo \\\n  hi\n');
    const i = r.instructions[0]!;
    assert.equal(i.keywordText, 'Run');
    assert.equal(i.original, 'Run --network=none echo   hi');
  });

  it('never throws on arbitrary input', () => {
    const alphabet = ['\\', '`', '"', "'", '#', '<<', '<<-', 'EOF', '\n', ' ', '\t', 'RUN', 'FROM', '--', '=', '[', ']', '$', '{', '}'];
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let n = 0; n < 500; n++) {
      let text = '';
      const len = Math.floor(rand() * 40);
      for (let k = 0; k < len; k++) text += alphabet[Math.floor(rand() * alphabet.length)];
      assert.doesNotThrow(() => parseDockerfile(text), `input ${JSON.stringify(text)}`);
    }
  });
});

describe('parser: positions', () => {
  it('maps offsets of a joined line back to physical lines and columns', () => {
    const r = parse('RUN --mount=type=cache,target=/x \\\n    echo \\\n      done\n');
    const i = r.instructions[0]!;
    assert.deepEqual({ line: i.flags[0]!.line, column: i.flags[0]!.column }, { line: 1, column: 5 });
    assert.equal(i.rawArgs, 'echo       done');
    assert.deepEqual(argsPosition(i), { line: 2, column: 5 });
    assert.deepEqual(positionAt(i, i.original.indexOf('done')), { line: 3, column: 7 });
  });

  it('gives flag positions on later lines', () => {
    const r = parse('COPY \\\n  --from=x \\\n  --chown=1 a b\n');
    const [from, chown] = r.instructions[0]!.flags;
    assert.deepEqual([from!.line, from!.column, chown!.line, chown!.column], [2, 3, 3, 3]);
  });

  it('positions the ONBUILD trigger at its keyword', () => {
    const r = parse('ONBUILD   COPY --from=a x y\n');
    const child = r.instructions[0]!.child!;
    assert.equal(child.keyword, 'COPY');
    assert.deepEqual([child.line, child.column], [1, 11]);
    assert.deepEqual([child.flags[0]!.name, child.flags[0]!.column], ['from', 16]);
    assert.equal(child.rawArgs, 'x y');
  });
});

describe('parser: directives', () => {
  const DIRECTIVES: [string, string, Record<string, unknown>, string[]?][] = [
    ['syntax', '# syntax=docker/dockerfile:1\nFROM a\n', { syntax: 'docker/dockerfile:1', escape: '\\' }],
    ['escape backtick', '# escape=`\nFROM a\n', { escape: '`' }],
    ['escape backslash', '# escape=\\\nFROM a\n', { escape: '\\' }],
    ['whitespace variants', '#  Syntax = x \n#\tescape= `\nFROM a\n', { syntax: 'x', escape: '`' }],
    ['indented directive', '   # escape=`\nFROM a\n', { escape: '`' }],
    ['after an instruction it is a comment', 'FROM a\n# escape=`\n', { escape: '\\' }],
    ['after a comment it is a comment', '# About\n# escape=`\nFROM a\n', { escape: '\\' }],
    ['after a blank line it is a comment', '\n# escape=`\nFROM a\n', { escape: '\\' }],
    ['an unknown directive ends directives', '# unknowndirective=value\n# escape=`\nFROM a\n', { escape: '\\' }],
    ['continuation is not supported', '# escape=` \\\nFROM a\n', { escape: '\\' }, ["error 1:1 invalid escape token '` \\' does not match ` or \\"]],
    ['invalid escape token', '# escape=x\nFROM a\n', { escape: '\\' }, ["error 1:1 invalid escape token 'x' does not match ` or \\"]],
    ['repeated directive', '# escape=`\n# escape=\\\nFROM a\n', { escape: '`' }, ['error 2:1 only one escape parser directive can be used']],
    [
      'check directive',
      '# check=skip=JSONArgsRecommended,StageNameCasing;error=true\nFROM a\n',
      { escape: '\\', check: { skip: ['JSONArgsRecommended', 'StageNameCasing'], skipAll: false, error: true, experimental: [] } },
    ],
    ['check skip all', '# check=skip=all\nFROM a\n', { escape: '\\', check: { skip: [], skipAll: true, error: false, experimental: [] } }],
    ['bad check option', '# check=fail=1\nFROM a\n', { escape: '\\' }, ['error 1:1 invalid check option "fail"']],
    ['bad check bool', '# check=error=yes\nFROM a\n', { escape: '\\' }, [
      'error 1:1 failed to parse check option "error=yes": strconv.ParseBool: parsing "yes": invalid syntax',
    ]],
  ];
  for (const [name, text, expected, diags] of DIRECTIVES) {
    it(name, () => {
      const r = parseDockerfile(text);
      assert.deepEqual({ ...r.directives }, expected);
      assert.deepEqual(r.diagnostics.map((d) => `${d.severity} ${d.line}:${d.column} ${d.message}`), diags ?? []);
    });
  }

  it('directive lines are not instructions or description comments', () => {
    const r = parseDockerfile('# syntax=x\nFROM a\n');
    assert.equal(r.instructions.length, 1);
    assert.deepEqual(r.instructions[0]!.comments, []);
  });
});

describe('parser: heredocs', () => {
  it('reads a RUN heredoc body up to its terminator', () => {
    const r = parse('FROM a\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nRUN next\n');
    assert.deepEqual(r.summary, ['FROM|a|1:1-1', 'RUN|<<EOF|2:1-5', 'RUN|next|6:1-6']);
    const h = r.instructions[1]!.heredocs;
    assert.deepEqual(h, [
      {
        name: 'EOF',
        content: 'apt-get update\napt-get install -y curl\n',
        rawContent: 'apt-get update\napt-get install -y curl\n',
        chomp: false,
        quoted: false,
        line: 3,
        endLine: 5,
      },
    ]);
  });

  it('does not treat body lines as comments, continuations or instructions', () => {
    const r = parse('RUN <<EOF\n# keep me\nline \\\nFROM x\nEOF\n');
    assert.equal(r.instructions.length, 1);
    assert.equal(r.instructions[0]!.heredocs[0]!.content, '# keep me\nline \\\nFROM x\n');
  });

  it('<<- strips leading tabs from the body and the terminator', () => {
    const r = parse('COPY <<-EOT /script.sh\n\techo "hello ${FOO}"\n\t\tnested\n  spaces stay\n\tEOT\n');
    const h = r.instructions[0]!.heredocs[0]!;
    assert.equal(h.chomp, true);
    assert.equal(h.content, 'echo "hello ${FOO}"\nnested\n  spaces stay\n');
    assert.equal(h.rawContent, '\techo "hello ${FOO}"\n\t\tnested\n  spaces stay\n');
  });

  it('without <<- a tab-indented terminator is body text', () => {
    const r = parse('RUN <<EOT\n\tEOT\nEOT\n');
    assert.equal(r.instructions[0]!.heredocs[0]!.content, '\tEOT\n');
  });

  const QUOTING: [string, string, boolean][] = [
    ['<<EOF', 'EOF', false],
    ['<<"EOF"', 'EOF', true],
    ["<<'EOF'", 'EOF', true],
    ['<<E"O"F', 'EOF', true],
    ["<<eo\\'f", "eo'f", false],
    ['<<-"EOT"', 'EOT', true],
    ['<< EOF', 'EOF', false],
    ["<<'one two'", 'one two', true],
    ['<<$EOF', '$EOF', false],
  ];
  for (const [word, name, quoted] of QUOTING) {
    it(`delimiter ${word} is ${JSON.stringify(name)}, ${quoted ? 'quoted' : 'expanded'}`, () => {
      const r = parse(`RUN ${word} cat\nbody\n${name}\n`);
      const h = r.instructions[0]!.heredocs;
      assert.equal(h.length, 1);
      assert.equal(h[0]!.name, name);
      assert.equal(h[0]!.quoted, quoted);
      assert.equal(h[0]!.content, 'body\n');
    });
  }

  it('reads several heredocs on one line in order', () => {
    const r = parse('RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n');
    const h = r.instructions[0]!.heredocs;
    assert.deepEqual(h.map((x) => [x.name, x.content, x.line, x.endLine]), [
      ['FILE1', 'I am\nfirst\n', 2, 4],
      ['FILE2', 'I am\nsecond\n', 5, 7],
    ]);
    assert.equal(r.instructions[0]!.endLine, 7);
  });

  it('matches each terminator only against its own heredoc', () => {
    const r = parse('COPY <<X <<Y /dest\nY\nX\nX\nY\n');
    const h = r.instructions[0]!.heredocs;
    assert.deepEqual(h.map((x) => [x.name, x.content]), [
      ['X', 'Y\n'],
      ['Y', 'X\n'],
    ]);
  });

  it('records a file descriptor prefix', () => {
    const r = parse('RUN 3<<EOF cat /dev/fd/3\nx\nEOF\n');
    assert.equal(r.instructions[0]!.heredocs[0]!.fd, 3);
  });

  it('supports COPY and ADD heredoc sources, and ONBUILD RUN heredocs', () => {
    const r = parse('COPY <<EOF greeting.txt\nhello world\nEOF\nADD <<A /a\n1\nA\nONBUILD RUN <<B\nb\nB\n');
    assert.deepEqual(r.instructions.map((i) => i.heredocs.map((h) => h.content)), [['hello world\n'], ['1\n'], ['b\n']]);
    assert.equal(r.instructions[2]!.child!.heredocs[0]!.name, 'B');
  });

  it('ignores heredoc syntax in other instructions, the exec form and quoted words', () => {
    const r = parse('ENV A=<<EOF\nRUN ["<<EOF"]\nRUN echo "<<EOF"\nRUN cat<<EOF\nEOF\n');
    assert.deepEqual(r.instructions.map((i) => i.heredocs.length), [0, 0, 0, 0, 0]);
    assert.equal(r.instructions.length, 5);
  });

  it('reports an unterminated heredoc at its instruction', () => {
    const r = parse('FROM a\nRUN <<EOF\necho\n');
    assert.deepEqual(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`), ['2:1 unterminated heredoc']);
    assert.equal(r.instructions.length, 2);
  });

  it('joins continuations before looking for heredocs', () => {
    const r = parse('RUN \\\n  <<EOF cat\nx\nEOF\n');
    assert.equal(r.instructions[0]!.heredocs[0]!.content, 'x\n');
    assert.equal(r.instructions[0]!.heredocs[0]!.line, 3);
  });
});
