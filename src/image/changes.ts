import { posix } from 'node:path';
import { invalidArgument } from '../base/errors.js';
import { exposedPortKeys, parsePortSpec } from './exposed-ports.js';
import type { ContainerConfigSpec, HealthConfig } from './types.js';

/**
 * `--change` instructions of `berth import` and `berth commit`: the Dockerfile instructions that only touch the
 * image config. Each change is one instruction (several may be given on separate lines, with backslash line
 * continuations), applied in order to a copy of the config, as Docker's BuildFromConfig does:
 *
 *   CMD / ENTRYPOINT   exec form (JSON array) or shell form (-> Shell or ["/bin/sh","-c", line]); an ENTRYPOINT
 *                      clears Cmd unless a CMD came earlier in the same set of changes
 *   ENV / LABEL        key=value pairs with quotes, or the legacy "KEY value" form; $VAR and ${VAR} are expanded
 *   USER / WORKDIR / EXPOSE / VOLUME / STOPSIGNAL, ONBUILD, HEALTHCHECK
 *
 * Errors are invalid-argument with Docker's wording ("run is not a valid change command").
 */
export const CHANGE_INSTRUCTIONS = [
  'CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;

const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** Applies the changes to a copy of `config` and returns it. */
export function applyChanges(config: ContainerConfigSpec | undefined, changes: string[]): ContainerConfigSpec {
  const out: ContainerConfigSpec = structuredClone(config ?? {});
  let cmdSet = false;
  for (const line of changes.flatMap(splitInstructions)) {
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line)!;
    const keyword = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    const env = () => out.Env ?? [];
    switch (keyword) {
      case 'CMD':
        out.Cmd = command(rest, out.Shell);
        cmdSet = true;
        break;
      case 'ENTRYPOINT':
        out.Entrypoint = command(rest, out.Shell);
        if (!cmdSet) out.Cmd = null;
        break;
      case 'ENV':
        for (const [k, v] of pairs('ENV', rest, env())) out.Env = setEnv(out.Env ?? [], k, v);
        break;
      case 'LABEL':
        for (const [k, v] of pairs('LABEL', rest, env())) (out.Labels ??= {})[k] = v;
        break;
      case 'USER':
        out.User = single('USER', rest, env());
        break;
      case 'WORKDIR': {
        const dir = single('WORKDIR', rest, env());
        out.WorkingDir = posix.isAbsolute(dir) ? posix.normalize(dir) : posix.join(out.WorkingDir || '/', dir);
        break;
      }
      case 'EXPOSE':
        for (const port of needArgs('EXPOSE', words(rest, env()))) for (const p of exposedPorts(port)) (out.ExposedPorts ??= {})[p] = {};
        break;
      case 'VOLUME':
        for (const v of needArgs('VOLUME', jsonArray(rest) ?? words(rest, env()))) {
          if (v.trim() === '') throw invalidArgument('VOLUME specified can not be an empty string');
          (out.Volumes ??= {})[v] = {};
        }
        break;
      case 'STOPSIGNAL':
        out.StopSignal = stopSignal(single('STOPSIGNAL', rest, env()));
        break;
      case 'ONBUILD': {
        const trigger = /^(\S+)/.exec(rest)?.[1]?.toUpperCase();
        if (!trigger) throw invalidArgument('ONBUILD requires at least one argument');
        if (trigger === 'ONBUILD') throw invalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (trigger === 'FROM' || trigger === 'MAINTAINER') throw invalidArgument(`${trigger} isn't allowed as an ONBUILD trigger`);
        out.OnBuild = [...(out.OnBuild ?? []), rest];
        break;
      }
      case 'HEALTHCHECK':
        out.Healthcheck = healthcheck(rest);
        break;
      default:
        throw invalidArgument(`${keyword.toLowerCase()} is not a valid change command`);
    }
  }
  return out;
}

/** One change string may hold several instructions, one per line; "\" at a line end continues it. */
function splitInstructions(change: string): string[] {
  return change
    .replace(/\\[ \t]*\r?\n/g, '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Exec form when the argument is a JSON array of strings, shell form otherwise. */
function command(rest: string, shell: string[] | undefined): string[] {
  return jsonArray(rest) ?? [...(shell?.length ? shell : DEFAULT_SHELL), rest];
}

function jsonArray(s: string): string[] | undefined {
  if (!s.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: shell form
  }
  return undefined;
}

function needArgs(keyword: string, args: string[]): string[] {
  if (args.length === 0) throw invalidArgument(`${keyword} requires at least one argument`);
  return args;
}

function single(keyword: string, rest: string, env: string[]): string {
  const args = words(rest, env);
  if (args.length !== 1) throw invalidArgument(`${keyword} requires exactly one argument`);
  return args[0]!;
}

/** key=value pairs, or the legacy "KEY value with spaces" form. */
function pairs(keyword: string, rest: string, env: string[]): [string, string][] {
  if (rest === '') throw invalidArgument(`${keyword} requires at least one argument`);
  const first = /^\S+/.exec(rest)![0];
  if (!first.includes('=')) {
    const value = rest.slice(first.length).trim();
    if (value === '') throw invalidArgument(`${keyword} must have two arguments`);
    return [[first, lex(value, env, false)[0] ?? '']];
  }
  return words(rest, env).map((w) => {
    const i = w.indexOf('=');
    if (i < 0) throw invalidArgument(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    if (i === 0) throw invalidArgument(`${keyword} names can not be blank`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

function setEnv(env: string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const i = env.findIndex((e) => e.split('=', 1)[0] === key);
  if (i < 0) return [...env, entry];
  const copy = [...env];
  copy[i] = entry;
  return copy;
}

/** Splits on unquoted whitespace, removing quotes and backslashes and expanding variables. */
function words(s: string, env: string[]): string[] {
  return lex(s, env, true);
}

/**
 * A small shell-word lexer like the Dockerfile one: '...' is literal, "..." expands variables, \ escapes
 * the next character (outside single quotes), $VAR / ${VAR} / ${VAR:-default} / ${VAR:+alternative} expand
 * from `env` (unset -> ""). With split=false the input is one word and whitespace is kept.
 */
function lex(s: string, envList: string[], split: boolean): string[] {
  const env = new Map(envList.map((e) => {
    const i = e.indexOf('=');
    return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
  }));
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  const variable = (): string => {
    // s[i] is "$"
    const next = s[i + 1];
    if (next === '{') {
      const end = s.indexOf('}', i + 2);
      if (end < 0) throw invalidArgument(`missing '}' in substitution: ${s}`);
      const body = s.slice(i + 2, end);
      i = end + 1;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$/s.exec(body);
      if (!m) throw invalidArgument(`bad substitution: \${${body}}`);
      const value = env.get(m[1]!);
      if (m[2] === '-') return value ? value : lex(m[3]!, envList, false)[0] ?? '';
      if (m[2] === '+') return value ? lex(m[3]!, envList, false)[0] ?? '' : '';
      return value ?? '';
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1));
    if (!m) {
      i++;
      return '$';
    }
    i += 1 + m[0].length;
    return env.get(m[0]) ?? '';
  };
  while (i < s.length) {
    const c = s[i]!;
    if (split && /\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      i++;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw invalidArgument(`unexpected end of statement while looking for matching single-quote: ${s}`);
      cur += s.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw invalidArgument(`unexpected end of statement while looking for matching double-quote: ${s}`);
        const d = s[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < s.length && '"\\$'.includes(s[i + 1]!)) {
          cur += s[i + 1];
          i += 2;
        } else if (d === '$') {
          cur += variable();
        } else {
          cur += d;
          i++;
        }
      }
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[i + 1];
      i += 2;
    } else if (c === '$') {
      cur += variable();
    } else {
      cur += c;
      i++;
    }
  }
  if (inWord || !split) out.push(cur);
  return out;
}

/** "80", "80/udp", "8000-8002/tcp" -> ["80/tcp"], ... (Docker's --change wording for a bad one). */
function exposedPorts(spec: string): string[] {
  const p = parsePortSpec(spec);
  if (typeof p === 'string') throw invalidArgument(`Invalid containerPort: ${spec}`);
  return exposedPortKeys(p);
}

const SIGNALS = [
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF',
  'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2',
  'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
];

/** Accepts "SIGTERM", "TERM", "15", "SIGRTMIN+3"; keeps the spelling given, like Docker. */
function stopSignal(sig: string): string {
  const name = sig.toUpperCase().replace(/^SIG/, '');
  const ok = /^\d+$/.test(sig) ? Number(sig) >= 1 && Number(sig) <= 64
    : SIGNALS.includes(name) || /^RTM(IN|AX)([+-]\d+)?$/.test(name);
  if (!ok) throw invalidArgument(`Invalid signal: ${sig}`);
  return sig;
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds. */
function duration(flag: string, v: string): number {
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (v === '0') return 0;
  if (consumed !== v.length || v === '') throw invalidArgument(`invalid argument "${v}" for "--${flag}" flag: time: invalid duration "${v}"`);
  return Math.round(total);
}

/** HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D] [--retries=N] CMD ... | NONE */
function healthcheck(rest: string): HealthConfig {
  let s = rest;
  const hc: HealthConfig = {};
  for (let m = /^--([a-z-]+)=(\S*)\s*/.exec(s); m; m = /^--([a-z-]+)=(\S*)\s*/.exec(s)) {
    const [, flag, value] = m as unknown as [string, string, string];
    s = s.slice(m[0].length);
    const checkMin = (ns: number, what: string) => {
      if (ns !== 0 && ns < 1e6) throw invalidArgument(`${what} cannot be less than 1ms`);
      return ns;
    };
    switch (flag) {
      case 'interval': hc.Interval = checkMin(duration(flag, value), 'Interval "--interval"'); break;
      case 'timeout': hc.Timeout = checkMin(duration(flag, value), 'Timeout "--timeout"'); break;
      case 'start-period': hc.StartPeriod = checkMin(duration(flag, value), 'StartPeriod "--start-period"'); break;
      case 'start-interval': hc.StartInterval = checkMin(duration(flag, value), 'StartInterval "--start-interval"'); break;
      case 'retries': {
        if (!/^\d+$/.test(value)) throw invalidArgument(`invalid argument "${value}" for "--retries" flag`);
        hc.Retries = Number(value);
        break;
      }
      default: throw invalidArgument(`Unknown flag: ${flag}`);
    }
  }
  const m = /^(\S+)\s*([\s\S]*)$/.exec(s.trim());
  const kind = m?.[1]?.toUpperCase();
  if (kind === 'NONE') {
    if (m![2] !== '' || Object.keys(hc).length) throw invalidArgument("HEALTHCHECK NONE takes no arguments");
    return { Test: ['NONE'] };
  }
  if (kind !== 'CMD') throw invalidArgument(`Unknown type "${m?.[1] ?? ''}" in HEALTHCHECK (try CMD)`);
  const args = m![2]!.trim();
  if (args === '') throw invalidArgument('Missing command after HEALTHCHECK CMD');
  const exec = jsonArray(args);
  hc.Test = exec ? ['CMD', ...exec] : ['CMD-SHELL', args];
  return hc;
}
