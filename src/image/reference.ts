import { invalidArgument } from '../base/errors.js';
import type { Digest } from '../base/digest.js';

/**
 * Image references in Docker's grammar (distribution/reference):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component ( "/" path-component )*
 *
 * Names are normalized the way Docker does: a first component without ".", ":" or "localhost" is not a
 * domain, so `busybox` is docker.io/library/busybox and `foo/bar` is docker.io/foo/bar.
 */
export interface Reference {
  /** Registry host[:port], e.g. "docker.io" or "localhost:5000". */
  domain: string;
  /** Repository path below the domain, e.g. "library/busybox". */
  path: string;
  /** `${domain}/${path}`: the normalized repository name. */
  name: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const NAME_MAX = 255;

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const FULL_ID_RE = /^[a-f0-9]{64}$/;
const ID_PREFIX_RE = /^(?:sha256:)?[a-f0-9]{1,64}$/;

const INVALID = 'invalid reference format';

/**
 * Parses and normalizes a reference. With `defaultTag` (the default) a reference with neither tag nor digest
 * gets "latest", as `docker pull busybox` does. Throws invalid-argument with Docker's messages.
 */
export function parseReference(s: string, opts: { defaultTag?: boolean } = {}): Reference {
  if (FULL_ID_RE.test(s)) throw invalidArgument(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  const { domain, remainder } = splitDomain(s);
  const tagSep = remainder.indexOf(':');
  const repo = tagSep >= 0 ? remainder.slice(0, tagSep) : remainder;
  if (repo.toLowerCase() !== repo) throw invalidArgument(`${INVALID}: repository name (${repo}) must be lowercase`);
  const full = `${domain}/${remainder}`;
  const m = REFERENCE_RE.exec(full);
  if (!m) {
    if (s === '') throw invalidArgument(`${INVALID}: repository name must have at least one component`);
    throw invalidArgument(INVALID);
  }
  const name = m[1]!;
  if (name.length > NAME_MAX) throw invalidArgument(`${INVALID}: repository name must not be more than ${NAME_MAX} characters`);
  const ref: Reference = { domain, path: name.slice(domain.length + 1), name };
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) ref.digest = checkDigest(m[3]);
  if (opts.defaultTag !== false && ref.tag === undefined && ref.digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/** Like parseReference but returns undefined instead of throwing. */
export function tryParseReference(s: string, opts: { defaultTag?: boolean } = {}): Reference | undefined {
  try {
    return parseReference(s, opts);
  } catch {
    return undefined;
  }
}

/** Docker's splitDockerDomain: decides whether the first path component is a registry host. */
function splitDomain(s: string): { domain: string; remainder: string } {
  const i = s.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = i >= 0 ? s.slice(0, i) : '';
  if (i < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = s;
  } else {
    domain = first;
    remainder = s.slice(i + 1);
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return { domain, remainder };
}

function checkDigest(d: string): Digest {
  const [alg, enc = ''] = d.split(':', 2);
  if (alg !== 'sha256') throw invalidArgument('unsupported digest algorithm');
  if (enc.length !== 64) throw invalidArgument('invalid checksum digest length');
  if (!/^[a-f0-9]+$/.test(enc)) throw invalidArgument('invalid checksum digest format');
  return d as Digest;
}

/** The full normalized string: "docker.io/library/busybox:latest", "localhost:5000/x@sha256:...". */
export function referenceString(ref: Reference): string {
  return ref.name + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** The short repository name Docker shows: "busybox", "foo/bar", "localhost:5000/x". */
export function familiarName(ref: Pick<Reference, 'domain' | 'path' | 'name'>): string {
  if (ref.domain !== DEFAULT_DOMAIN) return ref.name;
  return ref.path.startsWith(OFFICIAL_PREFIX) && !ref.path.slice(OFFICIAL_PREFIX.length).includes('/')
    ? ref.path.slice(OFFICIAL_PREFIX.length)
    : ref.path;
}

/** The familiar form of the whole reference: "busybox:latest", "foo/bar@sha256:...". */
export function familiarString(ref: Reference): string {
  return familiarName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** Normalizes a user-supplied reference to its full string form (adding ":latest" when untagged). */
export function normalizeReference(s: string): string {
  return referenceString(parseReference(s));
}

/** A copy of `ref` with only the name and the given tag (no digest). */
export function withTag(ref: Reference, tag: string): Reference {
  if (!TAG_RE.test(tag)) throw invalidArgument(INVALID);
  return { domain: ref.domain, path: ref.path, name: ref.name, tag };
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** True for a full 64-hex image id (without "sha256:"), which Docker never treats as a name. */
export function isFullId(s: string): boolean {
  return FULL_ID_RE.test(s);
}

/**
 * True when `s` could be a (possibly short) image id: 1-64 lowercase hex digits, optionally prefixed
 * with "sha256:". Docker resolves any unique prefix, after trying `s` as a name.
 */
export function isIdPrefix(s: string): boolean {
  return ID_PREFIX_RE.test(s);
}

/** The hex part of an id prefix ("sha256:ab" -> "ab"). */
export function idPrefixHex(s: string): string {
  return s.startsWith('sha256:') ? s.slice(7) : s;
}
