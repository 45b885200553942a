/** A parsed EXPOSE port: `80`, `80/udp`, `8000-8010/tcp` (Dockerfile EXPOSE, `--change 'EXPOSE ...'`). */
export interface PortSpec {
  start: number;
  end: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** An IP or host port was given (`EXPOSE 80:80`); Docker ignores it (ExposeInvalidFormat warns). */
  hostPart?: string;
}

/** Parses one EXPOSE port after expansion. A string result is the error message (BuildKit's wording). */
export function parsePortSpec(spec: string): PortSpec | string {
  let rest = spec;
  let protocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    protocol = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
  }
  if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') return `invalid proto: ${spec.slice(slash + 1)}`;
  let hostPart: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    hostPart = rest.slice(0, colon);
    rest = rest.slice(colon + 1);
  }
  const m = /^(\d+)(?:-(\d+))?$/.exec(rest);
  if (m === null) return `invalid containerPort: ${rest}`;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start < 1 || start > 65535 || end < 1 || end > 65535) return `invalid containerPort: ${rest}`;
  if (end < start) return `invalid range specified for container port: ${rest}`;
  const p: PortSpec = { start, end, protocol: protocol as PortSpec['protocol'] };
  if (hostPart !== undefined) p.hostPart = hostPart;
  return p;
}

/** The image config's ExposedPorts keys of a parsed spec: "80/tcp", a range one port at a time. */
export function exposedPortKeys(p: PortSpec): string[] {
  return Array.from({ length: p.end - p.start + 1 }, (_, i) => `${p.start + i}/${p.protocol}`);
}
