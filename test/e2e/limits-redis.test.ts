/**
 * Limits held in Redis: two proxies sharing one private redis-server admit the limit in total, not
 * twice it; and when Redis is gone, limit checks fail fast and closed (503 + Retry-After).
 */
import t from 'tap';
import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { startRedis } from '../fixtures/redis.js';
import type { RedisProcess } from '../fixtures/redis.js';
import { initialize, listenUrl, rateLimitFields, retryAfter, rpc, scrape, sleep, tokenRequest } from '../fixtures/probe.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

let redis: RedisProcess;
t.before(async () => {
  redis = await startRedis();
});
t.teardown(() => redis.stop());

interface Replica {
  readonly proxy: TestWarden;
  /** The replica's own listener (both share one public URL, the token audience). */
  readonly origin: string;
  readonly mcp: string;
}

/** Two proxies on one Redis, one key prefix, one signing secret and one public URL: replicas. */
async function replicas(t: Test, raw: Record<string, unknown>, upstreamOptions: Parameters<typeof startDemoServer>[0] = {}): Promise<{ a: Replica; b: Replica; upstream: DemoServer }> {
  const upstream = await startDemoServer(upstreamOptions);
  const shared = { upstreams: [upstream.url], publicUrl: 'http://warden.test', store: { type: 'redis', url: redis.url, keyPrefix: `lim-${randomBytes(4).toString('hex')}:` }, ...raw };
  const [pa, pb] = await Promise.all([startWarden(shared), startWarden(shared)]);
  t.teardown(async () => {
    await Promise.all([pa.close(), pb.close()]);
    await upstream.close();
  });
  const replica = (proxy: TestWarden): Replica => ({ proxy, origin: listenUrl(proxy), mcp: `${listenUrl(proxy)}/mcp` });
  return { a: replica(pa), b: replica(pb), upstream };
}

t.test('client limit across two replicas: the total admitted is the limit', async (t) => {
  const { a, b, upstream } = await replicas(t, { rateLimits: { client: { points: 4, duration: '1m' } } }, { stateless: true, jsonResponse: true });
  const token = await a.proxy.token('alice');
  const statuses: number[] = [];
  const remaining: number[] = [];
  for (let i = 0; i < 8; i++) {
    const res = await rpc((i % 2 === 0 ? a : b).mcp, { token, body: { jsonrpc: '2.0', id: i, method: 'tools/list' } });
    statuses.push(res.status);
    remaining.push(rateLimitFields(res.headers).limit.r);
  }
  t.same(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
  t.same(remaining, [3, 2, 1, 0, 0, 0, 0, 0], 'one counter, whichever replica answers');
  t.equal(upstream.requests.length, 4);
  t.equal(a.proxy.logs.events('rate.limited').length + b.proxy.logs.events('rate.limited').length, 4);
});

t.test('session-create limit across two replicas, and a session made on one is served by the other', async (t) => {
  const { a, b, upstream } = await replicas(t, { rateLimits: { sessionCreate: { points: 2, duration: '1m' } } });
  const token = await a.proxy.token('alice');
  const replies = [];
  for (let i = 0; i < 4; i++) replies.push(await rpc((i % 2 === 0 ? a : b).mcp, { token, body: initialize(`init-${i}`) }));
  t.same(replies.map((r) => r.status), [200, 200, 429, 429]);
  t.same(replies.slice(2).map((r) => (r.json as { id: unknown }).id), ['init-2', 'init-3']);
  t.equal(upstream.sessionIds().length, 2);
  const sessionId = replies[0]?.headers.get('mcp-session-id') ?? '';
  const elsewhere = await rpc(b.mcp, { token, sessionId, headers: { 'mcp-protocol-version': '2025-11-25' }, body: { jsonrpc: '2.0', id: 9, method: 'tools/list' } });
  t.equal(elsewhere.status, 200, 'the session minted by A is found by B');
});

t.test('failed-attempt block across two replicas: failures on either count, the block holds on both', async (t) => {
  const { a, b, upstream } = await replicas(t, { rateLimits: { failedAttempts: { points: 3, duration: '1m', block: '1m' } } });
  t.equal((await rpc(a.mcp, { token: 'bad' })).status, 401);
  t.equal((await rpc(b.mcp, { token: 'bad' })).status, 401);
  t.equal((await tokenRequest(a.origin, 'alice', 'wrong-secret')).status, 401);
  const starts = [...a.proxy.logs.events('address.blocked'), ...b.proxy.logs.events('address.blocked')];
  t.equal(starts.length, 1, 'the block starts once, on the replica that saw the 3rd failure');
  t.match(a.proxy.logs.events('address.blocked')[0], { reason: 'threshold', address: '127.0.0.1' });
  const token = await a.proxy.token('alice');
  const seen = upstream.requests.length;
  for (const r of [b, a]) {
    const res = await rpc(r.mcp, { token, body: initialize(1) });
    t.equal(res.status, 429, 'a valid token is refused on each replica');
    t.ok(retryAfter(res.headers) > 55);
  }
  t.equal((await tokenRequest(b.origin, 'alice', TEST_CLIENTS.alice)).status, 429);
  t.equal(upstream.requests.length, seen, 'nothing forwarded');
});

t.test('a short block expires in Redis on both replicas', async (t) => {
  const { a, b } = await replicas(t, { rateLimits: { failedAttempts: { points: 2, duration: '1m', block: 1000 } } });
  await rpc(a.mcp, { token: 'bad' });
  await rpc(b.mcp, { token: 'bad' });
  const token = await a.proxy.token('alice');
  t.equal((await rpc(a.mcp, { token, body: initialize(1) })).status, 429);
  await sleep(1_100);
  t.equal((await rpc(b.mcp, { token, body: initialize(2) })).status, 200);
  t.equal((await rpc(a.mcp, { token, body: initialize(3) })).status, 200);
});

t.test('token endpoint limit across two replicas', async (t) => {
  const { a, b } = await replicas(t, { rateLimits: { tokenEndpoint: { points: 3, duration: '1m' } } });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await tokenRequest((i % 2 === 0 ? a : b).origin, 'alice', TEST_CLIENTS.alice)).status);
  t.same(statuses, [200, 200, 200, 429, 429]);
});

t.test('Redis gone: limit checks fail fast and closed with 503 + Retry-After, nothing is forwarded', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.stop());
  const upstream = await startDemoServer({ stateless: true, jsonResponse: true });
  const proxy = await startWarden({ upstreams: [upstream.url], store: { type: 'redis', url: own.url, keyPrefix: 'outage:' } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const token = await proxy.token('alice');
  t.equal((await rpc(proxy.mcpUrl, { token })).status, 200, 'served while Redis is up');
  const before = await scrape(`${proxy.url}/metrics`);
  const seen = upstream.requests.length;
  await own.stop();

  const timed = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
    const started = performance.now();
    const value = await work();
    return [value, performance.now() - started];
  };
  for (const [what, auth] of [['a valid token', token], ['a bad token', 'bad'], ['no token', null]] as const) {
    const [res, ms] = await timed(() => rpc(proxy.mcpUrl, { token: auth }));
    t.equal(res.status, 503, `${what}: 503, never 401 or 500`);
    t.ok(ms < 500, `${what}: answered in ${ms.toFixed(0)} ms`);
    t.same(res.json, { jsonrpc: '2.0', error: { code: -32000, message: 'Service temporarily unavailable' }, id: null });
    t.ok(retryAfter(res.headers) >= 1, 'Retry-After');
  }
  const [token503, tokenMs] = await timed(() => tokenRequest(proxy.url, 'alice', TEST_CLIENTS.alice));
  t.equal(token503.status, 503, 'the token endpoint fails closed too');
  t.ok(tokenMs < 500, `token endpoint answered in ${tokenMs.toFixed(0)} ms`);
  t.same(token503.json, { error: 'temporarily_unavailable', error_description: 'Service temporarily unavailable' });
  t.ok(retryAfter(token503.headers) >= 1);
  t.equal(upstream.requests.length, seen, 'nothing was forwarded');

  const events = proxy.logs.events('store.unavailable');
  t.equal(events.length, 4);
  t.ok(events.every((e) => e.address === '127.0.0.1' && e.code === 'STORE_UNAVAILABLE' && typeof e.reqId === 'string'));
  t.equal(proxy.logs.events('auth.failed').length, 0, 'no token was even looked at');
  const after = await scrape(`${proxy.url}/metrics`);
  t.ok(after.value('mcp_warden_store_errors_total') >= before.value('mcp_warden_store_errors_total') + 4, 'every failed limit check is a store error');
  t.equal(after.value('mcp_warden_requests_total', { route: 'mcp', status: '503' }), 3);
});
