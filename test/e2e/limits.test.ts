/**
 * Rate limits on one process (memory store): the per-client limit and its override, the
 * session-creation limit and the token endpoint's limits, each at its exact threshold.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { initialize, rateLimitFields, retryAfter, rpc, tokenRequest } from '../fixtures/probe.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const CAROL = 'carol-secret-0123456789ab';
const clients = [
  { id: 'alice', secret: TEST_CLIENTS.alice, scopes: ['mcp'] },
  { id: 'bob', secret: TEST_CLIENTS.bob, scopes: ['mcp'], rateLimit: { points: 2, duration: '1m' } },
  { id: 'carol', secret: CAROL, scopes: ['mcp'] },
];

async function setup(t: Test, raw: Record<string, unknown>, upstreamOptions: Parameters<typeof startDemoServer>[0] = {}): Promise<{ proxy: TestWarden; upstream: DemoServer }> {
  const upstream = await startDemoServer(upstreamOptions);
  const proxy = await startWarden({ upstreams: [upstream.url], clients, ...raw });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return { proxy, upstream };
}

const list = (id: number | string) => ({ jsonrpc: '2.0', id, method: 'tools/list' });

t.test('client limit: N requests pass with RateLimit fields, N+1 gets 429 + Retry-After and reaches nobody', async (t) => {
  const { proxy, upstream } = await setup(t, { rateLimits: { client: { points: 3, duration: '1m' } } }, { stateless: true, jsonResponse: true });
  const alice = await proxy.token('alice');
  for (let i = 1; i <= 3; i++) {
    const ok = await rpc(proxy.mcpUrl, { token: alice, body: list(i) });
    t.equal(ok.status, 200, `request ${i} passes`);
    const fields = rateLimitFields(ok.headers);
    t.same(fields.policy, { name: 'client', q: 3, w: 60 }, 'RateLimit-Policy on a success');
    t.equal(fields.limit.name, 'client');
    t.equal(fields.limit.r, 3 - i, 'RateLimit r counts down');
    t.ok(fields.limit.t >= 1 && fields.limit.t <= 60, `RateLimit t=${fields.limit.t} within the window`);
  }
  t.equal(upstream.requests.length, 3);

  const refused = await rpc(proxy.mcpUrl, { token: alice, body: list(4) });
  t.equal(refused.status, 429);
  // The client limit refuses before the body is read: the id is unknown, so null.
  t.same(refused.json, { jsonrpc: '2.0', error: { code: -32000, message: 'Rate limit exceeded' }, id: null });
  const seconds = retryAfter(refused.headers);
  t.ok(seconds >= 1 && seconds <= 60, `Retry-After ${seconds}`);
  const fields = rateLimitFields(refused.headers);
  t.same(fields.policy, { name: 'client', q: 3, w: 60 });
  t.same(fields.limit, { name: 'client', r: 0, t: seconds }, 'RateLimit agrees with Retry-After');
  t.equal(upstream.requests.length, 3, 'the refused request never reached the upstream');

  t.equal(proxy.logs.events('rate.limited').length, 1);
  t.match(proxy.logs.events('rate.limited')[0], { reason: 'client', code: 'RATE_LIMITED', clientId: 'alice', address: '127.0.0.1', reqId: String });

  const carol = await rpc(proxy.mcpUrl, { token: await proxy.token('carol') });
  t.equal(carol.status, 200, 'another client has its own counter');
  t.equal(rateLimitFields(carol.headers).limit.r, 2);
});

t.test('a per-client rateLimit overrides rateLimits.client for that client only', async (t) => {
  const { proxy, upstream } = await setup(t, { rateLimits: { client: { points: 3, duration: '1m' } } }, { stateless: true, jsonResponse: true });
  const bob = await proxy.token('bob');
  const statuses: number[] = [];
  for (let i = 1; i <= 3; i++) {
    const res = await rpc(proxy.mcpUrl, { token: bob, body: list(i) });
    statuses.push(res.status);
    t.same(rateLimitFields(res.headers).policy, { name: 'client', q: 2, w: 60 }, 'the override is the advertised policy');
  }
  t.same(statuses, [200, 200, 429], 'bob: 2 allowed, the 3rd refused');
  t.equal(upstream.requests.length, 2);
  const alice = await rpc(proxy.mcpUrl, { token: await proxy.token('alice') });
  t.same([alice.status, rateLimitFields(alice.headers).policy.q], [200, 3], 'alice keeps the default');
});

t.test('session-create limit: N initializes pass, N+1 gets 429 with the initialize id', async (t) => {
  const { proxy, upstream } = await setup(t, { rateLimits: { sessionCreate: { points: 2, duration: '1m' } } });
  const alice = await proxy.token('alice');
  for (let i = 1; i <= 2; i++) {
    const ok = await rpc(proxy.mcpUrl, { token: alice, body: initialize(`init-${i}`) });
    t.equal(ok.status, 200);
    t.ok(ok.headers.get('mcp-session-id'), 'a proxy session id was minted');
  }
  const before = upstream.requests.length;
  const refused = await rpc(proxy.mcpUrl, { token: alice, body: initialize('init-3') });
  t.equal(refused.status, 429);
  t.same(refused.json, { jsonrpc: '2.0', error: { code: -32000, message: 'Rate limit exceeded' }, id: 'init-3' }, 'the body was read: its id is echoed');
  const seconds = retryAfter(refused.headers);
  t.ok(seconds >= 1 && seconds <= 60, `Retry-After ${seconds}`);
  const fields = rateLimitFields(refused.headers);
  t.same(fields.policy, { name: 'session_create', q: 2, w: 60 });
  t.same(fields.limit, { name: 'session_create', r: 0, t: seconds });
  t.equal(refused.headers.get('mcp-session-id'), null);
  t.equal(upstream.requests.length, before, 'nothing forwarded');
  t.equal(upstream.sessionIds().length, 2, 'the upstream created exactly two sessions');
  t.equal(proxy.logs.events('rate.limited').length, 1);
  t.match(proxy.logs.events('rate.limited')[0], { reason: 'session_create', clientId: 'alice', address: '127.0.0.1', reqId: String });

  const other = await rpc(proxy.mcpUrl, { token: alice, body: list(9) });
  t.not(other.status, 429, 'a session-less request that is not initialize does not spend the creation budget');
  const bob = await rpc(proxy.mcpUrl, { token: await proxy.token('bob'), body: initialize('bob-1') });
  t.equal(bob.status, 200, 'the limit is per client');
});

t.test('token endpoint: limited per client_id across addresses and per address across clients', async (t) => {
  const { proxy } = await setup(t, { rateLimits: { tokenEndpoint: { points: 2, duration: '1m' } }, security: { trustProxy: 1 } });
  const from = (address: string) => ({ 'x-forwarded-for': address });

  t.equal((await tokenRequest(proxy.url, 'alice', TEST_CLIENTS.alice, from('198.51.100.1'))).status, 200);
  t.equal((await tokenRequest(proxy.url, 'alice', TEST_CLIENTS.alice, from('198.51.100.2'))).status, 200);
  const perClient = await tokenRequest(proxy.url, 'alice', TEST_CLIENTS.alice, from('198.51.100.3'));
  t.equal(perClient.status, 429, 'the 3rd request of one client_id is refused from a fresh address');
  t.same(perClient.json, { error: 'temporarily_unavailable', error_description: 'Rate limit exceeded' }, 'RFC 6749 §5.2 style body');
  t.equal(perClient.headers.get('cache-control'), 'no-store');
  const seconds = retryAfter(perClient.headers);
  t.ok(seconds >= 1 && seconds <= 60, `Retry-After ${seconds}`);
  t.same(rateLimitFields(perClient.headers), { policy: { name: 'token_endpoint', q: 2, w: 60 }, limit: { name: 'token_endpoint', r: 0, t: seconds } });
  t.equal(proxy.logs.events('rate.limited').length, 1);
  t.match(proxy.logs.events('rate.limited')[0], { reason: 'token_endpoint', address: '198.51.100.3', route: '/oauth/token', reqId: String });

  t.equal((await tokenRequest(proxy.url, 'bob', TEST_CLIENTS.bob, from('198.51.100.9'))).status, 200);
  t.equal((await tokenRequest(proxy.url, 'carol', CAROL, from('198.51.100.9'))).status, 200);
  const perAddress = await tokenRequest(proxy.url, 'carol', CAROL, from('198.51.100.9'));
  t.equal(perAddress.status, 429, 'the 3rd request from one address is refused, whatever the client');
  t.equal(rateLimitFields(perAddress.headers).policy.name, 'token_endpoint');
  t.equal((await tokenRequest(proxy.url, 'carol', CAROL, from('198.51.100.10'))).status, 200, 'carol had spent one point only: the refusal was the address limit');

  const anonymous = await tokenRequest(proxy.url, null, '', from('198.51.100.20'));
  t.equal(anonymous.status, 401, 'no credentials: invalid_client');
  t.equal((await tokenRequest(proxy.url, null, '', from('198.51.100.20'))).status, 401);
  t.equal((await tokenRequest(proxy.url, null, '', from('198.51.100.20'))).status, 429, 'requests without credentials spend the address budget too');

  // Guessing at bob's secret from many addresses must not lock bob out: only a right secret
  // spends the client's budget (bob spent 1 of 2 above).
  for (const address of ['198.51.100.30', '198.51.100.31', '198.51.100.32']) {
    t.equal((await tokenRequest(proxy.url, 'bob', 'wrong-secret-000000000', from(address))).status, 401);
  }
  t.equal((await tokenRequest(proxy.url, 'bob', TEST_CLIENTS.bob, from('198.51.100.33'))).status, 200, 'wrong secrets did not spend bob\'s budget');
});
