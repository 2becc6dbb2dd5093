/**
 * Property tests (fast-check, seeded) against a proxy in this process, over raw sockets so any
 * byte can be sent: no bearer token an attacker can make up authenticates, errors or reaches the
 * upstream, and no token-endpoint body gets a token or a 5xx.
 */
import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { startDemoServer } from '../../demo/mcp-server.js';
import { basic, rawRequest } from '../fixtures/http.js';
import { kidOf } from '../fixtures/tokens.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';

const SEED = 42;
const upstream = await startDemoServer();
const proxy = await startWarden({
  upstreams: [upstream.url],
  rateLimits: { failedAttempts: { points: 1_000_000, duration: '1m', block: '1s' }, tokenEndpoint: { points: 1_000_000, duration: '1m' } },
  log: { level: 'warn' },
});
t.teardown(async () => {
  await proxy.close();
  await upstream.close();
});
const port = (proxy.warden.server.address() as AddressInfo).port;
const valid = await proxy.token();
const kid = kidOf(valid);

/**
 * Sends raw bytes and returns every status code in the reply (a smuggled second request would
 * show). The socket is not half-closed (Node's server drops a request whose client sent FIN):
 * `Connection: close` makes the server close it; a head the server still waits on is ended after 1 s.
 */
function send(bytes: Buffer): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.setTimeout(1_000, () => socket.end());
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve([...Buffer.concat(chunks).toString('latin1').matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]))));
    socket.write(bytes);
  });
}

function request(path: string, headers: Buffer[], body: Buffer): Buffer {
  const head = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', `Content-Length: ${body.length}`].map((l) => Buffer.from(`${l}\r\n`));
  return Buffer.concat([...head, ...headers, Buffer.from('\r\n'), body]);
}

const b64url = (value: Uint8Array | string): string => Buffer.from(value).toString('base64url');
const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
const text = (maxLength: number) => fc.string({ unit: 'binary', maxLength }).map((s) => Buffer.from(s, 'utf8'));

/** What an attacker may put after `Authorization:`. */
const credential = fc.oneof(
  bytes(300),
  text(300),
  fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,300}=*$/).map((s) => Buffer.from(s)),
  // JWT-shaped: arbitrary JSON header and claims, random signature.
  fc.tuple(fc.json(), fc.json(), fc.uint8Array({ maxLength: 64 })).map(([h, p, s]) => Buffer.from(`${b64url(h)}.${b64url(p)}.${b64url(s)}`)),
  // Our header, arbitrary claims and signature.
  fc.tuple(fc.dictionary(fc.constantFrom('iss', 'aud', 'sub', 'client_id', 'gid', 'jti', 'scope', 'exp', 'iat', 'nbf'), fc.jsonValue()), fc.uint8Array({ maxLength: 64 }))
    .map(([claims, sig]) => Buffer.from(`${b64url(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid }))}.${b64url(JSON.stringify(claims))}.${b64url(sig)}`)),
  // A real token with one character of its header or claims changed (its signature is then wrong).
  fc.tuple(fc.nat(), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.')).map(([i, c]) => {
    const signed = valid.lastIndexOf('.');
    const at = i % signed;
    return Buffer.from(valid[at] === c ? `${valid.slice(0, at)}${c === 'A' ? 'B' : 'A'}${valid.slice(at + 1)}` : `${valid.slice(0, at)}${c}${valid.slice(at + 1)}`);
  }),
);
const scheme = fc.constantFrom('Bearer ', 'bearer ', 'BEARER ', 'Bearer  ', '', 'Basic ', 'Bearer\t');

t.test('no made-up bearer token authenticates, errors, or reaches the upstream', async (t) => {
  const seen = upstream.requests.length;
  const statuses = new Map<number, number>();
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(scheme, credential, async (prefix, value) => {
      runs++;
      const header = Buffer.concat([Buffer.from(`Authorization: ${prefix}`), value, Buffer.from('\r\n')]);
      const body = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/list"}');
      const codes = await send(request('/mcp', [header, Buffer.from('Content-Type: application/json\r\n')], body));
      for (const code of codes) statuses.set(code, (statuses.get(code) ?? 0) + 1);
      // 400 (unparseable head, from Node's parser) or 401; never a success, never a 5xx.
      return codes.length >= 1 && codes.every((c) => c === 400 || c === 401);
    }),
    { seed: SEED, numRuns: 1500 },
  );
  t.comment(`${runs} bearer cases run (seed ${SEED}); statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.equal(runs, 1500);
  t.ok((statuses.get(401) ?? 0) > 1000, 'most cases reached the authenticate stage');
  t.equal(upstream.requests.length, seen, 'the upstream saw none of them');
  t.equal((await rawRequest(`${proxy.url}/healthz`)).status, 200, 'the proxy is still serving');
  const control = await send(request('/mcp', [Buffer.from(`Authorization: Bearer ${valid}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n`)], Buffer.from('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"p","version":"1"}}}')));
  t.same(control, [200], 'control: the same request with a real token succeeds');
});

t.test('no token-endpoint body gets a token or a 5xx', async (t) => {
  const auth = Buffer.from(`Authorization: ${basic('alice', TEST_CLIENTS.alice)}\r\nContent-Type: application/x-www-form-urlencoded\r\n`);
  const statuses = new Map<number, number>();
  let runs = 0;
  const form = fc.array(fc.tuple(fc.constantFrom('grant_type', 'scope', 'resource', 'refresh_token', 'client_id', 'client_secret', 'x'), fc.string({ maxLength: 40 })), { maxLength: 6 })
    .map((pairs) => Buffer.from(pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')));
  await fc.assert(
    fc.asyncProperty(fc.oneof(bytes(600), text(600), form), async (body) => {
      runs++;
      const codes = await send(request('/oauth/token', [auth], body));
      for (const code of codes) statuses.set(code, (statuses.get(code) ?? 0) + 1);
      return codes.length === 1 && codes[0] !== 200 && (codes[0] ?? 500) < 500;
    }),
    { seed: SEED, numRuns: 1000 },
  );
  t.comment(`${runs} token-endpoint bodies run (seed ${SEED}); statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.equal(runs, 1000);
  t.ok((statuses.get(400) ?? 0) > 900, 'refused as RFC 6749 errors');
  const control = await send(request('/oauth/token', [auth], Buffer.from('grant_type=client_credentials')));
  t.same(control, [200], 'control: a well-formed request gets a token');
});
