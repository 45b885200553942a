import { constants } from 'node:os';

/** Signal names and numbers as Docker accepts them: "TERM", "SIGTERM", "15". */
const BY_NAME = constants.signals as Record<string, number>;

export function signalNumber(sig: string): number | undefined {
  if (/^\d+$/.test(sig)) {
    const n = Number(sig);
    return n > 0 && n <= 64 ? n : undefined;
  }
  const up = sig.toUpperCase();
  const name = up.startsWith('SIG') ? up : `SIG${up}`;
  if (BY_NAME[name] !== undefined) return BY_NAME[name];
  const rt = /^SIGRTMIN(\+(\d+))?$/.exec(name) ?? /^SIGRTMAX(-(\d+))?$/.exec(name);
  if (rt) return name.startsWith('SIGRTMIN') ? 34 + Number(rt[2] ?? 0) : 64 - Number(rt[2] ?? 0);
  return undefined;
}

/** A canonical "SIGTERM" form for the runtime's kill command (numbers pass through as they are). */
export function signalName(sig: string): string {
  if (/^\d+$/.test(sig)) return sig;
  const up = sig.toUpperCase();
  return up.startsWith('SIG') ? up : `SIG${up}`;
}
