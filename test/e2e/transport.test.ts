/**
 * Transport security end to end: an HTTPS listener with a self-signed pair made here by openssl
 * and a real SDK client trusting it, requireSecureTransport with and without trusted proxies,
 * the Origin allow-list (403 before authentication) and CORS for browser clients.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { startDemoServer } from '../../demo/mcp-server.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';
import { selfSigned } from '../fixtures/tls.js';

const ACCEPT = 'application/json, text/event-stream';
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const APP = 'https://app.example';

function mcpPost(proxy: TestWarden, headers: Record<string, string>, body: unknown = INIT) {
  return fetch(proxy.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: ACCEPT, ...headers }, body: JSON.stringify(body) });
}

const basic = (id: keyof typeof TEST_CLIENTS) => `Basic ${Buffer.from(`${id}:${TEST_CLIENTS[id]}`).toString('base64')}`;

t.test('HTTPS listener: SDK client over TLS, metadata and challenges say https', async (t) => {
  t.doesNotThrow(() => execFileSync('openssl', ['version'], { stdio: 'ignore' }), 'openssl is installed');
  const pair = selfSigned();
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], tls: { certFile: pair.certFile, keyFile: pair.keyFile }, security: { requireSecureTransport: true } });
  // Trusts only the test's certificate, for this client only: no global TLS switch. undici's own
  // fetch, not Node's global one: an Agent from the undici package is typed (and versioned) apart
  // from the copy bundled in Node.
  const dispatcher = new Agent({ connect: { ca: pair.cert } });
  const tlsFetch = ((url: string | URL, init?: RequestInit) => undiciFetch(url, { ...init, dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch;
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
    await dispatcher.close();
    pair.cleanup();
  });
  t.match(proxy.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the public URL is https');

  const prm = (await (await tlsFetch(`${proxy.url}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
  t.equal(prm.resource, `${proxy.url}/mcp`);
  t.same(prm.authorization_servers, [proxy.url]);
  const as = (await (await tlsFetch(`${proxy.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, string>;
  t.equal(as.token_endpoint, `${proxy.url}/oauth/token`);
  t.equal(as.issuer, proxy.url);
  const challenge = await tlsFetch(proxy.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(challenge.status, 401, 'TLS satisfies requireSecureTransport (the 401 is authentication, not transport)');
  t.match(challenge.headers.get('www-authenticate'), `resource_metadata="${proxy.url}/.well-known/oauth-protected-resource/mcp"`);

  const tokenRes = await tlsFetch(`${proxy.url}/oauth/token`, { method: 'POST', headers: { authorization: basic('alice'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
  t.equal(tokenRes.status, 200, 'the token endpoint works over TLS');
  const { access_token: token } = (await tokenRes.json()) as { access_token: string };
  const { client, close } = await connectClient(proxy.mcpUrl, { token, fetch: tlsFetch });
  t.teardown(close);
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'over tls' } })).content, [{ type: 'text', text: 'echo: over tls' }], 'SDK client works over https');
  t.ok(upstream.requests.every((r) => r.headers['x-forwarded-proto'] === 'https'), 'the upstream is told the client used https');

  await t.rejects(fetch(proxy.mcpUrl, { method: 'POST', body: '{}' }), 'a client that does not trust the certificate cannot connect');
  const plain = await new Promise<string>((resolve) => {
    http.get(proxy.url.replace('https:', 'http:') + '/healthz', (res) => resolve(`status ${res.statusCode}`)).on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
  });
  t.notMatch(plain, /^status 200/, `plain HTTP on the TLS port is not served (${plain})`);
});

t.test('requireSecureTransport: plain HTTP refused unless a trusted proxy says X-Forwarded-Proto: https', async (t) => {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const start = async (trustProxy: unknown) => {
    const proxy = await startWarden({ upstreams: [upstream.url], security: { requireSecureTransport: true, trustProxy } });
    t.teardown(() => proxy.close());
    return proxy;
  };
  const untrusting = await start(false);
  const token = await untrusting.token();
  const refused = await mcpPost(untrusting, { authorization: `Bearer ${token}` });
  t.equal(refused.status, 403);
  t.same(await refused.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'HTTPS is required' }, id: null });
  t.match(untrusting.logs.events('transport.refused')[0], { code: 'INSECURE_TRANSPORT' });
  t.equal((await mcpPost(untrusting, { authorization: `Bearer ${token}`, 'x-forwarded-proto': 'https' })).status, 403, 'the header from an untrusted peer is ignored');
  const tokenEndpoint = await fetch(`${untrusting.url}/oauth/token`, { method: 'POST', headers: { authorization: basic('alice'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
  t.equal(tokenEndpoint.status, 403, 'the token endpoint refuses plain HTTP too (client secrets)');
  t.match(await tokenEndpoint.json(), { error: 'invalid_request', error_description: 'HTTPS is required' });

  const cases: [string, unknown, Record<string, string>, number][] = [
    ['hop count 1, header https', 1, { 'x-forwarded-proto': 'https' }, 200],
    ['hop count 1, no header', 1, {}, 403],
    ['hop count 1, header http', 1, { 'x-forwarded-proto': 'http' }, 403],
    ['CIDR with 127.0.0.1, header https', ['127.0.0.0/8'], { 'x-forwarded-proto': 'https' }, 200],
    ['CIDR with 127.0.0.1, chain "https, http"', ['127.0.0.1'], { 'x-forwarded-proto': 'https, http' }, 200],
    ['CIDR without 127.0.0.1, header https', ['10.0.0.0/8', '::1'], { 'x-forwarded-proto': 'https' }, 403],
  ];
  for (const [name, trustProxy, headers, status] of cases) {
    const proxy = await start(trustProxy);
    const res = await mcpPost(proxy, { authorization: `Bearer ${await proxy.token()}`, ...headers });
    t.equal(res.status, status, name);
    await res.arrayBuffer();
  }
});

t.test('Origin outside allowedOrigins → 403 before authentication: no auth.failed, no failed attempt counted', async (t) => {
  const proxy = await startWarden({ security: { allowedOrigins: [APP] }, rateLimits: { failedAttempts: { points: 3, duration: '1m', block: '5m' } } });
  t.teardown(() => proxy.close());
  for (const origin of ['https://evil.example', 'null', `${APP}.evil.example`, 'http://app.example']) {
    for (let i = 0; i < 3; i++) {
      const res = await mcpPost(proxy, { origin, authorization: 'Bearer not-a-token' });
      t.equal(res.status, 403, `${origin} #${i + 1}`);
      t.same(await res.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Origin not allowed' }, id: null });
      t.equal(res.headers.get('access-control-allow-origin'), null, 'no CORS grant for a refused origin');
    }
  }
  t.equal(proxy.logs.events('origin.refused').length, 12);
  t.equal(proxy.logs.events('auth.failed').length, 0, 'the token was never looked at');
  t.equal((await fetch(`${proxy.url}/oauth/token`, { method: 'POST', headers: { origin: 'https://evil.example', authorization: basic('alice'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).status, 403, 'the token endpoint applies the allow-list too');

  // Twelve refusals later the address is not blocked: the same bad token without Origin is a 401...
  const first = await mcpPost(proxy, { authorization: 'Bearer not-a-token' });
  t.equal(first.status, 401, 'not blocked: origin refusals did not count as failed attempts');
  // ...and the failed-attempt budget (3) is really counting: this is what the origin refusals did not do.
  await mcpPost(proxy, { authorization: 'Bearer not-a-token' });
  await mcpPost(proxy, { authorization: 'Bearer not-a-token' });
  t.equal((await mcpPost(proxy, { authorization: 'Bearer not-a-token' })).status, 429, 'control: three real auth failures do block the address');
});

t.test('CORS for an allowed browser origin: preflight, actual responses, token endpoint and metadata', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], security: { allowedOrigins: [APP] } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const list = (value: string | null) => (value ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

  const preflight = await fetch(proxy.mcpUrl, {
    method: 'OPTIONS',
    headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version, last-event-id' },
  });
  t.equal(preflight.status, 204, 'preflight answered without a token');
  t.equal(preflight.headers.get('access-control-allow-origin'), APP);
  for (const h of ['authorization', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'content-type']) t.ok(list(preflight.headers.get('access-control-allow-headers')).includes(h), `allows request header ${h}`);
  for (const m of ['get', 'post', 'delete']) t.ok(list(preflight.headers.get('access-control-allow-methods')).includes(m), `allows method ${m}`);
  for (const h of ['mcp-session-id', 'www-authenticate']) t.ok(list(preflight.headers.get('access-control-expose-headers')).includes(h), `exposes ${h}`);
  t.match(preflight.headers.get('vary') ?? '', /origin/i, 'Vary: Origin (the answer depends on it)');
  t.equal(proxy.logs.events('auth.failed').length, 0, 'a preflight is not an authentication failure');
  t.equal((await fetch(proxy.mcpUrl, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })).status, 403, 'preflight from another origin is refused');

  const challenge = await mcpPost(proxy, { origin: APP });
  t.equal(challenge.status, 401);
  t.equal(challenge.headers.get('access-control-allow-origin'), APP, 'a 401 is readable by the page...');
  t.ok(list(challenge.headers.get('access-control-expose-headers')).includes('www-authenticate'), '...including its WWW-Authenticate');
  const init = await mcpPost(proxy, { origin: APP, authorization: `Bearer ${await proxy.token()}` });
  t.equal(init.status, 200);
  t.equal(init.headers.get('access-control-allow-origin'), APP, 'a forwarded response carries the CORS grant');
  t.ok(list(init.headers.get('access-control-expose-headers')).includes('mcp-session-id'), 'and exposes Mcp-Session-Id');
  t.ok(init.headers.get('mcp-session-id'), 'which is there to read');
  await init.arrayBuffer();

  const tokenPreflight = await fetch(`${proxy.url}/oauth/token`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
  t.equal(tokenPreflight.status, 204, 'token endpoint preflight');
  t.equal(tokenPreflight.headers.get('access-control-allow-origin'), APP);
  t.ok(list(tokenPreflight.headers.get('access-control-allow-headers')).includes('authorization'));
  const tokenRes = await fetch(`${proxy.url}/oauth/token`, { method: 'POST', headers: { origin: APP, authorization: basic('alice'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
  t.equal(tokenRes.status, 200);
  t.equal(tokenRes.headers.get('access-control-allow-origin'), APP, 'the token response is readable by the allowed page');

  // Public metadata: any origin may read it, and the SDK's discovery sends MCP-Protocol-Version (a preflight).
  for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-authorization-server']) {
    const pre = await fetch(`${proxy.url}${path}`, { method: 'OPTIONS', headers: { origin: 'https://inspector.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' } });
    t.equal(pre.status, 204, `${path}: preflight answered`);
    t.equal(pre.headers.get('access-control-allow-origin'), '*');
    t.ok(list(pre.headers.get('access-control-allow-headers')).includes('mcp-protocol-version'), `${path}: allows MCP-Protocol-Version`);
    const doc = await fetch(`${proxy.url}${path}`, { headers: { origin: 'https://inspector.example', 'mcp-protocol-version': '2025-11-25' } });
    t.equal(doc.status, 200);
    t.equal(doc.headers.get('access-control-allow-origin'), '*', `${path}: readable from any origin (public, no credentials)`);
  }
});

t.test("the proxy's CORS policy wins over an upstream's own CORS headers", async (t) => {
  const upstream = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'access-control-expose-headers': 'X-Upstream-Only' });
    res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const proxy = await startWarden({ upstreams: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`], security: { allowedOrigins: [APP] } });
  t.teardown(async () => {
    await proxy.close();
    upstream.closeAllConnections();
    upstream.close();
  });
  const res = await mcpPost(proxy, { origin: APP, authorization: `Bearer ${await proxy.token()}` }, { jsonrpc: '2.0', id: 1, method: 'ping' });
  t.equal(res.status, 200);
  t.equal(res.headers.get('access-control-allow-origin'), APP, 'not the upstream\'s "*"');
  t.match(res.headers.get('access-control-expose-headers') ?? '', /Mcp-Session-Id/, 'the proxy\'s exposed headers, not the upstream\'s');
  await res.arrayBuffer();
});
