/**
 * Size, duration and time formatting/parsing with Docker's exact semantics (docker/go-units, Go's time package,
 * docker's timetypes for `logs --since/--until`). All functions are pure; errors are BerthError invalid-argument
 * carrying Go's wording, so flag parsing can embed them in pflag-style messages.
 */
import { invalidArgument } from './errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Go float formatting (strconv 'g' / 'e' / 'f'), needed for go-units output and template printf.

/** Decimal digits and exponent of |x| rounded to `sig` significant digits (shortest round-trip when undefined). */
function decimalDigits(x: number, sig?: number): { digits: string; exp: number } {
  const s = sig === undefined ? Math.abs(x).toExponential() : Math.abs(x).toExponential(Math.max(0, sig - 1));
  const [mant = '0', e = '0'] = s.split('e');
  return { digits: mant.replace('.', ''), exp: Number(e) };
}

function expSuffix(exp: number, upper = false): string {
  const sign = exp < 0 ? '-' : '+';
  const abs = Math.abs(exp);
  return `${upper ? 'E' : 'e'}${sign}${abs < 10 ? '0' : ''}${abs}`;
}

/** Fixed notation of a digit string whose first digit has decimal exponent `exp`, with `frac` fraction digits. */
function fixedFromDigits(digits: string, exp: number, frac: number): string {
  let intPart: string;
  let fracPart: string;
  if (exp >= 0) {
    const padded = digits.padEnd(exp + 1, '0');
    intPart = padded.slice(0, exp + 1);
    fracPart = padded.slice(exp + 1);
  } else {
    intPart = '0';
    fracPart = '0'.repeat(-exp - 1) + digits;
  }
  fracPart = fracPart.padEnd(frac, '0').slice(0, frac);
  return frac > 0 ? `${intPart}.${fracPart}` : intPart;
}

/**
 * Go's strconv.FormatFloat for verbs 'g', 'e' and 'f' (prec -1 = shortest). 'g' drops trailing zeros and switches
 * to exponent form when exp < -4 or exp >= precision (6 for shortest), exactly like Go, so `%.3g` of 999.9 is
 * "1e+03".
 */
export function formatGoFloat(x: number, verb: 'g' | 'e' | 'f' | 'G' | 'E', prec = -1): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  const neg = x < 0 || Object.is(x, -0);
  const sign = neg ? '-' : '';
  const upper = verb === 'G' || verb === 'E';
  const v = verb.toLowerCase();
  if (v === 'f') {
    if (prec < 0) {
      const { digits, exp } = decimalDigits(x);
      return sign + fixedFromDigits(digits, exp, Math.max(0, digits.length - exp - 1));
    }
    return sign + Math.abs(x).toFixed(prec);
  }
  if (v === 'e') {
    const { digits, exp } = x === 0 ? { digits: '0'.repeat(Math.max(1, prec + 1)), exp: 0 } : decimalDigits(x, prec < 0 ? undefined : prec + 1);
    const d = prec < 0 ? digits : digits.padEnd(prec + 1, '0');
    return sign + d[0] + (d.length > 1 ? '.' + d.slice(1) : '') + expSuffix(exp, upper);
  }
  // 'g'
  if (x === 0) return sign + '0';
  const shortest = prec < 0;
  const p = prec === 0 ? 1 : prec;
  let { digits, exp } = decimalDigits(x, shortest ? undefined : p);
  digits = digits.replace(/0+$/, '') || '0';
  const eprec = shortest ? 6 : p;
  if (exp < -4 || exp >= eprec) {
    return sign + digits[0] + (digits.length > 1 ? '.' + digits.slice(1) : '') + expSuffix(exp, upper);
  }
  return sign + fixedFromDigits(digits, exp, Math.max(0, digits.length - exp - 1));
}

// ---------------------------------------------------------------------------------------------------------------
// Sizes (go-units)

const DECIMAL_ABBRS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_ABBRS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

function sizeAndUnit(size: number, base: number, abbrs: string[]): [number, string] {
  let i = 0;
  while (size >= base && i < abbrs.length - 1) {
    size /= base;
    i++;
  }
  return [size, abbrs[i]!];
}

/**
 * Decimal human size like go-units HumanSizeWithPrecision: "1.23MB", "5.6kB", "4B". The default precision 3 is what
 * `docker ps`/`docker images` show; pass 4 for go-units HumanSize (used by `docker system df`).
 */
export function humanSize(bytes: number, precision = 3): string {
  const [size, unit] = sizeAndUnit(bytes, 1000, DECIMAL_ABBRS);
  return formatGoFloat(size, 'g', precision) + unit;
}

/** Binary size like go-units BytesSize: "512MiB", "1.5GiB", "44KiB". */
export function bytesSize(bytes: number): string {
  const [size, unit] = sizeAndUnit(bytes, 1024, BINARY_ABBRS);
  return formatGoFloat(size, 'g', 4) + unit;
}

const BINARY_MULT: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const DECIMAL_MULT: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };

/** Go's strconv.ParseFloat syntax for decimal input (no hex, no underscores). */
const GO_FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseSize(input: string, mult: Record<string, number>): number {
  let sep = -1;
  for (let i = input.length - 1; i >= 0; i--) {
    if ('0123456789. '.includes(input[i]!)) {
      sep = i;
      break;
    }
  }
  if (sep === -1) throw invalidArgument(`invalid size: '${input}'`);
  const num = input[sep] === ' ' ? input.slice(0, sep) : input.slice(0, sep + 1);
  let sfx = input.slice(sep + 1);
  if (!GO_FLOAT.test(num)) throw invalidArgument(`strconv.ParseFloat: parsing ${goQuote(num)}: invalid syntax`);
  let size = Number(num);
  if (size < 0) throw invalidArgument(`invalid size: '${input}'`);
  if (sfx === '') return Math.trunc(size);
  const bad = () => invalidArgument(`invalid suffix: '${sfx}'`);
  if (sfx.length > 3) throw bad();
  sfx = sfx.toLowerCase();
  if (sfx[0] === 'b') {
    if (sfx.length > 1) throw bad();
    return Math.trunc(size);
  }
  const m = mult[sfx[0]!];
  if (m === undefined) throw bad();
  size *= m;
  if ((sfx.length === 2 && sfx[1] !== 'b') || (sfx.length === 3 && sfx.slice(1) !== 'ib')) throw bad();
  return Math.trunc(size);
}

/**
 * Parse a memory size like go-units RAMInBytes: binary multipliers, suffix case-insensitive, optional "b"/"ib"
 * ("512m", "1g", "1.5g", "512MB", "1GiB", "100000"). Throws `invalid size: '...'` / `invalid suffix: '...'`.
 */
export function parseBytes(s: string): number {
  return parseSize(s, BINARY_MULT);
}

/** Parse a size with decimal multipliers like go-units FromHumanSize ("32kB" = 32000). */
export function parseHumanSize(s: string): number {
  return parseSize(s, DECIMAL_MULT);
}

// ---------------------------------------------------------------------------------------------------------------
// Durations

/**
 * go-units HumanDuration, as used by `docker ps` ("Up 5 minutes") and CreatedSince ("2 days ago"). Takes
 * milliseconds.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

/** "5 minutes ago" for a past date, like Docker's CreatedSince / RunningFor. */
export function agoText(date: Date | number, now: Date | number = Date.now()): string {
  return `${humanDuration(+now - +date)} ago`;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's strconv.Quote for error messages (ASCII-safe subset is enough here). */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

/**
 * Parse a Go duration ("10s", "1m30s", "500ms", "1.5h", "-2m", "0") into milliseconds (may be fractional).
 * Errors use Go's wording: `time: invalid duration "x"`, `time: missing unit in duration "10"`,
 * `time: unknown unit "x" in duration "10x"`.
 */
export function parseGoDuration(input: string): number {
  const invalid = () => invalidArgument(`time: invalid duration ${goQuote(input)}`);
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw invalid();
  let totalNs = 0;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    const intDigits = m[1] ?? '';
    const fracDigits = m[2];
    if (intDigits === '' && (fracDigits === undefined || fracDigits === '')) throw invalid();
    s = s.slice(m[0].length);
    let i = 0;
    while (i < s.length && !'0123456789.'.includes(s[i]!)) i++;
    if (i === 0) throw invalidArgument(`time: missing unit in duration ${goQuote(input)}`);
    const unitName = s.slice(0, i);
    s = s.slice(i);
    const unit = DURATION_UNITS[unitName];
    if (unit === undefined) throw invalidArgument(`time: unknown unit ${goQuote(unitName)} in duration ${goQuote(input)}`);
    const value = Number(`${intDigits || '0'}.${fracDigits ?? ''}0`);
    totalNs += value * unit;
    if (totalNs > 9223372036854775807) throw invalid();
  }
  const ms = totalNs / 1e6;
  return neg ? -ms : ms;
}

/** Go's time.Duration.String for a duration in milliseconds: "1h30m0s", "1.5s", "500ms", "0s". */
export function formatGoDuration(ms: number): string {
  let ns = Math.round(ms * 1e6);
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  ns = Math.abs(ns);
  const frac = (value: number, scale: number): string => {
    const whole = Math.floor(value / scale);
    const rest = value - whole * scale;
    if (rest === 0) return String(whole);
    const digits = String(rest).padStart(String(scale).length - 1, '0').replace(/0+$/, '');
    return `${whole}.${digits}`;
  };
  if (ns < 1e9) {
    if (ns < 1e3) return `${sign}${ns}ns`;
    if (ns < 1e6) return `${sign}${frac(ns, 1e3)}µs`;
    return `${sign}${frac(ns, 1e6)}ms`;
  }
  const hours = Math.floor(ns / 3600e9);
  ns -= hours * 3600e9;
  const minutes = Math.floor(ns / 60e9);
  ns -= minutes * 60e9;
  const secs = `${frac(ns, 1e9)}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${secs}`;
  if (minutes > 0) return `${sign}${minutes}m${secs}`;
  return sign + secs;
}

// ---------------------------------------------------------------------------------------------------------------
// Timestamps

const NS_PER_SEC = 1_000_000_000n;

/**
 * RFC 3339 in UTC with nanoseconds, like Go's time.RFC3339Nano ("2024-01-02T03:04:05.123456789Z", trailing zeros
 * and an all-zero fraction dropped). `nanos` (0..999999999) replaces the date's milliseconds when given. `fixed`
 * keeps all nine digits like Docker's RFC3339NanoFixed (used by `docker logs -t`).
 */
export function formatRfc3339Nano(date: Date, nanos?: number, fixed = false): string {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const base = iso.slice(0, iso.indexOf('.'));
  const ns = nanos ?? date.getUTCMilliseconds() * 1_000_000;
  let fracText = String(ns).padStart(9, '0');
  if (!fixed) fracText = fracText.replace(/0+$/, '');
  return `${base}${fracText ? '.' + fracText : ''}Z`;
}

interface TimeParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanos: number;
  /** Offset east of UTC in minutes, undefined when the text carries no zone. */
  offset?: number;
}

const TS_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{1,2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|z|[+-]\d{2}:\d{2})?$/;

function parseTimeParts(value: string): TimeParts | undefined {
  const m = TS_RE.exec(value);
  if (!m) return undefined;
  const parts: TimeParts = {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4] ?? 0),
    minute: Number(m[5] ?? 0),
    second: Number(m[6] ?? 0),
    nanos: m[7] ? Number(m[7].padEnd(9, '0')) : 0,
  };
  const zone = m[8];
  if (zone !== undefined) {
    if (zone === 'Z' || zone === 'z') parts.offset = 0;
    else {
      const sign = zone[0] === '-' ? -1 : 1;
      parts.offset = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    }
  }
  const daysIn = new Date(Date.UTC(parts.year, parts.month, 0)).getUTCDate();
  if (parts.month < 1 || parts.month > 12) throw invalidArgument(`parsing time ${goQuote(value)}: month out of range`);
  if (parts.day < 1 || parts.day > daysIn) throw invalidArgument(`parsing time ${goQuote(value)}: day out of range`);
  if (parts.hour > 23) throw invalidArgument(`parsing time ${goQuote(value)}: hour out of range`);
  if (parts.minute > 59) throw invalidArgument(`parsing time ${goQuote(value)}: minute out of range`);
  if (parts.second > 59) throw invalidArgument(`parsing time ${goQuote(value)}: second out of range`);
  return parts;
}

function partsToNanos(p: TimeParts, defaultOffset: number): bigint {
  const ms = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - (p.offset ?? defaultOffset) * 60_000;
  return BigInt(ms / 1000) * NS_PER_SEC + BigInt(p.nanos);
}

/**
 * Parse an RFC 3339 timestamp with optional fraction ("2024-01-02T03:04:05.5Z", "...+02:00") into nanoseconds since
 * the epoch. A timestamp without zone is read as UTC.
 */
export function parseRfc3339(value: string): bigint {
  const p = parseTimeParts(value);
  if (!p || !value.includes('T')) throw invalidArgument(`parsing time ${goQuote(value)}: invalid RFC 3339 timestamp`);
  return partsToNanos(p, 0);
}

/**
 * The time a `logs --since/--until` (or events) value denotes, as nanoseconds since the epoch, with docker's
 * timetypes.GetTimestamp rules:
 * - a Go duration ("10m", "1h30m") means that long before `now`, truncated to whole seconds;
 * - RFC 3339-like timestamps ("2024-01-02", "2024-01-02T15", "2024-01-02T15:04", "2024-01-02T15:04:05.999Z",
 *   with "Z" or "+hh:mm"); without a zone they are read in the local zone of `now`;
 * - Unix timestamps with optional fraction ("1700000000", "1700000000.123").
 */
export function parseSince(value: string, now: Date = new Date()): bigint {
  if (value !== '0') {
    let d: number | undefined;
    try {
      d = parseGoDuration(value);
    } catch {
      d = undefined;
    }
    if (d !== undefined) return BigInt(Math.floor((now.getTime() - d) / 1000)) * NS_PER_SEC;
  }
  let parts: TimeParts | undefined;
  let parseError: unknown;
  try {
    parts = parseTimeParts(value);
  } catch (e) {
    parseError = e;
  }
  if (parts) return partsToNanos(parts, -now.getTimezoneOffset());
  if (value.includes('-')) {
    if (parseError) throw parseError;
    throw invalidArgument(`parsing time ${goQuote(value)}: cannot parse as an RFC 3339 timestamp`);
  }
  const m = /^(\d+)(?:\.(\d+))?$/.exec(value);
  if (!m) throw invalidArgument(`failed to parse value as time or duration: ${goQuote(value)}`);
  const frac = m[2] ?? '';
  const nanos = frac === '' ? 0n : BigInt(frac.slice(0, 9).padEnd(9, '0'));
  return BigInt(m[1]!) * NS_PER_SEC + nanos;
}
