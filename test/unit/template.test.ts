import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatRows, goJson, goSprintf, isTableFormat, renderTemplate, Template } from '../../src/cli/template.js';
import { alignColumns, tabwrite } from '../../src/cli/table.js';
import { isBerthError } from '../../src/base/errors.js';

const container = {
  Id: 'f3a9c2b1d4e5',
  Name: '/web',
  Args: ['-g', 'daemon off;'],
  State: { Status: 'running', Running: true, Pid: 4242, ExitCode: 0, Health: null },
  Config: { Image: 'nginx:latest', Labels: { 'com.example.team': 'infra', 'a.first': 'yes' }, Env: ['A=1', 'B=2'] },
  NetworkSettings: { Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] } },
  SizeRw: 0,
  Ratio: 0.25,
};

const r = (tpl: string, data: unknown = container) => renderTemplate(tpl, data);

function fails(tpl: string, message: string | RegExp, data: unknown = container): void {
  assert.throws(
    () => renderTemplate(tpl, data),
    (e: unknown) => {
      assert.ok(isBerthError(e, 'invalid-argument'), `expected invalid-argument, got ${String(e)}`);
      if (typeof message === 'string') assert.equal((e as Error).message, message);
      else assert.match((e as Error).message, message);
      return true;
    },
  );
}

describe('renderTemplate: fields and values', () => {
  it('renders fields, nested fields and text', () => {
    assert.equal(r('{{.Id}}'), 'f3a9c2b1d4e5');
    assert.equal(r('name={{.Name}} status={{.State.Status}} pid={{.State.Pid}}'), 'name=/web status=running pid=4242');
    assert.equal(r('plain text'), 'plain text');
    assert.equal(r(''), '');
  });

  it('prints missing fields as <no value> and nil as <nil>', () => {
    assert.equal(r('{{.Nope}}'), '<no value>');
    assert.equal(r('{{.Nope.Deeper}}'), '<no value>');
    assert.equal(r('{{.State.Health}}'), '<nil>');
    assert.equal(r('{{.State.Health.Status}}'), '<no value>');
    assert.equal(renderTemplate('{{.}}', undefined), '<no value>');
    assert.equal(renderTemplate('{{.}}', null), '<nil>');
  });

  it('prints values like Go fmt %v', () => {
    assert.equal(r('{{.Args}}'), '[-g daemon off;]');
    assert.equal(r('{{.Config.Labels}}'), 'map[a.first:yes com.example.team:infra]');
    assert.equal(r('{{.State.Running}} {{.SizeRw}} {{.Ratio}}'), 'true 0 0.25');
    assert.equal(r('{{.X}}', { X: 1e6 }), '1000000');
    assert.equal(r('{{.X}}', { X: 1234567.5 }), '1.2345675e+06');
    assert.equal(r('{{.X}}', { X: new Map([['b', 1], ['a', 2]]) }), 'map[a:2 b:1]');
    assert.equal(r('{{.X}}', { X: [] }), '[]');
  });

  it('reads Map instances and calls methods with arguments', () => {
    assert.equal(r('{{.k}}', new Map([['k', 'v']])), 'v');
    const row = {
      Labels: 'a=1,b=2',
      Label(name: string) {
        return this.Labels.split(',').find((kv) => kv.startsWith(name + '='))?.split('=')[1] ?? '';
      },
    };
    assert.equal(r('{{.Label "b"}}|{{.Label "zz"}}|', row), '2||');
    class Row {
      constructor(readonly id: string) {}
      Short(n: number) {
        return this.id.slice(0, n);
      }
    }
    assert.equal(r('{{.Short 4}}', new Row('abcdef')), 'abcd');
  });

  it('supports string, raw string, number, char, bool and nil literals', () => {
    assert.equal(r('{{"a\\tb\\u00e9"}}'), 'a\tbé');
    assert.equal(r('{{`raw\\n`}}'), 'raw\\n');
    assert.equal(r('{{42}} {{-7}} {{1.5}} {{0x1F}} {{1e3}} {{1_000}}'), '42 -7 1.5 31 1000 1000');
    assert.equal(r("{{'a'}}"), '97');
    assert.equal(r('{{true}} {{false}}'), 'true false');
  });

  it('handles trim markers and comments', () => {
    assert.equal(r('a  {{- .Name -}}  \n b'), 'a/webb');
    assert.equal(r('a {{- /* note */ -}} b'), 'ab');
    assert.equal(r('a{{/* note */}}b'), 'ab');
    assert.equal(r('{{-3}}'), '-3'); // no space: a negative number, not a trim marker
    assert.equal(r('x\n{{- range .Args}}\n  {{.}}\n{{- end}}\n'), 'x\n  -g\n  daemon off;\n');
  });
});

describe('renderTemplate: control structures', () => {
  it('if / else if / else', () => {
    const t = '{{if eq .State.Status "running"}}up{{else if eq .State.Status "exited"}}down{{else}}other{{end}}';
    assert.equal(r(t), 'up');
    assert.equal(r(t, { State: { Status: 'exited' } }), 'down');
    assert.equal(r(t, { State: { Status: 'created' } }), 'other');
    assert.equal(r('{{if .Nope}}y{{else}}n{{end}}'), 'n');
    assert.equal(r('{{if .Config.Env}}y{{end}}{{if .SizeRw}}z{{end}}{{if ""}}s{{end}}{{if .X}}m{{end}}', { ...container, X: {} }), 'y');
  });

  it('with sets dot, with else', () => {
    assert.equal(r('{{with .State}}{{.Pid}}{{end}}'), '4242');
    assert.equal(r('{{with .State.Health}}{{.Status}}{{else}}no health{{end}}'), 'no health');
    assert.equal(r('{{with $x := .Name}}{{$x}}{{.}}{{end}}'), '/web/web');
  });

  it('range over slices, maps (sorted), ints, with else, break and continue', () => {
    assert.equal(r('{{range .Config.Env}}[{{.}}]{{end}}'), '[A=1][B=2]');
    assert.equal(r('{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}'), '0:A=1 1:B=2 ');
    assert.equal(r('{{range $e := .Config.Env}}{{$e}};{{end}}'), 'A=1;B=2;');
    assert.equal(r('{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}'), 'a.first=yes;com.example.team=infra;');
    assert.equal(r('{{range .Nope}}x{{else}}empty{{end}}'), 'empty');
    assert.equal(r('{{range .X}}x{{else}}empty{{end}}', { X: [] }), 'empty');
    assert.equal(r('{{range 3}}{{.}}{{end}}'), '012');
    assert.equal(r('{{range .X}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}', { X: [0, 1, 2, 3, 4] }), '02');
    assert.equal(
      r('{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostPort}}{{end}}'),
      '80/tcp -> 8080',
    );
  });

  it('variables: $ is the root, declarations and assignment, scoped to blocks', () => {
    assert.equal(r('{{range .Args}}{{$.Name}}{{end}}'), '/web/web');
    assert.equal(r('{{$n := .Name}}{{$n}}'), '/web');
    assert.equal(r('{{$n := 1}}{{if true}}{{$n = 2}}{{end}}{{$n}}'), '2');
    assert.equal(r('{{$x := .State}}{{$x.Status}}'), 'running');
    fails('{{if true}}{{$y := 1}}{{end}}{{$y}}', 'template parsing error: template: :1: undefined variable "$y"');
  });
});

describe('renderTemplate: functions', () => {
  it("Docker's functions: json, join, split, upper, lower, title, pad, truncate", () => {
    assert.equal(r('{{json .Config.Labels}}'), '{"com.example.team":"infra","a.first":"yes"}');
    assert.equal(r('{{json .Args}}'), '["-g","daemon off;"]');
    assert.equal(r('{{json .Nope}}'), 'null');
    assert.equal(r('{{json .X}}', { X: '<a&b>' }), '"<a&b>"');
    assert.equal(r('{{join .Config.Env ","}}'), 'A=1,B=2');
    assert.equal(r('{{split "a:b:c" ":"}}'), '[a b c]');
    assert.equal(r('{{index (split .Config.Image ":") 1}}'), 'latest');
    assert.equal(r('{{upper .State.Status}} {{lower "ABC"}} {{title "hello big_world foo-bar"}}'), 'RUNNING abc Hello Big_world Foo-Bar');
    assert.equal(r('[{{pad .Name 2 3}}][{{pad "" 2 3}}]'), '[  /web   ][]');
    assert.equal(r('{{truncate .Id 4}} {{truncate "ab" 5}}'), 'f3a9 ab');
  });

  it('index, len, slice', () => {
    assert.equal(r('{{index .Config.Labels "com.example.team"}}'), 'infra');
    assert.equal(r('[{{index .Config.Labels "missing"}}]'), '[]');
    assert.equal(r('{{index .Args 1}}'), 'daemon off;');
    assert.equal(r('{{index .X 1 0}}', { X: [[1], [2, 3]] }), '2');
    assert.equal(r('{{len .Args}} {{len .Config.Labels}} {{len "héllo"}}'), '2 2 6');
    assert.equal(r('{{slice .Id 0 4}} {{slice .Args 1}}'), 'f3a9 [daemon off;]');
    fails('{{index .Args 5}}', 'template: :1:2: executing "" at <index .Args 5>: error calling index: index out of range: 5');
    fails('{{len 3}}', 'template: :1:2: executing "" at <len 3>: error calling len: len of type int');
  });

  it('comparisons and logic', () => {
    assert.equal(r('{{eq 1 1}} {{eq "a" "b"}} {{eq .State.Pid 1 2 4242}} {{ne 1 2}}'), 'true false true true');
    assert.equal(r('{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}'), 'true true true false');
    assert.equal(r('{{and 1 0 2}} {{and 1 2}} {{or 0 "" "z"}} {{or 0 ""}} {{not .Nope}} {{not 1}}'), '0 2 z  true false');
    assert.equal(r('{{if and .State.Running (eq .State.ExitCode 0)}}ok{{end}}'), 'ok');
    assert.equal(r('{{or .Nope "default"}}'), 'default');
    assert.equal(r('{{eq .Nope nil}}'), 'true');
    // and/or short-circuit: the failing call is never made
    assert.equal(r('{{and false (index .Args 9)}}'), 'false');
    fails('{{eq 1 "a"}}', 'template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison');
    fails('{{lt true false}}', /error calling lt: invalid type for comparison/);
  });

  it('print, println, printf', () => {
    assert.equal(r('{{print 1 2 "a" 3 "b" "c"}}'), '1 2a3bc');
    assert.equal(r('{{println .Name 1}}'), '/web 1\n');
    assert.equal(r('{{printf "%s has pid %d" .Name .State.Pid}}'), '/web has pid 4242');
    assert.equal(r('{{printf "%v %q %.2f" .Args .Name .Ratio}}'), '[-g daemon off;] "/web" 0.25');
    assert.equal(r('{{.Name | printf "<%s>"}}'), '</web>');
    assert.equal(r('{{.State.Pid | printf "%s-%d" .Name}}'), '/web-4242');
  });

  it('pipelines pass the value as the last argument', () => {
    assert.equal(r('{{.State.Status | upper}}'), 'RUNNING');
    assert.equal(r('{{.Config.Image | split ":" | len}}', container), '1');
    assert.equal(r('{{"a,b" | split "," | len}}'), '1');
    assert.equal(r('{{split "a,b" "," | len}}'), '2');
    assert.equal(r('{{(split "a,b" ",") | len}}'), '2');
    fails('{{.Args | join ","}}', 'template: :1:10: executing "" at <join ",">: wrong type for value; expected []string; got string');
  });
});

describe('renderTemplate: errors', () => {
  it('reports parse errors like Go with the template parsing error prefix', () => {
    fails('{{.Name', 'template parsing error: template: :1: unclosed action');
    fails('{{foo .Name}}', 'template parsing error: template: :1: function "foo" not defined');
    fails('{{if .Name}}x', 'template parsing error: template: :1: unexpected EOF');
    fails('x{{end}}', 'template parsing error: template: :1: unexpected {{end}}');
    fails('{{else}}', 'template parsing error: template: :1: unexpected {{else}}');
    fails('{{}}', 'template parsing error: template: :1: missing value for command');
    fails('{{if}}{{end}}', 'template parsing error: template: :1: missing value for if');
    fails('{{$x}}', 'template parsing error: template: :1: undefined variable "$x"');
    fails('{{break}}', 'template parsing error: template: :1: {{break}} outside {{range}}');
    fails('{{"abc}}', 'template parsing error: template: :1: unterminated quoted string');
    fails('a\n\n{{.X | 3}}', 'template parsing error: template: :3: non executable command in pipeline stage 2');
    fails('{{/* x }}', 'template parsing error: template: :1: unclosed comment');
    fails('{{template "x"}}', /template parsing error: template: :1: \{\{template\}\} is not supported/);
  });

  it('reports execution errors with line, column and node like Go', () => {
    fails('{{.Name.First}}', 'template: :1:2: executing "" at <.Name.First>: can\'t evaluate field First in type string');
    fails('x\n  {{.Args.Foo}}', "template: :2:4: executing \"\" at <.Args.Foo>: can't evaluate field Foo in type []interface {}");
    fails('{{.Name 1}}', 'template: :1:2: executing "" at <.Name>: Name is not a method but has arguments');
    fails('{{"x" 1}}', /can't give argument to non-function "x"/);
    fails('{{join .Args}}', 'template: :1:2: executing "" at <join .Args>: wrong number of args for join: want 2 got 1');
    fails('{{range .Name}}{{end}}', /range can't iterate over \/web/);
    fails('{{index .Config.Labels "com.example.team" "x" "y"}}', /cannot index slice\/array with type string|can't index item/);
  });

  it('parses once and executes many times', () => {
    const t = Template.parse('{{.A}}-{{.B}}');
    assert.equal(t.execute({ A: 1, B: 2 }), '1-2');
    assert.equal(t.execute({ A: 'x' }), 'x-<no value>');
  });
});

describe('goSprintf', () => {
  it('formats verbs, flags, width and precision like fmt', () => {
    assert.equal(goSprintf('%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%c', [42, 42, 42, 42, 255, 255, 8, 5, 65]), '   42|42   |00042|+42|ff|FF|10|101|A');
    assert.equal(goSprintf('%s|%10s|%-10s|%.2s|%q', ['abc', 'abc', 'abc', 'abc', 'a"b\n']), 'abc|       abc|abc       |ab|"a\\"b\\n"');
    assert.equal(goSprintf('%f|%.2f|%8.3f|%e|%g|%G', [1.5, 3.14159, 2.5, 1234.5678, 0.000012, 1e21]), '1.500000|3.14|   2.500|1.234568e+03|1.2e-05|1E+21');
    assert.equal(goSprintf('%v %v %v %v %t', [[1, 'a'], { b: 2, a: 1 }, null, true, false]), '[1 a] map[a:1 b:2] <nil> true false');
    assert.equal(goSprintf('100%%', []), '100%');
    assert.equal(goSprintf('%x', ['hi']), '6869');
    assert.equal(goSprintf('%T %T %T', ['s', 1, 1.5]), 'string int float64');
  });

  it('reports argument problems like fmt', () => {
    assert.equal(goSprintf('%d', ['abc']), '%!d(string=abc)');
    assert.equal(goSprintf('%s', [5]), '%!s(int=5)');
    assert.equal(goSprintf('%d', [1.5]), '%!d(float64=1.5)');
    assert.equal(goSprintf('%s %s', ['a']), 'a %!s(MISSING)');
    assert.equal(goSprintf('%s', ['a', 'b', 3]), 'a%!(EXTRA string=b, int=3)');
    assert.equal(goSprintf('%s', [null]), '%!s(<nil>)');
    assert.equal(goSprintf('%z', ['a']), '%!z(string=a)');
  });
});

describe('goJson', () => {
  it('encodes compactly; Maps sorted, objects in order, undefined and functions dropped', () => {
    assert.equal(goJson({ b: 1, a: [1, 'x', null], c: undefined, f: () => 1 }), '{"b":1,"a":[1,"x",null]}');
    assert.equal(goJson(new Map<string, unknown>([['z', 1], ['a', new Map([['y', 2], ['b', 3]])]])), '{"a":{"b":3,"y":2},"z":1}');
    assert.equal(goJson(undefined), 'null');
    assert.equal(goJson(new Date('2024-01-02T03:04:05.5Z')), '"2024-01-02T03:04:05.5Z"');
    assert.equal(goJson([undefined, NaN]), '[null,null]');
  });

  it("escapes like Go's encoder", () => {
    assert.equal(goJson('<a href="x">&</a>'), '"<a href=\\"x\\">&</a>"');
    assert.equal(goJson('<a>&', { escapeHtml: true }), '"\\u003ca\\u003e\\u0026"');
    assert.equal(goJson('line\u2028sep\u2029'), '"line\\u2028sep\\u2029"');
    assert.equal(goJson('\u0001\n\t'), '"\\u0001\\n\\t"');
    assert.equal(goJson('bad\ud800x'), '"bad\\ufffdx"');
    assert.equal(goJson('\\ud800'), '"\\\\ud800"'); // an escaped backslash is not a surrogate escape
  });

  it('indents like json.MarshalIndent', () => {
    assert.equal(goJson({ a: [1], b: {}, c: [] }, { indent: '    ' }), '{\n    "a": [\n        1\n    ],\n    "b": {},\n    "c": []\n}');
  });
});

describe('tabwrite / alignColumns', () => {
  it("pads columns to the widest cell + 3, at least 10, last cell unpadded (Docker's tabwriter settings)", () => {
    assert.equal(
      alignColumns([
        ['DRIVER', 'VOLUME NAME'],
        ['local', 'data'],
      ]),
      'DRIVER    VOLUME NAME\nlocal     data',
    );
    assert.equal(
      alignColumns([
        ['CONTAINER ID', 'IMAGE', 'STATUS'],
        ['f3a9c2b1d4e5', 'nginx:latest', 'Up 5 minutes'],
      ]),
      'CONTAINER ID   IMAGE          STATUS\nf3a9c2b1d4e5   nginx:latest   Up 5 minutes',
    );
    assert.equal(alignColumns([]), '');
    assert.equal(alignColumns([['only']]), 'only');
  });

  it('honours custom padding and minimum width', () => {
    assert.equal(alignColumns([['a', 'b'], ['ccc', 'd']], 1, 0), 'a   b\nccc d');
  });

  it('counts code points, not UTF-16 units', () => {
    assert.equal(alignColumns([['héllo', 'x'], ['日本語テキスト', 'y']], 1, 0), 'héllo   x\n日本語テキスト y');
    assert.equal(alignColumns([['😀😀', 'x'], ['ab', 'y']], 1, 0), '😀😀 x\nab y');
  });

  it('keeps empty cells aligned', () => {
    assert.equal(alignColumns([['A', 'B', 'C'], ['', '', 'z']], 1, 0), 'A B C\n    z');
  });

  it('ends a column block at a line with fewer cells, like Go', () => {
    const text = 'a\tb\tc\nlonger cell\tx\n\nshort\ty\tz\nq\tr\n';
    assert.equal(tabwrite(text, { minWidth: 0, padding: 1 }), 'a           b c\nlonger cell x\n\nshort y z\nq     r\n');
  });

  it('pads a cell that ends in a tab, so trailing tabs give trailing spaces as in Go', () => {
    assert.equal(tabwrite('a\tb\t\n', { minWidth: 0, padding: 1 }), 'a b \n');
  });
});

describe('formatRows', () => {
  const rows = [
    { ID: 'f3a9c2b1d4e5', Image: 'nginx:latest', Names: 'web', Status: 'Up 5 minutes', Labels: 'a=1' },
    { ID: '0123456789ab', Image: 'alpine', Names: 'job', Status: 'Exited (0) 2 hours ago', Labels: '' },
  ];
  const DEFAULT = 'table {{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}';
  const HEADERS = { ID: 'CONTAINER ID', Image: 'IMAGE', Status: 'STATUS', Names: 'NAMES' };

  it('renders the default table with headers', () => {
    assert.equal(
      formatRows(undefined, rows, DEFAULT, HEADERS),
      'CONTAINER ID   IMAGE          STATUS                   NAMES\n' +
        'f3a9c2b1d4e5   nginx:latest   Up 5 minutes             web\n' +
        '0123456789ab   alpine         Exited (0) 2 hours ago   job\n',
    );
    assert.equal(formatRows('', rows, DEFAULT, HEADERS), formatRows(undefined, rows, DEFAULT, HEADERS));
    assert.equal(formatRows('table', rows, DEFAULT, HEADERS), formatRows(undefined, rows, DEFAULT, HEADERS));
  });

  it('prints only the header when there are no rows', () => {
    assert.equal(formatRows(undefined, [], DEFAULT, HEADERS), 'CONTAINER ID   IMAGE     STATUS    NAMES\n');
    assert.equal(formatRows('{{.ID}}', [], DEFAULT, HEADERS), '');
  });

  it('renders custom tables; literal \\t becomes a tab; unknown headers derive from the field name', () => {
    assert.equal(
      formatRows('table {{.Names}}\\t{{.LocalVolumes}}', [{ Names: 'web', LocalVolumes: '0' }], DEFAULT, HEADERS),
      'NAMES     LOCAL VOLUMES\nweb       0\n',
    );
  });

  it('keeps headers intact through formatting functions', () => {
    assert.equal(
      formatRows('table {{upper .Names}}\t{{json .Image}}\t{{truncate .ID 4}}', rows, DEFAULT, HEADERS),
      'NAMES     IMAGE            CONTAINER ID\nWEB       "nginx:latest"   f3a9\nJOB       "alpine"         0123\n',
    );
  });

  it('renders a non-table template once per row, unaligned', () => {
    assert.equal(formatRows('{{.ID}}: {{.Names}}', rows, DEFAULT, HEADERS), 'f3a9c2b1d4e5: web\n0123456789ab: job\n');
    assert.equal(formatRows('{{.Names}}\\t{{.Image}}', rows, DEFAULT), 'web\tnginx:latest\njob\talpine\n');
    assert.equal(formatRows('  {{.Names}}  ', rows, DEFAULT), 'web\njob\n');
  });

  it('prints each row as JSON with sorted keys for --format json', () => {
    assert.equal(
      formatRows('json', rows, DEFAULT, HEADERS),
      '{"ID":"f3a9c2b1d4e5","Image":"nginx:latest","Labels":"a=1","Names":"web","Status":"Up 5 minutes"}\n' +
        '{"ID":"0123456789ab","Image":"alpine","Labels":"","Names":"job","Status":"Exited (0) 2 hours ago"}\n',
    );
    assert.equal(formatRows('{{json .}}', [{ b: '<', a: 1 }], DEFAULT), '{"a":1,"b":"<"}\n');
  });

  it('calls row methods (docker ps {{.Label "k"}})', () => {
    class Row {
      constructor(readonly labels: Record<string, string>) {}
      Label(k: string) {
        return this.labels[k] ?? '';
      }
    }
    assert.equal(formatRows('table {{.Label "team"}}', [new Row({ team: 'infra' })], DEFAULT), 'LABEL\ninfra\n');
    assert.equal(formatRows('{{.Label "team"}}', [new Row({ team: 'infra' })], DEFAULT), 'infra\n');
  });

  it('propagates template errors', () => {
    assert.throws(() => formatRows('{{.ID', rows, DEFAULT), /^BerthError: template parsing error: template: :1: unclosed action$/);
  });

  it('detects table formats by prefix', () => {
    assert.equal(isTableFormat('table {{.ID}}'), true);
    assert.equal(isTableFormat('{{.ID}}'), false);
  });
});
