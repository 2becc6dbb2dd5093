/**
 * MCP 2026-07-28 (MCP-NOTES §1.11, §7.15): no sessions at all. Modern traffic through the proxy is
 * authenticated and rate-limited on every request, never gets a minted session id, and its
 * Mcp-Method / Mcp-Name / Mcp-Param-* headers reach the upstream unchanged. Real v2 SDK peers.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { connectV2Client, startV2Server } from '../fixtures/mcp-v2.js';
import { send, PROXY_ID } from '../fixtures/session-http.js';
import { startWarden } from '../fixtures/warden.js';

const MODERN = '2026-07-28';
const meta = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };

async function stack(t: Test, raw: Record<string, unknown> = {}) {
  const upstream = await startV2Server();
  const proxy = await startWarden({ upstreams: [upstream.url], ...raw });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return { upstream, proxy };
}

interface Seen {
  readonly method: string;
  readonly sent: Headers;
  readonly status: number;
  readonly received: Headers;
}

function recordingFetch(seen: Seen[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    seen.push({ method: init?.method ?? 'GET', sent: new Headers(init?.headers), status: res.status, received: res.headers });
    return res;
  };
}

t.test('a v2 client negotiating 2026-07-28 through the proxy: no session, every request authenticated and rate-limited', async (t) => {
  const { upstream, proxy } = await stack(t, { rateLimits: { client: { points: 50, duration: '1m' } } });
  const seen: Seen[] = [];
  const { client, transport, close } = await connectV2Client(proxy.mcpUrl, { token: await proxy.token(), mode: 'auto', fetch: recordingFetch(seen) });
  t.teardown(close);
  t.equal(transport.sessionId, undefined, 'no session id');
  t.same((await client.listTools()).tools.map((x) => x.name), ['echo']);
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'modern' } })).content, [{ type: 'text', text: 'echo: modern' }]);

  t.ok(seen.length >= 3);
  t.ok(seen.every((s) => s.method === 'POST' && s.status === 200), 'one POST per call, no GET stream, no initialize');
  t.ok(seen.every((s) => s.received.get('mcp-session-id') === null), 'no Mcp-Session-Id is ever minted');
  t.same(proxy.logs.events('session.created'), []);
  t.same(await proxy.warden.store.listSessions(null, Date.now()), []);
  const remaining = seen.map((s) => Number(/r=(\d+)/.exec(s.received.get('ratelimit') ?? '')?.[1]));
  t.same(remaining, remaining.map((_, i) => 49 - i), 'every response carries RateLimit, each request counted once');
  t.ok(seen.every((s) => s.received.get('ratelimit-policy') === '"client";q=50;w=60'));

  t.equal(upstream.requests.length, seen.length, 'every request reached the upstream');
  upstream.requests.forEach((r, i) => {
    const sent = seen[i]?.sent;
    t.equal(r.headers['mcp-protocol-version'], MODERN);
    t.equal(r.headers['mcp-method'], sent?.get('mcp-method') ?? 'missing', `Mcp-Method ${String(r.headers['mcp-method'])} unchanged`);
    t.equal(r.headers['mcp-name'], sent?.get('mcp-name') ?? undefined, 'Mcp-Name unchanged');
    t.equal(r.headers['x-mcp-client-id'], 'alice', 'authenticated as alice');
    t.equal(r.headers.authorization, undefined, 'the token itself is not passed through');
    t.equal(r.headers['mcp-session-id'], undefined);
  });
  t.same(upstream.requests.map((r) => r.headers['mcp-method']), ['server/discover', 'tools/list', 'tools/call']);
  t.equal(upstream.requests[2]?.headers['mcp-name'], 'echo');
});

t.test('raw 2026-07-28 requests: Mcp-Param-* passes, no token is 401, over the limit is 429, a 404 -32601 comes back as is', async (t) => {
  const { upstream, proxy } = await stack(t, { rateLimits: { client: { points: 2, duration: '1m' } } });
  const token = await proxy.token();
  const headers = { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'echo', 'mcp-param-region': 'eu-west', 'mcp-param-note': '=?base64?SGVsbG8=?=' };
  const call = { jsonrpc: '2.0', id: 'c1', method: 'tools/call', params: { name: 'echo', arguments: { message: 'raw' }, _meta: meta } };

  const anonymous = await send(proxy.mcpUrl, { body: call, headers });
  t.equal(anonymous.status, 401);
  t.match(anonymous.headers.get('www-authenticate'), /^Bearer .*resource_metadata="/);
  t.equal(upstream.requests.length, 0, 'unauthenticated modern traffic never reaches the upstream');

  const ok = await send(proxy.mcpUrl, { token, body: call, headers });
  t.equal(ok.status, 200);
  t.match(ok.messages[0], { id: 'c1', result: { content: [{ type: 'text', text: 'echo: raw' }] } });
  t.equal(ok.sessionId, null);
  t.match(upstream.requests[0]?.headers, { 'mcp-param-region': 'eu-west', 'mcp-param-note': '=?base64?SGVsbG8=?=', 'mcp-name': 'echo', 'mcp-method': 'tools/call' });

  const unknown = await send(proxy.mcpUrl, { token, body: { jsonrpc: '2.0', id: 9, method: 'nope/nope', params: { _meta: meta } }, headers: { 'mcp-protocol-version': MODERN, 'mcp-method': 'nope/nope' } });
  t.same([unknown.status, unknown.rpcCode], [404, -32601], 'the upstream\'s method-not-found is passed back, not taken for a lost session');
  t.same(proxy.logs.events('session.not_found'), []);

  const limited = await send(proxy.mcpUrl, { token, body: call, headers });
  t.equal(limited.status, 429, 'the third authenticated request of a 2-per-minute client');
  // The limit is checked before the body is read, so the refusal cannot echo the request id (see the report).
  t.match(limited.messages[0], { jsonrpc: '2.0', error: { code: -32000, message: 'Rate limit exceeded' } });
  t.ok(Number(limited.headers.get('retry-after')) >= 1);
  t.equal(limited.headers.get('ratelimit-policy'), '"client";q=2;w=60');
  t.equal(upstream.requests.length, 2);
});

t.test('a v1 (2025-11-25) SDK client against a v2 server, which serves it statelessly', async (t) => {
  const { upstream, proxy } = await stack(t);
  const { client, transport, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  t.equal(transport.sessionId, undefined, 'the upstream assigned no session, so the proxy minted none');
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'legacy' } })).content, [{ type: 'text', text: 'echo: legacy' }]);
  t.equal(upstream.requests[0]?.headers['mcp-session-id'], undefined);
  t.ok(upstream.requests.every((r) => r.headers['x-mcp-client-id'] === 'alice' && r.headers.authorization === undefined));
  t.same(proxy.logs.events('session.created'), []);
});

t.test('a v2 client in its default legacy mode against a v2 server', async (t) => {
  const { upstream, proxy } = await stack(t);
  const { client, close } = await connectV2Client(proxy.mcpUrl, { token: await proxy.token(), mode: 'legacy' });
  t.teardown(close);
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'both' } })).content, [{ type: 'text', text: 'echo: both' }]);
  t.same(upstream.requests.map((r) => r.headers['mcp-protocol-version'] ?? 'none').slice(0, 2), ['none', '2025-11-25'], 'the 2025 handshake: initialize carries no version header, later requests do');
});

t.test('a browser preflight for a 2026-07-28 request is allowed its Mcp-Param-* headers by name', async (t) => {
  const { upstream, proxy } = await stack(t, { security: { allowedOrigins: ['https://app.example'] } });
  const preflight = await fetch(proxy.mcpUrl, {
    method: 'OPTIONS',
    headers: {
      origin: 'https://app.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type,mcp-protocol-version,mcp-method,mcp-name,mcp-param-region,mcp-param-tenant_id,x-other',
    },
  });
  t.equal(preflight.status, 204);
  const allowed = (preflight.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
  for (const h of ['authorization', 'content-type', 'mcp-protocol-version', 'mcp-method', 'mcp-name', 'mcp-param-region', 'mcp-param-tenant_id']) t.ok(allowed.includes(h), `${h} allowed`);
  t.notOk(allowed.includes('x-other'), 'only Mcp-Param-* names are taken from the request');
  t.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
  t.equal(upstream.requests.length, 0, 'answered by the proxy');
});

t.test('a v2 client in auto mode against a 2025-era upstream falls back to initialize and gets a proxy session', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const { client, transport, close } = await connectV2Client(proxy.mcpUrl, { token: await proxy.token(), mode: 'auto' });
  t.teardown(close);
  t.match(transport.sessionId, PROXY_ID, 'the probe failed, the handshake ran, the proxy minted an id');
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'fallback' } })).content, [{ type: 'text', text: 'echo: fallback' }]);
  t.equal(upstream.requests[0]?.headers['mcp-method'], 'server/discover', 'the modern probe reached the upstream session-less');
  t.same(upstream.requests.map((r) => r.headers['mcp-session-id']).filter((h) => h !== undefined && h !== upstream.sessionIds()[0]), [], 'the upstream saw only its own id');
  t.equal(proxy.logs.events('session.created').length, 1);
});
