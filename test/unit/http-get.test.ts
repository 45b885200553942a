import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { httpGet } from '../../src/base/http-get.js';

let dir: string;
let plain: Server;
let secure: Server;
const port = (s: Server) => (s.address() as AddressInfo).port;
const listen = (s: Server) => new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'berth-http-get-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  plain = createHttpServer((req, res) => {
    if (req.url === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    if (req.url === '/moved') return void res.writeHead(301, { location: '/file' }).end();
    if (req.url === '/file') return void res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }).end('hello');
    res.writeHead(404).end('nope');
  });
  secure = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('secret-ok'));
  await listen(plain);
  await listen(secure);
});

after(() => {
  plain.close();
  secure.close();
  rmSync(dir, { recursive: true, force: true });
});

test('follows redirects and returns the final body, status and headers', async () => {
  const r = await httpGet(`http://127.0.0.1:${port(plain)}/moved`);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hello');
  assert.equal(r.url, `http://127.0.0.1:${port(plain)}/file`);
  assert.equal(r.headers['last-modified'], 'Wed, 21 Oct 2015 07:28:00 GMT');
});

test('returns error statuses instead of throwing', async () => {
  assert.equal((await httpGet(`http://127.0.0.1:${port(plain)}/missing`)).status, 404);
});

test('stops a redirect loop', async () => {
  await assert.rejects(httpGet(`http://127.0.0.1:${port(plain)}/loop`), /too many redirects/);
});

test('refuses other schemes', async () => {
  await assert.rejects(httpGet('ftp://127.0.0.1/x'), /unsupported URL scheme/);
});

// The CA store is read once per process, so each case runs in its own process, as berth would.
// Asynchronous: the servers live in this process and must keep answering while the child runs.
function fetchInChild(env: Record<string, string>): Promise<{ status: number | null; out: string }> {
  const code = `import { httpGet } from ${JSON.stringify(new URL('../../src/base/http-get.ts', import.meta.url).pathname)};
    httpGet('https://127.0.0.1:${port(secure)}/').then((r) => console.log(r.body.toString()), (e) => { console.log('ERR ' + e.message); process.exit(3); });`;
  const clean = { ...process.env };
  delete clean.NODE_EXTRA_CA_CERTS;
  delete clean.BERTH_EXTRA_CA_CERTS;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env: { ...clean, ...env }, encoding: 'utf8' },
      (err, stdout) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, out: stdout.trim() }));
  });
}

test('an https server signed by an unknown CA is refused', async () => {
  const r = await fetchInChild({});
  assert.equal(r.status, 3);
  assert.match(r.out, /^ERR .*self[- ]signed/i);
});

test('BERTH_EXTRA_CA_CERTS (what bin/berth moves NODE_EXTRA_CA_CERTS to) is trusted when first needed', async () => {
  const r = await fetchInChild({ BERTH_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
  assert.deepEqual(r, { status: 0, out: 'secret-ok' });
});
