/**
 * `RUN --mount=...` values (BuildKit's commands_runmount.go): comma-separated key=value options, CSV-quoted, with
 * BuildKit's defaults and consistency checks. Used when parsing RUN and again after variable expansion.
 */
import { withSuggestion } from './diagnostic.js';
import { parseGoBool } from './words.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';

/** One `RUN --mount=...` (BuildKit's Mount). */
export interface RunMount {
  type: MountType;
  target?: string;
  source?: string;
  from?: string;
  readonly: boolean;
  /** Cache or secret or ssh id. */
  id?: string;
  sharing?: 'shared' | 'private' | 'locked';
  required?: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Secret exposed as this environment variable. */
  env?: string;
  /** tmpfs size as written ("64m"). */
  size?: string;
}

const MOUNT_TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const MOUNT_KEYS = [
  'type',
  'from',
  'source',
  'src',
  'target',
  'dst',
  'destination',
  'readonly',
  'ro',
  'readwrite',
  'rw',
  'id',
  'sharing',
  'required',
  'mode',
  'uid',
  'gid',
  'env',
  'size',
];

/** Splits a CSV record the way Go's encoding/csv reads one line (fields may be double-quoted). */
function csvFields(s: string): string[] | string {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) return 'failed to parse csv mounts: extraneous or missing " in quoted-field';
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ',') return 'failed to parse csv mounts: extraneous or missing " in quoted-field';
    } else {
      while (i < s.length && s[i] !== ',') {
        if (s[i] === '"') return 'failed to parse csv mounts: bare " in non-quoted-field';
        field += s[i++];
      }
    }
    fields.push(field);
    if (i >= s.length) return fields;
    i++; // ','
  }
}

/**
 * One `--mount` value (BuildKit's parseMount): comma-separated key=value options. Returns the mount, or the error
 * message. Defaults: type bind; bind, secret and ssh read-only; cache and tmpfs writable.
 */
export function parseMount(spec: string): RunMount | string {
  const fields = csvFields(spec);
  if (typeof fields === 'string') return fields;
  const m: RunMount = { type: 'bind', readonly: true };
  let roAuto = true;
  const bool = (key: string, v: string): boolean | string => {
    const b = parseGoBool(v);
    return b === undefined ? `invalid value for ${key}: ${v}` : b;
  };
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') {
        m.readonly = true;
        roAuto = false;
        continue;
      }
      if (key === 'readwrite' || key === 'rw') {
        m.readonly = false;
        roAuto = false;
        continue;
      }
      if (key === 'required') {
        if (m.type !== 'secret' && m.type !== 'ssh') return `unexpected key '${key}' for mount type '${m.type}'`;
        m.required = true;
        continue;
      }
      return `invalid field '${field}' must be a key=value pair`;
    }
    const value = field.slice(eq + 1);
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (!(MOUNT_TYPES as readonly string[]).includes(t)) {
          return withSuggestion(`unsupported mount type "${value}"`, value, MOUNT_TYPES, true);
        }
        m.type = t as MountType;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
      case 'readwrite':
      case 'rw': {
        const b = bool(key, value);
        if (typeof b === 'string') return b;
        m.readonly = key === 'readonly' || key === 'ro' ? b : !b;
        roAuto = false;
        break;
      }
      case 'required': {
        if (m.type !== 'secret' && m.type !== 'ssh') return `unexpected key '${key}' for mount type '${m.type}'`;
        const b = bool(key, value);
        if (typeof b === 'string') return b;
        m.required = b;
        break;
      }
      case 'id':
        m.id = value;
        break;
      case 'sharing': {
        const s = value.toLowerCase();
        if (s !== 'shared' && s !== 'private' && s !== 'locked') return `unsupported sharing value "${value}"`;
        m.sharing = s;
        break;
      }
      case 'mode':
        if (!/^[0-7]+$/.test(value) || parseInt(value, 8) > 0o7777) return `invalid value ${value} for mode`;
        m.mode = parseInt(value, 8);
        break;
      case 'uid':
      case 'gid':
        if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) return `invalid value ${value} for ${key}`;
        m[key] = Number(value);
        break;
      case 'env':
        m.env = value;
        break;
      case 'size':
        if (!/^\d+(\.\d+)?\s*([kmgtp]i?b?|b)?$/i.test(value)) return `invalid value for size: ${value}`;
        m.size = value;
        break;
      default:
        return withSuggestion(`unexpected key '${key}' in '${field}'`, key, MOUNT_KEYS, true);
    }
  }
  const fileInfo = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  for (const k of ['mode', 'uid', 'gid'] as const) {
    if (m[k] !== undefined && !fileInfo) return `${k} not allowed for "${m.type}" type mounts`;
  }
  if (roAuto) m.readonly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.sharing !== undefined && m.type !== 'cache') return `invalid cache sharing set for ${m.type} mount`;
  if (m.size !== undefined && m.type !== 'tmpfs') return `size not allowed for "${m.type}" type mounts`;
  if (m.env !== undefined && m.type !== 'secret') return `env not allowed for "${m.type}" type mounts`;
  if (m.type === 'secret') {
    if (m.from !== undefined) return 'secret mount should not have a from';
    if (m.source !== undefined && m.id !== undefined) return "both source and id can't be set";
    if (m.source !== undefined) {
      m.id = m.source;
      delete m.source;
    }
    if (m.id === undefined && m.target === undefined && m.env === undefined) {
      return 'invalid secret mount: one of id, target or env is required';
    }
    m.id ??= m.target!.split('/').filter((p) => p !== '').pop() ?? m.env;
  }
  if ((m.type === 'bind' || m.type === 'cache' || m.type === 'tmpfs') && (m.target ?? '') === '') {
    return `mount type=${m.type} requires a target`;
  }
  return m;
}
