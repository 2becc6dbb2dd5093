/**
 * /metrics as Prometheus scrapes it: the series move with traffic as documented, label values come
 * from closed sets only, gauges follow sessions and streams, and `admin.listen` moves the endpoint.
 */
import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { ERROR_CATALOG } from '../../src/errors.js';
import { freePort } from '../fixtures/redis.js';
import { eventually, initialize, rpc, scrape } from '../fixtures/probe.js';
import type { Scrape } from '../fixtures/probe.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const ZEBRA = 'zebra-client-7q';
const clients = [
  { id: ZEBRA, secret: 'zebra-secret-0123456789ab', scopes: ['mcp'] },
  { id: 'bob', secret: TEST_CLIENTS.bob, scopes: ['mcp'], rateLimit: { points: 1, duration: '1m' } },
];

async function setup(t: Test, raw: Record<string, unknown> = {}): Promise<{ proxy: TestWarden; upstream: DemoServer }> {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], clients, ...raw });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return { proxy, upstream };
}

const ROUTES = new Set(['mcp', '/oauth/token', '/oauth/revoke', '/oauth/authorize', '/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource',
  '/.well-known/oauth-protected-resource{mcpPath}', '/.well-known/jwks.json', '/healthz', '/readyz', '/metrics', '(unmatched)']);
const CLOSED: Record<string, (v: string) => boolean> = {
  route: (v) => ROUTES.has(v),
  method: (v) => ['GET', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'PATCH', 'HEAD', 'other'].includes(v),
  status: (v) => /^[1-5]\d\d$/.test(v),
  code: (v) => v in ERROR_CATALOG,
  reason: (v) => /^[a-z_]{1,20}$/.test(v),
  limiter: (v) => ['client', 'session_create', 'token_endpoint', 'failed_attempts', 'sessions', 'streams'].includes(v),
  le: (v) => v === '+Inf' || Number.isFinite(Number(v)),
  upstream: (v) => /^127\.0\.0\.1:\d+\/mcp$/.test(v),
  grant: (v) => ['client_credentials', 'refresh_token', 'authorization_code', 'none', 'other'].includes(v),
};
const OWN = ['requests_total', 'refusals_total', 'auth_failures_total', 'rate_limited_total', 'upstream_latency_seconds_bucket', 'proxy_overhead_seconds_bucket',
  'tokens_issued_total', 'tokens_refused_total', 'sessions_ended_total', 'upstream_errors_total'].map((n) => `mcp_warden_${n}`);

t.test('a sequence of requests moves exactly the documented series', async (t) => {
  const { proxy, upstream } = await setup(t);
  const metricsUrl = `${proxy.url}/metrics`;
  const before = await scrape(metricsUrl);
  const delta = (after: Scrape, name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
  t.equal(before.value('mcp_warden_sessions_active'), 0);

  const zebra = await proxy.token(ZEBRA);
  const init = await rpc(proxy.mcpUrl, { token: zebra, body: initialize(1) });
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  t.equal(init.status, 200);
  for (const id of [2, 3]) t.equal((await rpc(proxy.mcpUrl, { token: zebra, sessionId, body: { jsonrpc: '2.0', id, method: 'tools/list' } })).status, 200);
  t.equal((await rpc(proxy.mcpUrl, {})).status, 401);
  t.equal((await rpc(proxy.mcpUrl, { token: 'not-a-token' })).status, 401);
  const bob = await proxy.token('bob');
  t.equal((await rpc(proxy.mcpUrl, { token: bob, body: initialize(4) })).status, 200);
  t.equal((await rpc(proxy.mcpUrl, { token: bob, body: initialize(5) })).status, 429);
  t.equal((await fetch(`${proxy.url}/secret-client-name-123`)).status, 404);
  const tokenAt = async (form: Record<string, string>): Promise<number> => (await fetch(`${proxy.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`bob:${TEST_CLIENTS.bob}`).toString('base64')}` },
    body: new URLSearchParams(form).toString(),
  })).status;
  t.equal(await tokenAt({ grant_type: 'client_credentials' }), 200);
  t.equal(await tokenAt({ grant_type: 'password' }), 400);
  t.equal(await tokenAt({}), 400);

  const after = await scrape(metricsUrl);
  const upstreamName = new URL(upstream.url).host + '/mcp';
  t.equal(delta(after, 'mcp_warden_upstream_latency_seconds_count', { upstream: upstreamName }), 4, 'latency per upstream, named by host and path');
  t.equal(delta(after, 'mcp_warden_mcp_messages_total', { method: 'initialize' }), 2, 'MCP messages by method (the rate-limited one was refused before its body was read)');
  t.equal(delta(after, 'mcp_warden_mcp_messages_total', { method: 'tools/list' }), 2);
  t.equal(delta(after, 'mcp_warden_tokens_issued_total', { grant: 'client_credentials' }), 1, 'tokens issued by grant');
  t.equal(delta(after, 'mcp_warden_tokens_refused_total', { grant: 'other', code: 'OAUTH_UNSUPPORTED_GRANT_TYPE' }), 1, 'tokens refused by grant and code');
  t.equal(delta(after, 'mcp_warden_tokens_refused_total', { grant: 'none', code: 'OAUTH_INVALID_REQUEST' }), 1);
  t.equal(delta(after, 'mcp_warden_sessions_created_total'), 2, 'sessions created');
  t.equal(after.value('mcp_warden_store_up'), 1, 'the store answered the scrape\'s ping');
  t.equal(after.value('mcp_warden_build_info', { node: process.version }), 1, 'build info');
  t.equal(delta(after, 'mcp_warden_requests_total', { route: 'mcp', method: 'POST', status: '200' }), 4, 'requests by route, method and status');
  t.equal(delta(after, 'mcp_warden_requests_total', { route: 'mcp', status: '401' }), 2);
  t.equal(delta(after, 'mcp_warden_requests_total', { route: 'mcp', status: '429' }), 1);
  t.equal(delta(after, 'mcp_warden_requests_total', { route: '(unmatched)', method: 'GET', status: '404' }), 1, 'an unknown path is one label, not its path');
  t.equal(delta(after, 'mcp_warden_requests_total', { route: '/metrics', status: '200' }), 1, 'the first scrape was counted');
  t.equal(delta(after, 'mcp_warden_upstream_latency_seconds_count'), 4, 'one upstream latency sample per forwarded request');
  t.equal(delta(after, 'mcp_warden_proxy_overhead_seconds_count'), 4, 'one overhead sample per forwarded request');
  t.ok(delta(after, 'mcp_warden_upstream_latency_seconds_sum') > 0);
  t.equal(delta(after, 'mcp_warden_auth_failures_total', { reason: 'missing' }), 1, 'auth failures by reason');
  t.equal(delta(after, 'mcp_warden_auth_failures_total'), 2);
  t.equal(delta(after, 'mcp_warden_rate_limited_total', { limiter: 'client' }), 1, 'rate-limit rejections by limiter');
  t.equal(delta(after, 'mcp_warden_refusals_total', { code: 'RATE_LIMITED', reason: 'client' }), 1);
  t.equal(delta(after, 'mcp_warden_store_errors_total'), 0, 'the memory store never errs');

  t.equal(after.value('mcp_warden_sessions_active'), 0, 'the session count is reused for 30 s (counting scans the store)');
  proxy.advance(31_000);
  const later = await scrape(metricsUrl);
  t.equal(later.value('mcp_warden_sessions_active'), 2, 'recounted once the cache is older than 30 s');
  t.equal((await rpc(proxy.mcpUrl, { token: zebra, sessionId, method: 'DELETE' })).status, 200);
  proxy.advance(31_000);
  const ended = await scrape(metricsUrl);
  t.equal(ended.value('mcp_warden_sessions_active'), 1, 'an ended session leaves the gauge');
  t.equal(ended.value('mcp_warden_sessions_ended_total', { reason: 'delete' }), 1, 'sessions ended by reason');

  for (const needle of [ZEBRA, 'bob', 'secret-client-name-123', sessionId, sessionId.slice(0, 16), zebra]) {
    t.notOk(later.text.includes(needle), `/metrics never names ${needle.slice(0, 24)}`);
  }
  const own = later.samples.filter((s) => OWN.includes(s.name));
  t.ok(own.length > 20, `${own.length} samples of our own series checked`);
  for (const sample of own) {
    for (const [label, value] of Object.entries(sample.labels)) {
      const check = CLOSED[label];
      t.ok(check?.(value), `${sample.name} ${label}="${value}" is from a closed set`);
    }
  }
});

t.test('open streams: a GET stream counts while it is open', async (t) => {
  const { proxy } = await setup(t);
  const metricsUrl = `${proxy.url}/metrics`;
  const token = await proxy.token(ZEBRA);
  const init = await rpc(proxy.mcpUrl, { token, body: initialize(1) });
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  const gauge = async () => (await scrape(metricsUrl)).value('mcp_warden_open_streams');
  t.ok(await eventually(async () => (await gauge()) === 0), 'no stream open after the initialize finished');

  const abort = new AbortController();
  const stream = await fetch(proxy.mcpUrl, {
    headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, accept: 'text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    signal: abort.signal,
  });
  t.equal(stream.status, 200);
  t.equal(stream.headers.get('content-type'), 'text/event-stream');
  t.equal(await gauge(), 1, 'the open GET stream is counted');
  abort.abort();
  t.ok(await eventually(async () => (await gauge()) === 0), 'closing it brings the gauge back to 0');
});

/** Another process may take a port between freePort() and listen(): try again on a fresh one. */
async function withAdmin(t: Test): Promise<{ proxy: TestWarden; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { proxy: (await setup(t, { admin: { listen: `127.0.0.1:${port}` } })).proxy, port };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 3) throw err;
    }
  }
}

t.test('with admin.listen, /metrics is served only on the admin listener', async (t) => {
  const { proxy, port } = await withAdmin(t);
  const admin = proxy.warden.adminUrl ?? '';
  t.equal(admin, `http://127.0.0.1:${port}`);
  const main = await fetch(`${proxy.url}/metrics`);
  t.equal(main.status, 404, 'not on the main listener');
  t.notOk((await main.text()).includes('mcp_warden_'));
  const token = await proxy.token(ZEBRA);
  t.equal((await rpc(proxy.mcpUrl, { token, body: initialize(1) })).status, 200);
  const scraped = await scrape(`${admin}/metrics`);
  t.equal(scraped.value('mcp_warden_requests_total', { route: '(unmatched)', status: '404' }), 1, 'the main listener\'s 404 for /metrics is counted');
  t.equal(scraped.value('mcp_warden_requests_total', { route: 'mcp', status: '200' }), 1, 'main-listener traffic shows on the admin listener');
  t.equal((await fetch(`${admin}/healthz`)).status, 200);
  t.equal((await fetch(`${admin}/readyz`)).status, 200);
  t.equal((await fetch(`${admin}/mcp`, { method: 'POST' })).status, 404, 'the admin listener serves no MCP');
});

t.test('an admin port that is taken fails startup and leaves nothing listening', async (t) => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const adminPort = (taken.address() as AddressInfo).port;
  const mainPort = await freePort();
  await t.rejects(startWarden({ listen: { port: mainPort }, admin: { listen: `127.0.0.1:${adminPort}` } }), { code: 'EADDRINUSE' });
  const refused = await fetch(`http://127.0.0.1:${mainPort}/healthz`).then(() => 'answered', (err: { cause?: { code?: string } }) => err.cause?.code);
  t.equal(refused, 'ECONNREFUSED', 'the main listener was closed again');
});
