/**
 * HTTP(S) GET with redirects, used wherever berth downloads something (ADD of a URL).
 *
 * Why not `fetch`: Node reads NODE_EXTRA_CA_CERTS eagerly at process start, which costs about 90 ms
 * with a full CA bundle, on every command, including the ones that never open a TLS connection.
 * bin/berth therefore moves the variable to BERTH_EXTRA_CA_CERTS, and this module adds those
 * certificates to Node's root store the first time an https URL is fetched. The extra CAs are still
 * honoured; they are just read when needed.
 *
 * node:http and node:https are loaded on first use: they cannot be part of berth's V8 startup snapshot.
 */
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

export interface HttpGetResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The URL the body came from, after redirects. */
  readonly url: string;
}

export interface HttpGetOptions {
  readonly signal?: AbortSignal;
  readonly maxRedirects?: number;
}

let caCache: string[] | undefined | null = null;

/** Node's bundled roots plus the file named by BERTH_EXTRA_CA_CERTS, or undefined to keep Node's default store. */
function certificateAuthorities(): string[] | undefined {
  if (caCache !== null) return caCache;
  const file = process.env.BERTH_EXTRA_CA_CERTS || undefined;
  caCache = undefined;
  if (file) {
    try {
      caCache = [...process.getBuiltinModule('node:tls').rootCertificates, readFileSync(file, 'utf8')];
    } catch (e) {
      // Node only warns when the extra CA file is unreadable; so do we.
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`);
    }
  }
  return caCache;
}

function getOnce(url: URL, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = { method: 'GET', signal, headers: { 'user-agent': 'berth', accept: '*/*' } };
    const ca = url.protocol === 'https:' ? certificateAuthorities() : undefined;
    const req = url.protocol === 'https:'
      ? process.getBuiltinModule('node:https').request(url, { ...options, ...(ca ? { ca } : {}) }, resolve)
      : process.getBuiltinModule('node:http').request(url, options, resolve);
    req.on('error', reject);
    req.end();
  });
}

async function readBody(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** GETs `url`, following up to `maxRedirects` (default 10) redirects; any final status is returned, not thrown. */
export async function httpGet(url: string, opts: HttpGetOptions = {}): Promise<HttpGetResult> {
  let current = new URL(url);
  for (let hops = 0; ; hops++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new Error(`unsupported URL scheme "${current.protocol}"`);
    const res = await getOnce(current, opts.signal);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (status >= 300 && status < 400 && location) {
      res.resume();
      if (hops >= (opts.maxRedirects ?? 10)) throw new Error('too many redirects');
      current = new URL(location, current);
      continue;
    }
    return { status, headers: res.headers, body: await readBody(res), url: current.href };
  }
}
