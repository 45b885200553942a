import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  agoText,
  bytesSize,
  formatGoDuration,
  formatGoFloat,
  formatRfc3339Nano,
  humanDuration,
  humanSize,
  parseBytes,
  parseGoDuration,
  parseHumanSize,
  parseRfc3339,
  parseSince,
} from '../../src/base/units.js';
import { isBerthError } from '../../src/base/errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const PiB = 1024 * TiB;

function throwsInvalid(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isBerthError(e, 'invalid-argument'), `expected invalid-argument, got ${String(e)}`);
    if (typeof message === 'string') assert.equal((e as Error).message, message);
    else assert.match((e as Error).message, message);
    return true;
  });
}

describe('formatGoFloat', () => {
  it('formats %g with a precision like Go (trailing zeros dropped, exponent switch)', () => {
    assert.equal(formatGoFloat(1.5, 'g', 3), '1.5');
    assert.equal(formatGoFloat(1.23456, 'g', 3), '1.23');
    assert.equal(formatGoFloat(100, 'g', 3), '100');
    assert.equal(formatGoFloat(999.9, 'g', 3), '1e+03');
    assert.equal(formatGoFloat(1000, 'g', 3), '1e+03');
    assert.equal(formatGoFloat(0.00001234, 'g', 3), '1.23e-05');
    assert.equal(formatGoFloat(0.0001234, 'g', 3), '0.000123');
    assert.equal(formatGoFloat(0, 'g', 3), '0');
    assert.equal(formatGoFloat(-2.5, 'g', 4), '-2.5');
  });

  it('formats shortest %g (fmt %v) switching to exponent form from exponent 6 like Go', () => {
    assert.equal(formatGoFloat(1e6, 'g'), '1e+06');
    assert.equal(formatGoFloat(123456, 'g'), '123456');
    assert.equal(formatGoFloat(1234567.5, 'g'), '1.2345675e+06');
    assert.equal(formatGoFloat(0.0001, 'g'), '0.0001');
    assert.equal(formatGoFloat(0.00001, 'g'), '1e-05');
    assert.equal(formatGoFloat(0.1 + 0.2, 'g'), '0.30000000000000004');
  });

  it('formats %e and %f', () => {
    assert.equal(formatGoFloat(1234.5678, 'e', 2), '1.23e+03');
    assert.equal(formatGoFloat(1234.5678, 'E', 3), '1.235E+03');
    assert.equal(formatGoFloat(0, 'e', 2), '0.00e+00');
    assert.equal(formatGoFloat(1.005, 'f', 1), '1.0');
    assert.equal(formatGoFloat(2, 'f', 2), '2.00');
    assert.equal(formatGoFloat(0.5, 'f'), '0.5');
    assert.equal(formatGoFloat(Infinity, 'g'), '+Inf');
    assert.equal(formatGoFloat(NaN, 'f', 2), 'NaN');
  });
});

describe('humanSize', () => {
  it('matches docker ps / docker images (3 significant digits, decimal units)', () => {
    assert.equal(humanSize(0), '0B');
    assert.equal(humanSize(4), '4B');
    assert.equal(humanSize(5600), '5.6kB');
    assert.equal(humanSize(1_234_567), '1.23MB');
    assert.equal(humanSize(1_500_000_000), '1.5GB');
    assert.equal(humanSize(7_800_000), '7.8MB');
    assert.equal(humanSize(999), '999B');
    assert.equal(humanSize(1000), '1kB');
  });

  it('keeps go-units quirks: values rounding up to 1000 print in exponent form', () => {
    assert.equal(humanSize(999.9), '1e+03B');
    assert.equal(humanSize(999_900), '1e+03kB');
  });

  it('matches go-units HumanSize with precision 4', () => {
    assert.equal(humanSize(1000, 4), '1kB');
    assert.equal(humanSize(1024, 4), '1.024kB');
    assert.equal(humanSize(1_000_000, 4), '1MB');
    assert.equal(humanSize(1_048_576, 4), '1.049MB');
    assert.equal(humanSize(2e6, 4), '2MB');
    assert.equal(humanSize(3.42e9, 4), '3.42GB');
    assert.equal(humanSize(5.372e12, 4), '5.372TB');
    assert.equal(humanSize(2.22e15, 4), '2.22PB');
    assert.equal(humanSize(1e28, 4), '1e+04YB');
  });
});

describe('bytesSize', () => {
  it('matches go-units BytesSize', () => {
    assert.equal(bytesSize(1024), '1KiB');
    assert.equal(bytesSize(1024 * 1024), '1MiB');
    assert.equal(bytesSize(2 * MiB), '2MiB');
    assert.equal(bytesSize(512 * MiB), '512MiB');
    assert.equal(bytesSize(3.42 * GiB), '3.42GiB');
    assert.equal(bytesSize(5.372 * TiB), '5.372TiB');
    assert.equal(bytesSize(2.22 * PiB), '2.22PiB');
    assert.equal(bytesSize(KiB ** 5 * PiB), '1.049e+06YiB');
    assert.equal(bytesSize(100), '100B');
  });
});

describe('parseBytes (RAMInBytes)', () => {
  it('parses sizes with binary units, case-insensitive, optional b / ib', () => {
    const cases: [string, number][] = [
      ['32', 32],
      ['32b', 32],
      ['32B', 32],
      ['32k', 32 * KiB],
      ['32K', 32 * KiB],
      ['32kb', 32 * KiB],
      ['32Kb', 32 * KiB],
      ['32Kib', 32 * KiB],
      ['32KIB', 32 * KiB],
      ['32Mb', 32 * MiB],
      ['32Gb', 32 * GiB],
      ['32Tb', 32 * TiB],
      ['32Pb', 32 * PiB],
      ['32PB', 32 * PiB],
      ['32P', 32 * PiB],
      ['512m', 512 * MiB],
      ['1g', GiB],
      ['1.5g', 1.5 * GiB],
      ['512MB', 512 * MiB],
      ['1GiB', GiB],
      ['100000', 100000],
      ['32.3', 32],
      ['32.3 mb', Math.trunc(32.3 * MiB)],
      ['0.3MB', Math.trunc(0.3 * MiB)],
      ['.3kB', Math.trunc(0.3 * KiB)],
      ['1 g', GiB],
    ];
    for (const [input, want] of cases) assert.equal(parseBytes(input), want, input);
  });

  it('rejects malformed sizes with go-units wording', () => {
    throwsInvalid(() => parseBytes(''), "invalid size: ''");
    throwsInvalid(() => parseBytes('hello'), "invalid size: 'hello'");
    throwsInvalid(() => parseBytes('abc'), "invalid size: 'abc'");
    throwsInvalid(() => parseBytes('-32'), "invalid size: '-32'");
    throwsInvalid(() => parseBytes(' 32 '), 'strconv.ParseFloat: parsing " 32": invalid syntax');
    throwsInvalid(() => parseBytes('32m b'), 'strconv.ParseFloat: parsing "32m": invalid syntax');
    throwsInvalid(() => parseBytes('32bm'), "invalid suffix: 'bm'");
    throwsInvalid(() => parseBytes('1x'), "invalid suffix: 'x'");
    throwsInvalid(() => parseBytes('1Gi'), "invalid suffix: 'gi'");
    throwsInvalid(() => parseBytes('1kbbb'), "invalid suffix: 'kbbb'");
  });

  it('parseHumanSize uses decimal multipliers', () => {
    assert.equal(parseHumanSize('32kb'), 32_000);
    assert.equal(parseHumanSize('32.5 kB'), 32_500);
    assert.equal(parseHumanSize('0.3 K'), 300);
    assert.equal(parseHumanSize('32Mb'), 32_000_000);
  });
});

describe('humanDuration', () => {
  const second = 1000;
  const minute = 60 * second;
  const hour = 60 * minute;
  const day = 24 * hour;
  const week = 7 * day;
  const month = 30 * day;
  const year = 365 * day;
  const cases: [number, string][] = [
    [450, 'Less than a second'],
    [-5 * second, 'Less than a second'],
    [1 * second, '1 second'],
    [45 * second, '45 seconds'],
    [59 * second, '59 seconds'],
    [60 * second, 'About a minute'],
    [3 * minute, '3 minutes'],
    [35 * minute + 40 * second, '35 minutes'],
    [59 * minute, '59 minutes'],
    [1 * hour, 'About an hour'],
    [1 * hour + 29 * minute, 'About an hour'],
    [1 * hour + 31 * minute, '2 hours'],
    [3 * hour + 29 * minute, '3 hours'],
    [3 * hour + 31 * minute, '4 hours'],
    [24 * hour, '24 hours'],
    [1 * day + 12 * hour, '36 hours'],
    [2 * day, '2 days'],
    [13 * day + 5 * hour, '13 days'],
    [2 * week, '2 weeks'],
    [4 * week + 3 * day, '4 weeks'],
    [1 * month, '4 weeks'],
    [1 * month + 2 * week, '6 weeks'],
    [2 * month, '2 months'],
    [5 * month + 2 * week, '5 months'],
    [24 * month, '24 months'],
    [24 * month + 2 * week, '2 years'],
    [3 * year + 2 * month, '3 years'],
  ];
  for (const [ms, want] of cases) {
    it(`${ms}ms -> ${want}`, () => assert.equal(humanDuration(ms), want));
  }

  it('agoText appends "ago"', () => {
    const now = new Date('2024-05-01T12:00:00Z');
    assert.equal(agoText(new Date('2024-05-01T11:55:00Z'), now), '5 minutes ago');
    assert.equal(agoText(Date.parse('2024-04-29T12:00:00Z'), now), '2 days ago');
    assert.equal(agoText(now, now), 'Less than a second ago');
  });
});

describe('parseGoDuration', () => {
  it('parses Go durations to milliseconds', () => {
    assert.equal(parseGoDuration('10s'), 10_000);
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('500ms'), 500);
    assert.equal(parseGoDuration('1.5h'), 5_400_000);
    assert.equal(parseGoDuration('1h2m3s4ms'), 3_723_004);
    assert.equal(parseGoDuration('250us'), 0.25);
    assert.equal(parseGoDuration('250µs'), 0.25);
    assert.equal(parseGoDuration('1000000ns'), 1);
    assert.equal(parseGoDuration('-2m'), -120_000);
    assert.equal(parseGoDuration('+5s'), 5_000);
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('.5s'), 500);
    assert.equal(parseGoDuration('5.s'), 5_000);
  });

  it("rejects bad input with Go's wording", () => {
    throwsInvalid(() => parseGoDuration(''), 'time: invalid duration ""');
    throwsInvalid(() => parseGoDuration('abc'), 'time: invalid duration "abc"');
    throwsInvalid(() => parseGoDuration('10'), 'time: missing unit in duration "10"');
    throwsInvalid(() => parseGoDuration('10x'), 'time: unknown unit "x" in duration "10x"');
    throwsInvalid(() => parseGoDuration('.s'), 'time: invalid duration ".s"');
    throwsInvalid(() => parseGoDuration('1s-'), 'time: unknown unit "s-" in duration "1s-"');
    throwsInvalid(() => parseGoDuration('-'), 'time: invalid duration "-"');
  });

  it("formatGoDuration matches time.Duration.String", () => {
    assert.equal(formatGoDuration(0), '0s');
    assert.equal(formatGoDuration(1500), '1.5s');
    assert.equal(formatGoDuration(90_000), '1m30s');
    assert.equal(formatGoDuration(3_600_000), '1h0m0s');
    assert.equal(formatGoDuration(5_400_000), '1h30m0s');
    assert.equal(formatGoDuration(500), '500ms');
    assert.equal(formatGoDuration(0.5), '500µs');
    assert.equal(formatGoDuration(0.000001), '1ns');
    assert.equal(formatGoDuration(30_000), '30s');
    assert.equal(formatGoDuration(-1500), '-1.5s');
  });
});

describe('timestamps', () => {
  it('formatRfc3339Nano trims the fraction like Go RFC3339Nano', () => {
    const d = new Date('2024-01-02T03:04:05.120Z');
    assert.equal(formatRfc3339Nano(d), '2024-01-02T03:04:05.12Z');
    assert.equal(formatRfc3339Nano(d, 123456789), '2024-01-02T03:04:05.123456789Z');
    assert.equal(formatRfc3339Nano(d, 100), '2024-01-02T03:04:05.0000001Z');
    assert.equal(formatRfc3339Nano(new Date('2024-01-02T03:04:05Z')), '2024-01-02T03:04:05Z');
    assert.equal(formatRfc3339Nano(d, 0, true), '2024-01-02T03:04:05.000000000Z');
    assert.equal(formatRfc3339Nano(d, undefined, true), '2024-01-02T03:04:05.120000000Z');
  });

  it('parseRfc3339 returns nanoseconds since the epoch', () => {
    assert.equal(parseRfc3339('1970-01-01T00:00:01Z'), 1_000_000_000n);
    assert.equal(parseRfc3339('2024-01-02T03:04:05.123456789Z'), 1704164645123456789n);
    assert.equal(parseRfc3339('2024-01-02T05:04:05+02:00'), 1704164645000000000n);
    throwsInvalid(() => parseRfc3339('yesterday'), /invalid RFC 3339/);
  });
});

describe('parseSince', () => {
  const now = new Date('2024-05-01T12:00:00.750Z');
  const sec = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;

  it('takes relative Go durations back from now, truncated to seconds', () => {
    assert.equal(parseSince('10m', now), sec('2024-05-01T11:50:00Z'));
    assert.equal(parseSince('1h30m', now), sec('2024-05-01T10:30:00Z'));
    assert.equal(parseSince('1.5s', now), sec('2024-05-01T11:59:59Z'));
  });

  it('reads RFC 3339 timestamps with zones', () => {
    assert.equal(parseSince('2013-01-02T13:23:37Z', now), sec('2013-01-02T13:23:37Z'));
    assert.equal(parseSince('2013-01-02T13:23:37.5Z', now), sec('2013-01-02T13:23:37Z') + 500_000_000n);
    assert.equal(parseSince('2013-01-02T13:23:37+01:00', now), sec('2013-01-02T12:23:37Z'));
    assert.equal(parseSince('2013-01-02T13:23:37.000000001-01:00', now), sec('2013-01-02T14:23:37Z') + 1n);
    assert.equal(parseSince('2013-01-02T13Z', now), sec('2013-01-02T13:00:00Z'));
    assert.equal(parseSince('2013-01-02T13:23Z', now), sec('2013-01-02T13:23:00Z'));
  });

  it('reads timestamps without zone in the local zone of now', () => {
    const local = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => BigInt(new Date(y, mo - 1, d, h, mi, s).getTime()) * 1_000_000n;
    assert.equal(parseSince('2013-01-02', now), local(2013, 1, 2));
    assert.equal(parseSince('2013-01-02T13:23:37', now), local(2013, 1, 2, 13, 23, 37));
  });

  it('reads Unix timestamps with an optional fraction', () => {
    assert.equal(parseSince('1700000000', now), 1_700_000_000_000_000_000n);
    assert.equal(parseSince('1700000000.123', now), 1_700_000_000_123_000_000n);
    assert.equal(parseSince('1700000000.000000001', now), 1_700_000_000_000_000_001n);
    assert.equal(parseSince('0', now), 0n);
    assert.equal(parseSince('10', now), 10_000_000_000n);
  });

  it('rejects garbage', () => {
    throwsInvalid(() => parseSince('yesterday', now), 'failed to parse value as time or duration: "yesterday"');
    throwsInvalid(() => parseSince('2013-13-02', now), /month out of range/);
    throwsInvalid(() => parseSince('2013-02-30', now), /day out of range/);
    throwsInvalid(() => parseSince('2013-01-02 10:00', now), /parsing time "2013-01-02 10:00"/);
  });
});
