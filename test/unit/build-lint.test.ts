import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseInstructions } from '../../src/build/instructions.js';
import {
  LINT_RULES,
  applyCheckDirective,
  lintBuildArgs,
  lintDockerfile,
  looksLikeSecretName,
  looksLikeSecretValue,
} from '../../src/build/lint.js';
import { parseDockerfile } from '../../src/build/parser.js';

function lint(text: string): string[] {
  const parsed = parseDockerfile(text);
  const { instructions } = parseInstructions(parsed);
  return lintDockerfile(parsed, instructions).map((d) => `${d.line} ${d.rule}: ${d.message}`);
}

describe('lint: rules as data', () => {
  it('every rule has an id matching its key, a description and a docs URL', () => {
    for (const [key, rule] of Object.entries(LINT_RULES)) {
      assert.equal(rule.id, key);
      assert.ok(rule.description.length > 10);
      assert.match(rule.url, /^https:\/\/docs\.docker\.com\/go\/dockerfile\/rule\/[a-z-]+\/$/);
    }
  });
});

describe('lint: secrets', () => {
  const NAMES: [string, boolean][] = [
    ['DB_PASSWORD', true],
    ['password', true],
    ['GITHUB_TOKEN', true],
    ['githubToken', true],
    ['API_KEY', true],
    ['apiKey', true],
    ['api-key', true],
    ['AWS_SECRET_ACCESS_KEY', true],
    ['PRIVATE_KEY', true],
    ['privateKey', true],
    ['NPM_CREDENTIALS', true],
    ['MYSQL_PASS', true],
    ['PUBLIC_KEY', false],
    ['TOKEN_PUBLIC', false],
    ['PASSENGER_COUNT', false],
    ['TOKENIZERS_PARALLELISM', false],
    ['NODE_VERSION', false],
    ['PATH', false],
  ];
  for (const [name, secret] of NAMES) {
    it(`name ${name} ${secret ? 'looks' : 'does not look'} like a secret`, () => assert.equal(looksLikeSecretName(name), secret));
  }

  const VALUES: [string, boolean][] = [
    ['ghp_' + 'aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5', true],
    ['AKIAIOSFODNN7EXAMPLE', true],
    ['-----BEGIN RSA PRIVATE KEY-----\nMIIE...', true],
    ['xoxb-123456789012-abcdefghijkl', true],
    ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U', true],
    ['Zx8kPq2LmN7vB4rT9wY1cD6fH3jK5sA0gQeUi', true],
    ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', false],
    ['/usr/local/bin:/usr/bin', false],
    ['production', false],
    ['https://example.com/some/long/path/to/a/resource', false],
    ['1.21.5', false],
  ];
  for (const [value, secret] of VALUES) {
    it(`value ${value.slice(0, 20)}... ${secret ? 'looks' : 'does not look'} like a secret`, () =>
      assert.equal(looksLikeSecretValue(value), secret));
  }

  it('flags ARG and ENV with secret names or values and points to --mount=type=secret', () => {
    const out = lint('FROM a\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x NODE_ENV=production\nENV K="AKIAIOSFODNN7EXAMPLE"\nARG VERSION=1\n');
    assert.deepEqual(out, [
      '2 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN"): use RUN --mount=type=secret with `--secret` instead',
      '3 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "DB_PASSWORD"): use RUN --mount=type=secret with `--secret` instead',
      '4 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "K"): use RUN --mount=type=secret with `--secret` instead',
    ]);
  });

  it('flags secret-looking --build-args', () => {
    const d = lintBuildArgs(new Map([
      ['NPM_TOKEN', 'abc'],
      ['VERSION', '1.0'],
      ['X', 'ghp_' + 'aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5'],
    ]));
    assert.deepEqual(d.map((x) => x.message), [
      '--build-arg NPM_TOKEN looks like a secret; build args are kept in the image history: use RUN --mount=type=secret and `--secret id=NPM_TOKEN` instead',
      '--build-arg X looks like a secret; build args are kept in the image history: use RUN --mount=type=secret and `--secret id=X` instead',
    ]);
    assert.ok(d.every((x) => x.severity === 'warning' && x.rule === 'SecretsUsedInArgOrEnv'));
  });
});

describe('lint: other checks', () => {
  const CASES: [string, string, string[]][] = [
    ['MAINTAINER', 'FROM a\nMAINTAINER me\n', ['2 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label']],
    [
      'JSON args for CMD and ENTRYPOINT',
      'FROM a\nCMD echo hi\nENTRYPOINT run\n',
      [
        '2 JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
        '3 JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals',
      ],
    ],
    ['JSON args not needed after SHELL', 'FROM a\nSHELL ["/bin/bash", "-c"]\nCMD echo hi\n', []],
    ['exec form is fine', 'FROM a\nCMD ["echo"]\n', []],
    ['stage name casing', 'FROM a AS Build\n', ["1 StageNameCasing: Stage name 'Build' should be lowercase"]],
    ['from/as casing', 'FROM a as b\n', ["1 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"]],
    ['matching lower casing is fine', 'from a as b\n', []],
    [
      'instruction casing',
      'FROM a\nrun x\nRUN y\n',
      ["2 ConsistentInstructionCasing: Command 'run' should match the case of the command majority (uppercase)"],
    ],
    ['duplicate stage', 'FROM a AS x\nFROM b AS x\n', ['2 DuplicateStageName: Duplicate stage name "x", stage names should be unique']],
    ['reserved stage', 'FROM a AS scratch\n', ['1 ReservedStageName: Stage name should not use the same name as reserved stage "scratch"']],
    [
      'legacy key value',
      'FROM a\nENV A b\nLABEL k v\n',
      [
        '2 LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format',
        '3 LegacyKeyValueFormat: "LABEL key=value" should be used instead of legacy "LABEL key value" format',
      ],
    ],
    [
      'multiple CMD in a stage',
      'FROM a\nCMD ["a"]\nCMD ["b"]\nFROM b\nCMD ["c"]\n',
      ['2 MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used'],
    ],
    ['undeclared ARG in FROM', 'ARG A\nFROM --platform=$P $A:$B-$TARGETARCH\n', ["2 UndefinedArgInFrom: FROM argument 'P' is not declared", "2 UndefinedArgInFrom: FROM argument 'B' is not declared"]],
    [
      'EXPOSE checks',
      'FROM a\nEXPOSE 80/TCP 8080:80\n',
      [
        "2 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80'",
        "2 ExposeProtoCasing: Defined protocol '80/TCP' in EXPOSE instruction should be lowercase",
      ],
    ],
  ];
  for (const [name, text, expected] of CASES) {
    it(name, () => assert.deepEqual(lint(text).sort(), [...expected].sort()));
  }
});

describe('lint: the check directive', () => {
  const findings = [
    { severity: 'warning' as const, message: 'a', line: 1, column: 1, rule: 'JSONArgsRecommended' },
    { severity: 'warning' as const, message: 'b', line: 2, column: 1, rule: 'StageNameCasing' },
    { severity: 'error' as const, message: 'c', line: 3, column: 1 },
  ];
  it('skips listed rules', () => {
    const out = applyCheckDirective(findings, { skip: ['JSONArgsRecommended'], skipAll: false, error: false, experimental: [] });
    assert.deepEqual(out.map((d) => d.message), ['b', 'c']);
  });
  it('skip=all keeps only non-lint diagnostics', () => {
    const out = applyCheckDirective(findings, { skip: [], skipAll: true, error: false, experimental: [] });
    assert.deepEqual(out.map((d) => d.message), ['c']);
  });
  it('error=true turns lint warnings into errors', () => {
    const out = applyCheckDirective(findings, { skip: [], skipAll: false, error: true, experimental: [] });
    assert.deepEqual(out.map((d) => d.severity), ['error', 'error', 'error']);
  });
  it('no directive changes nothing', () => assert.deepEqual(applyCheckDirective(findings, undefined), findings));
});
