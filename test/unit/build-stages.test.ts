import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseInstructions } from '../../src/build/instructions.js';
import { parseDockerfile } from '../../src/build/parser.js';
import {
  type GraphOptions,
  type StageGraph,
  buildStageGraph,
  findStage,
  formatPlatform,
  parsePlatform,
  platformArgs,
  stageArgValue,
  stagesFor,
  unusedBuildArgs,
} from '../../src/build/stages.js';
import { loadDockerfile } from '../../src/build/frontend.js';

function graph(text: string, options: GraphOptions = {}): StageGraph {
  const parsed = parseDockerfile(text);
  const r = parseInstructions(parsed);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return buildStageGraph(r.instructions, { ...options, escape: parsed.directives.escape });
}

const messages = (g: StageGraph) => g.diagnostics.map((d) => `${d.severity} ${d.line}:${d.column} ${d.message}`);
const names = (stages: { displayName: string }[]) => stages.map((s) => s.displayName);

describe('stages: splitting and bases', () => {
  it('splits at each FROM and names unnamed stages stage-N', () => {
    const g = graph('FROM alpine\nRUN a\nFROM busybox AS b\nRUN b\nCMD c\n');
    assert.deepEqual(names(g.stages), ['stage-0', 'b']);
    assert.deepEqual(g.stages.map((s) => s.instructions.map((i) => i.kind)), [['RUN'], ['RUN', 'CMD']]);
    assert.deepEqual(g.stages.map((s) => s.base), [
      { kind: 'image', ref: 'alpine' },
      { kind: 'image', ref: 'busybox' },
    ]);
    assert.deepEqual(messages(g), []);
  });

  it('resolves scratch and earlier stages case-insensitively', () => {
    const g = graph('FROM scratch AS Base\nFROM BASE AS dev\nFROM base AS prod\n');
    assert.deepEqual(g.stages.map((s) => s.base), [{ kind: 'scratch' }, { kind: 'stage', index: 0 }, { kind: 'stage', index: 0 }]);
    assert.deepEqual(g.stages[1]!.dependencies, [{ index: 0, via: 'from', line: 2 }]);
  });

  it('FROM name AS name is the image, not the stage itself', () => {
    const g = graph('FROM node AS node\n');
    assert.deepEqual(g.stages[0]!.base, { kind: 'image', ref: 'node' });
  });

  it('FROM a later stage uses the image of that name, with a warning', () => {
    const g = graph('FROM build\nFROM alpine AS build\n');
    assert.deepEqual(g.stages[0]!.base, { kind: 'image', ref: 'build' });
    assert.equal(g.diagnostics.length, 1);
    assert.equal(g.diagnostics[0]!.severity, 'warning');
    assert.match(g.diagnostics[0]!.message, /refers to stage "build" defined later \(line 2\)/);
  });

  it('duplicate names: FROM sees the latest earlier one, --from the last one', () => {
    const g = graph('FROM a AS x\nFROM b AS x\nFROM x AS y\nFROM c\nCOPY --from=x /a /b\nFROM d AS x\n');
    assert.deepEqual(g.stages[2]!.base, { kind: 'stage', index: 1 });
    assert.deepEqual(g.stages[3]!.dependencies.map((d) => d.index), [4]);
  });

  it('reports instructions before the first FROM and files without stages', () => {
    assert.deepEqual(messages(graph('RUN x\nFROM a\n')), ['error 1:1 no build stage in current context']);
    assert.deepEqual(messages(graph('ARG A=1\n')), ['error 1:1 dockerfile contains no stages to build']);
  });

  it('reports a blank base name', () => {
    assert.deepEqual(messages(graph('ARG IMG\nFROM $IMG\n')), ['error 2:1 base name ($IMG) should not be blank']);
  });
});

describe('stages: global ARGs and their scope', () => {
  it('global ARG defaults are used in FROM', () => {
    const g = graph('ARG  CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD  /code/run-app\nFROM extras:${CODE_VERSION}\n');
    assert.deepEqual(g.stages.map((s) => s.baseName), ['base:latest', 'extras:latest']);
    assert.deepEqual(g.globalArgs.map((a) => a.args), [[{ name: 'CODE_VERSION', default: 'latest' }]]);
  });

  it('--build-arg overrides a global default; later global ARGs see earlier ones', () => {
    const g = graph('ARG V=1\nARG IMG=busybox:$V\nFROM $IMG\n', { buildArgs: new Map([['V', '2']]) });
    assert.equal(g.stages[0]!.baseName, 'busybox:2');
    assert.equal(g.globalScope.get('IMG'), 'busybox:2');
  });

  it('a global ARG without a value stays unset unless passed', () => {
    assert.equal(graph('ARG TAG\nFROM a:${TAG:-edge}\n').stages[0]!.baseName, 'a:edge');
    assert.equal(graph('ARG TAG\nFROM a:${TAG:-edge}\n', { buildArgs: new Map([['TAG', '1']]) }).stages[0]!.baseName, 'a:1');
  });

  it('platform ARGs are predefined in the global scope', () => {
    const g = graph('FROM --platform=$BUILDPLATFORM golang:$TARGETARCH AS build\n', {
      targetPlatform: { os: 'linux', architecture: 'arm', variant: 'v7' },
      buildPlatform: { os: 'linux', architecture: 'amd64' },
    });
    assert.equal(g.stages[0]!.platform, 'linux/amd64');
    assert.equal(g.stages[0]!.baseName, 'golang:arm');
    assert.equal(g.globalScope.get('TARGETPLATFORM'), 'linux/arm/v7');
    assert.equal(g.globalScope.get('TARGETVARIANT'), 'v7');
  });

  it('an ARG inside a stage: build arg, own default, redeclared global, or unset', () => {
    const g = graph('ARG VERSION=latest\nFROM busybox:$VERSION\nARG VERSION\nARG OWN=x\nARG NONE\n');
    const [version, own, none] = g.stages[0]!.instructions.map((i) => (i.kind === 'ARG' ? i.args[0]! : undefined));
    assert.deepEqual(stageArgValue(version!, g), { value: 'latest', source: 'global' });
    assert.deepEqual(stageArgValue(own!, g), { value: 'x', source: 'default' });
    assert.deepEqual(stageArgValue(none!, g), { source: 'unset' });
    assert.deepEqual(stageArgValue(own!, g, new Map([['OWN', 'y']])), { value: 'y', source: 'build-arg' });
    assert.deepEqual(stageArgValue({ name: 'TARGETOS' }, g), { value: 'linux', source: 'global' });
  });

  it('lists --build-args no ARG declares (proxy and BuildKit ones count as used)', () => {
    const g = graph('ARG A\nFROM x\nARG B\n');
    const args = new Map([
      ['A', '1'],
      ['B', '2'],
      ['C', '3'],
      ['HTTP_PROXY', 'p'],
      ['SOURCE_DATE_EPOCH', '0'],
    ]);
    assert.deepEqual(unusedBuildArgs(g, args), ['C']);
  });
});

describe('stages: dependencies and plans', () => {
  const MULTI = [
    'FROM golang AS build',
    'RUN go build',
    'FROM build AS test',
    'RUN go test',
    'FROM alpine AS assets',
    'RUN make assets',
    'FROM scratch AS prod',
    'COPY --from=build /app /app',
    'COPY --from=assets /www /www',
    'COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf',
    'FROM debian AS unused',
    '',
  ].join('\n');

  it('records COPY --from dependencies by name, index and external images', () => {
    const g = graph(MULTI);
    assert.deepEqual(g.stages[3]!.dependencies, [
      { index: 0, via: 'copy', line: 8 },
      { index: 2, via: 'copy', line: 9 },
    ]);
    assert.deepEqual(g.stages[3]!.externalSources, ['nginx:latest']);
    const byIndex = graph('FROM a\nFROM b\nCOPY --from=0 /x /y\n');
    assert.deepEqual(byIndex.stages[1]!.dependencies.map((d) => d.index), [0]);
  });

  it('records RUN --mount=from dependencies (not for secrets)', () => {
    const g = graph('FROM a AS cfg\nFROM b\nRUN --mount=from=cfg,target=/opt --mount=type=cache,from=cfg,target=/c --mount=type=bind,from=img:1,target=/i x\n');
    assert.deepEqual(g.stages[1]!.dependencies, [{ index: 0, via: 'mount', line: 3 }]);
    assert.deepEqual(g.stages[1]!.externalSources, ['img:1']);
  });

  it('plans the last stage by default: only what it needs, dependencies first, parallel levels', () => {
    const r = stagesFor(graph(MULTI.replace('FROM debian AS unused\n', '')));
    assert.ok(r.ok);
    assert.equal(r.plan.target.displayName, 'prod');
    assert.deepEqual(names(r.plan.order), ['build', 'assets', 'prod']);
    assert.deepEqual(r.plan.levels.map(names), [['build', 'assets'], ['prod']]);
  });

  it('plans a --target by name, case-insensitively', () => {
    const g = graph(MULTI);
    const r = stagesFor(g, 'TEST');
    assert.ok(r.ok);
    assert.deepEqual(names(r.plan.order), ['build', 'test']);
    assert.deepEqual(r.plan.levels.map(names), [['build'], ['test']]);
    const last = stagesFor(g);
    assert.ok(last.ok);
    assert.deepEqual(names(last.plan.order), ['unused']);
  });

  it('fails on an unknown --target', () => {
    const r = stagesFor(graph(MULTI), 'nope');
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.diagnostic.message, 'target stage "nope" could not be found');
  });

  it('allows COPY --from a later stage (BuildKit does) and orders it first', () => {
    const g = graph('FROM alpine AS app\nCOPY --from=tools /bin/x /x\nFROM busybox AS tools\n');
    assert.deepEqual(messages(g), []);
    const r = stagesFor(g, 'app');
    assert.ok(r.ok);
    assert.deepEqual(names(r.plan.order), ['tools', 'app']);
  });

  it('detects cycles, including a stage copying from itself', () => {
    const self = graph('FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n');
    assert.deepEqual(messages(self), ['error 1:1 circular dependency detected on stage: stage0']);
    const three = graph(
      'FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\nCOPY --from=stage0 f2 /sub/\nFROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n',
    );
    assert.deepEqual(messages(three), ['error 1:1 circular dependency detected on stage: stage0']);
    const byIndex = graph('FROM a\nCOPY --from=0 /x /y\n');
    assert.deepEqual(messages(byIndex), ['error 1:1 circular dependency detected on stage: stage-0']);
    const r = stagesFor(three, 'stage1');
    assert.equal(!r.ok && r.diagnostic.message, 'circular dependency detected on stage: stage0');
  });

  it('a target outside a cycle still plans', () => {
    const g = graph('FROM a AS x\nCOPY --from=x /a /b\nFROM b AS y\n');
    const r = stagesFor(g, 'y');
    assert.ok(r.ok);
    assert.deepEqual(names(r.plan.order), ['y']);
  });

  it('expands global ARGs in --from', () => {
    const g = graph('ARG SRC=builder\nFROM a AS builder\nFROM b\nCOPY --from=$SRC /x /y\n');
    assert.deepEqual(g.stages[1]!.dependencies.map((d) => d.index), [0]);
  });

  it('findStage by name or index', () => {
    const g = graph(MULTI);
    assert.equal(findStage(g, 'Assets')?.index, 2);
    assert.equal(findStage(g, '1')?.displayName, 'test');
    assert.equal(findStage(g, 'nginx'), undefined);
  });
});

describe('stages: platforms', () => {
  it('formats and parses platforms', () => {
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
    assert.deepEqual(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parsePlatform('Linux/ARM/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.equal(parsePlatform('linux'), undefined);
    assert.equal(parsePlatform('linux//x'), undefined);
  });
  it('platform ARG values', () => {
    const a = platformArgs({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(Object.fromEntries(a), {
      TARGETPLATFORM: 'linux/arm64',
      TARGETOS: 'linux',
      TARGETARCH: 'arm64',
      TARGETVARIANT: '',
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDARCH: 'amd64',
      BUILDVARIANT: '',
    });
  });
});

describe('frontend: loadDockerfile', () => {
  it('puts parse, instruction, graph and lint diagnostics together, sorted', () => {
    const r = loadDockerfile('FROM a AS x\nRUNN y\nCOPY --from=x /a /b\nMAINTAINER me\n');
    assert.equal(r.ok, false);
    assert.deepEqual(r.diagnostics.map((d) => `${d.severity} ${d.line} ${d.rule ?? ''} ${d.message}`), [
      'error 1  circular dependency detected on stage: x',
      'error 2  unknown instruction: RUNN (did you mean RUN?)',
      'warning 4 MaintainerDeprecated Maintainer instruction is deprecated in favor of using label',
    ]);
  });

  it('is ok for a good Dockerfile and reports unused build args', () => {
    const r = loadDockerfile('FROM alpine\nCMD ["sh"]\n', { buildArgs: new Map([['X', '1']]) });
    assert.equal(r.ok, true);
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(r.unusedBuildArgs, ['X']);
  });

  it('applies # check=skip and error=true to parser and lint findings', () => {
    const skipped = loadDockerfile('# check=skip=NoEmptyContinuation,JSONArgsRecommended\nFROM a\nRUN x \\\n\n y\nCMD y\n');
    assert.deepEqual(skipped.diagnostics, []);
    const all = loadDockerfile('# check=skip=all\nFROM a\nMAINTAINER me\n');
    assert.deepEqual(all.diagnostics, []);
    const strict = loadDockerfile('# check=error=true\nFROM a\nCMD y\n');
    assert.equal(strict.ok, false);
    assert.deepEqual(strict.diagnostics.map((d) => [d.severity, d.rule]), [['error', 'JSONArgsRecommended']]);
  });
});
