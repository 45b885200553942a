import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic, hasErrors, sortDiagnostics, suggest, withSuggestion } from '../../src/build/diagnostic.js';
import { loadDockerfile } from '../../src/build/frontend.js';

describe('diagnostics', () => {
  it('formats errors like Docker and warnings with their rule', () => {
    assert.equal(
      formatDiagnostic({ severity: 'error', message: 'unknown instruction: FOO', line: 3, column: 1 }),
      'dockerfile parse error on line 3: unknown instruction: FOO',
    );
    assert.equal(
      formatDiagnostic({ severity: 'warning', message: 'Stage name ...', line: 1, column: 1, rule: 'StageNameCasing' }),
      'StageNameCasing: Stage name ... (line 1)',
    );
  });

  it('suggests the closest option within an edit distance of 2, keeping the casing of the input', () => {
    assert.equal(suggest('RUNN', ['RUN', 'FROM'], false), 'RUN');
    assert.equal(suggest('runn', ['RUN', 'FROM'], false), 'run');
    assert.equal(suggest('Runn', ['RUN', 'FROM'], false), 'run'); // mixed case: BuildKit falls back to lower case
    assert.equal(suggest('RUN', ['RUN'], false), undefined);
    assert.equal(suggest('XYZZY', ['RUN'], false), undefined);
    assert.equal(suggest('mout', ['mount', 'network'], true), 'mount');
    assert.equal(withSuggestion('bad', 'mout', ['mount'], true), 'bad (did you mean mount?)');
    assert.equal(withSuggestion('bad', 'zzzzzz', ['mount'], true), 'bad');
  });

  it('sorts by position with errors first and detects errors', () => {
    const w = { severity: 'warning' as const, message: 'w', line: 2, column: 1 };
    const e = { severity: 'error' as const, message: 'e', line: 2, column: 1 };
    const first = { severity: 'warning' as const, message: 'f', line: 1, column: 5 };
    assert.deepEqual(sortDiagnostics([w, e, first]).map((d) => d.message), ['f', 'e', 'w']);
    assert.equal(hasErrors([w]), false);
    assert.equal(hasErrors([w, e]), true);
  });
});

describe('front end on a realistic Dockerfile', () => {
  const DOCKERFILE = `# syntax=docker/dockerfile:1
# escape=\\

ARG GO_VERSION=1.22
ARG BASE=alpine:3.20

FROM --platform=$BUILDPLATFORM golang:\${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 \\
    GOFLAGS="-trimpath"
RUN --mount=type=cache,target=/root/.cache/go-build \\
    --mount=type=bind,target=. \\
    go build -o /out/app ./cmd/app

FROM build AS test
RUN --network=none go test ./...

FROM \${BASE} AS runtime
ARG TARGETPLATFORM
LABEL org.opencontainers.image.title="app" \\
      org.opencontainers.image.description="An example"
COPY --from=build --chmod=755 /out/app /usr/local/bin/app
COPY <<EOF /etc/app.conf
listen = 8080
EOF
RUN <<-SCRIPT
	set -e
	adduser -D app
SCRIPT
USER app
EXPOSE 8080/tcp
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["/usr/local/bin/app", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve"]
`;

  it('parses cleanly and plans the runtime stage', () => {
    const r = loadDockerfile(DOCKERFILE, {
      targetPlatform: { os: 'linux', architecture: 'arm64' },
      buildPlatform: { os: 'linux', architecture: 'amd64' },
    });
    assert.deepEqual(r.diagnostics, []);
    assert.equal(r.ok, true);
    assert.equal(r.parsed.directives.syntax, 'docker/dockerfile:1');
    assert.deepEqual(
      r.graph.stages.map((s) => [s.displayName, s.baseName, s.platform]),
      [
        ['build', 'golang:1.22', 'linux/amd64'],
        ['test', 'build', undefined],
        ['runtime', 'alpine:3.20', undefined],
      ],
    );
    const runtime = r.graph.stages[2]!;
    assert.deepEqual(runtime.instructions.map((i) => i.kind), [
      'ARG', 'LABEL', 'COPY', 'COPY', 'RUN', 'USER', 'EXPOSE', 'VOLUME', 'HEALTHCHECK', 'STOPSIGNAL', 'ENTRYPOINT', 'CMD',
    ]);
    const run = runtime.instructions[4]!;
    assert.ok(run.kind === 'RUN');
    assert.equal(run.heredocs[0]!.content, 'set -e\nadduser -D app\n');
  });
});

describe('diagnostics without a Dockerfile position', () => {
  it('prints --build-arg findings without a line', () => {
    assert.equal(
      formatDiagnostic({ severity: 'warning', message: '--build-arg X looks like a secret', line: 0, column: 0, rule: 'SecretsUsedInArgOrEnv' }),
      'SecretsUsedInArgOrEnv: --build-arg X looks like a secret',
    );
  });
});
