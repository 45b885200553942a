import { invalidArgument } from '../base/errors.js';

/** Docker's default detach sequence. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** ctrl-@ (0) .. ctrl-_ (31): the control characters a `ctrl-<value>` key names, in code order. */
const CTRL_NAMES = '@abcdefghijklmnopqrstuvwxyz[\\]^_';

/**
 * Parses a --detach-keys value as Docker does: comma-separated keys, each a single character or `ctrl-<value>`
 * with value one of a-z @ [ \ ] ^ _ (or DEL). No spaces are trimmed. An empty value means Docker's default.
 * Throws invalid-argument with Docker's message: "Invalid <noun> keys (SPEC) provided" (attach/run/start say
 * "detach", exec says "escape").
 */
export function parseDetachKeys(spec: string, noun: 'detach' | 'escape' = 'detach'): Buffer {
  if (spec === '') return parseDetachKeys(DEFAULT_DETACH_KEYS);
  const codes: number[] = [];
  for (const key of spec.split(',')) {
    if (Buffer.byteLength(key) === 1) codes.push(key.charCodeAt(0));
    else if (key.startsWith('ctrl-') && key.length === 6 && CTRL_NAMES.includes(key[5]!)) codes.push(CTRL_NAMES.indexOf(key[5]!));
    else if (key === 'DEL') codes.push(127);
    else throw invalidArgument(`Invalid ${noun} keys (${spec}) provided`);
  }
  return Buffer.from(codes);
}

/** What one chunk of input comes to: the bytes to pass on now, and whether the detach sequence was typed. */
export interface MatchResult {
  forward: Buffer;
  detach: boolean;
}

/**
 * Watches a terminal's input for a detach sequence. Bytes that may begin the sequence are held back until the
 * next input decides: the rest of the sequence detaches (nothing of it is passed on, nor anything after it in
 * the same chunk); anything else releases the held bytes as typed. Unlike Docker's proxy, which only matches
 * keys read one at a time, the sequence is found anywhere in the byte stream (a pty may deliver both keys in
 * one read).
 */
export class DetachMatcher {
  private held = 0; // how many bytes of the sequence are held (always its first `held` bytes)

  constructor(private readonly keys: Buffer) {
    if (keys.length === 0) throw invalidArgument('empty detach sequence');
  }

  push(chunk: Uint8Array): MatchResult {
    const out: number[] = [];
    for (const c of chunk) {
      if (c === this.keys[this.held]) {
        if (++this.held === this.keys.length) {
          this.held = 0;
          return { forward: Buffer.from(out), detach: true };
        }
        continue;
      }
      // Mismatch: the held bytes plus c, minus the longest tail of them that still begins the sequence.
      const pending = [...this.keys.subarray(0, this.held), c];
      let keep = Math.min(pending.length, this.keys.length - 1);
      while (keep > 0 && !pending.slice(pending.length - keep).every((b, i) => b === this.keys[i])) keep--;
      out.push(...pending.slice(0, pending.length - keep));
      this.held = keep;
    }
    return { forward: Buffer.from(out), detach: false };
  }

  /** The held bytes, released (input ended: what was typed reaches the container after all). */
  flush(): Buffer {
    const held = Buffer.from(this.keys.subarray(0, this.held));
    this.held = 0;
    return held;
  }
}
