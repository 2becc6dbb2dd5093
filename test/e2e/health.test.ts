/**
 * /healthz and /readyz: unauthenticated, cheap, outside every limit and block; readiness follows
 * the store and, when asked to, the upstreams.
 */
import t from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { startRedis } from '../fixtures/redis.js';
import { initialize, rateLimitFields, retryAfter, rpc, scrape, tokenRequest } from '../fixtures/probe.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';

t.test('health endpoints are outside every limit: hammered past all of them, nothing moved', async (t) => {
  const upstream = await startDemoServer({ stateless: true, jsonResponse: true });
  const proxy = await startWarden({
    upstreams: [upstream.url],
    rateLimits: {
      client: { points: 2, duration: '1m' },
      sessionCreate: { points: 1, duration: '1m' },
      tokenEndpoint: { points: 2, duration: '1m' },
      failedAttempts: { points: 2, duration: '1m', block: '1m' },
    },
  });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const before = await scrape(`${proxy.url}/metrics`);
  const probes = [];
  for (let i = 0; i < 25; i++) probes.push(fetch(`${proxy.url}/healthz`), fetch(`${proxy.url}/readyz`));
  const replies = await Promise.all(probes);
  const bodies = await Promise.all(replies.map((r) => r.json() as Promise<unknown>));
  t.same([...new Set(replies.map((r) => r.status))], [200], '50 unauthenticated probes, all 200');
  t.same(bodies[0], { status: 'ok' });
  t.same(bodies[1], { ready: true, store: 'ok', persistence: 'memory', upstream: 'unchecked', transports: {} });
  t.equal(replies[1]?.headers.get('cache-control'), 'no-store');
  t.ok(replies.every((r) => r.headers.get('ratelimit') === null), 'no limit applies, none is advertised');

  const token = await proxy.token('alice');
  const first = await rpc(proxy.mcpUrl, { token, body: initialize(1) });
  t.equal(first.status, 200, 'a normal request still works');
  t.equal(rateLimitFields(first.headers).limit.r, 1, 'the client counter was untouched: this is its first point');
  t.equal((await tokenRequest(proxy.url, 'alice', TEST_CLIENTS.alice)).status, 200, 'the token endpoint budget was untouched');
  t.equal((await tokenRequest(proxy.url, 'alice', TEST_CLIENTS.alice)).status, 200);
  const after = await scrape(`${proxy.url}/metrics`);
  t.equal(after.value('mcp_warden_rate_limited_total') - before.value('mcp_warden_rate_limited_total'), 0, 'no rate-limit rejection');
  t.equal(after.value('mcp_warden_requests_total', { route: '/healthz', status: '200' }), 25, 'probes are counted as requests, not against limits');
  t.equal(proxy.logs.events('rate.limited').length + proxy.logs.events('address.blocked').length + proxy.logs.events('auth.failed').length, 0);

  // A blocked address still answers probes: kubelets and load balancers share addresses with clients.
  await rpc(proxy.mcpUrl, { token: 'bad' });
  await rpc(proxy.mcpUrl, { token: 'bad' });
  t.equal((await rpc(proxy.mcpUrl, { token })).status, 429, 'the address is blocked');
  t.equal((await fetch(`${proxy.url}/healthz`)).status, 200);
  t.equal((await fetch(`${proxy.url}/readyz`)).status, 200);
});

t.test('readyz with health.checkUpstream: 503 + Retry-After when no upstream accepts a connection', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], health: { checkUpstream: true } });
  t.teardown(() => proxy.close());
  const ready = await fetch(`${proxy.url}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { ready: true, store: 'ok', persistence: 'memory', upstream: 'ok', transports: {} });
  await upstream.close();
  const notReady = await fetch(`${proxy.url}/readyz`);
  t.equal(notReady.status, 503);
  t.same(await notReady.json(), { ready: false, store: 'ok', persistence: 'memory', upstream: 'unreachable', transports: {} });
  t.ok(retryAfter(notReady.headers) >= 1, 'Retry-After');
  t.equal((await fetch(`${proxy.url}/healthz`)).status, 200, 'liveness does not depend on the upstream');
});

t.test('readyz follows the store: 503 + Retry-After while Redis is down', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const proxy = await startWarden({ upstreams: ['http://127.0.0.1:9/mcp'], store: { type: 'redis', url: redis.url, keyPrefix: 'health:' } });
  t.teardown(() => proxy.close());
  t.equal((await fetch(`${proxy.url}/readyz`)).status, 200, 'the upstream is not checked by default');
  await redis.stop();
  const started = performance.now();
  const notReady = await fetch(`${proxy.url}/readyz`);
  t.ok(performance.now() - started < 500, 'readiness answers at once');
  t.equal(notReady.status, 503);
  t.same(await notReady.json(), { ready: false, store: 'unreachable', persistence: 'unchecked', upstream: 'unchecked', transports: {} });
  t.ok(retryAfter(notReady.headers) >= 1);
  t.equal((await fetch(`${proxy.url}/healthz`)).status, 200, 'alive while the store is down');
});
