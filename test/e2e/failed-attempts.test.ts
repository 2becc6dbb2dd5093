/**
 * Failed attempts per source address (memory store): what counts, the block and when it starts,
 * that a block refuses everything before any other work, its expiry, and which address is counted
 * under each `security.trustProxy` setting.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { initialize, rateLimitFields, retryAfter, rpc, sleep, tokenRequest } from '../fixtures/probe.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

async function setup(t: Test, raw: Record<string, unknown>): Promise<{ proxy: TestWarden; upstream: DemoServer }> {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], ...raw });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return { proxy, upstream };
}

/** Start events (the block begins) as opposed to refusals of an already blocked address. */
const blockStarts = (proxy: TestWarden) => proxy.logs.events('address.blocked').filter((e) => e.reason === 'threshold');
const blockRefusals = (proxy: TestWarden) => proxy.logs.events('address.blocked').filter((e) => e.code === 'ADDRESS_BLOCKED');

t.test('bad tokens, bad client secrets and unknown sessions share one budget; successes spend none; the block refuses everything', async (t) => {
  const { proxy, upstream } = await setup(t, { rateLimits: { failedAttempts: { points: 3, duration: '1m', block: '1m' } } });
  const alice = await proxy.token('alice');
  const init = await rpc(proxy.mcpUrl, { token: alice, body: initialize(1) });
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  t.ok(sessionId, 'a session to use');
  const use = (id: number) => rpc(proxy.mcpUrl, { token: alice, sessionId, body: { jsonrpc: '2.0', id, method: 'tools/list' } });

  // trustProxy is off: the client's own X-Forwarded-For changes nothing about who is counted.
  const badToken = await rpc(proxy.mcpUrl, { token: 'not.a.token', headers: { 'x-forwarded-for': '203.0.113.1' } });
  t.equal(badToken.status, 401, 'failure 1: a bad token');
  for (let i = 0; i < 5; i++) t.equal((await use(10 + i)).status, 200, 'successes between failures pass');
  const badSecret = await tokenRequest(proxy.url, 'alice', 'not-the-secret', { 'x-forwarded-for': '203.0.113.2' });
  t.equal(badSecret.status, 401, 'failure 2: bad client secret');
  t.match(badSecret.json, { error: 'invalid_client' });
  for (let i = 0; i < 5; i++) t.equal((await use(20 + i)).status, 200, 'ten successes later the address is still served');
  t.equal(blockStarts(proxy).length, 0, 'no block yet');

  const unknown = await rpc(proxy.mcpUrl, { token: alice, sessionId: 'forged-session-id', body: { jsonrpc: '2.0', id: 30, method: 'tools/list' } });
  t.equal(unknown.status, 404, 'failure 3 (unknown session) is still answered as itself');
  t.match(unknown.json, { error: { code: -32001 }, id: null }, 'JSON-RPC -32001; the body was not read');
  const starts = blockStarts(proxy);
  t.equal(starts.length, 1, 'address.blocked is logged the moment the threshold is crossed');
  const notFound = proxy.logs.events('session.not_found');
  t.equal(notFound.length, 1);
  t.match(starts[0], { level: 'warn', address: '127.0.0.1', clientId: 'alice', count: 3, route: 'mcp', reqId: notFound[0]?.reqId }, 'by the request that crossed it');
  t.equal(blockRefusals(proxy).length, 0, 'and before any request was refused for it');

  const seen = upstream.requests.length;
  const valid = await use(40);
  t.equal(valid.status, 429, 'a valid token and session from the blocked address get 429');
  t.same(valid.json, { jsonrpc: '2.0', error: { code: -32000, message: 'Too many failed attempts; try again later' }, id: null });
  const seconds = retryAfter(valid.headers);
  t.ok(seconds > 55 && seconds <= 60, `Retry-After ${seconds} is the block`);
  t.same(rateLimitFields(valid.headers), { policy: { name: 'failed_attempts', q: 3, w: 60 }, limit: { name: 'failed_attempts', r: 0, t: seconds } });
  const dodge = await rpc(proxy.mcpUrl, { token: alice, sessionId, headers: { 'x-forwarded-for': '198.51.100.200' } });
  t.equal(dodge.status, 429, 'a self-sent X-Forwarded-For does not dodge the block');
  const token = await tokenRequest(proxy.url, 'alice', TEST_CLIENTS.alice);
  t.equal(token.status, 429, 'the token endpoint refuses the address too');
  t.same(token.json, { error: 'temporarily_unavailable', error_description: 'Too many failed attempts; try again later' });
  t.equal(upstream.requests.length, seen, 'the upstream saw nothing from the blocked address');
  t.equal(blockRefusals(proxy).length, 3);
  t.ok(blockRefusals(proxy).every((e) => e.address === '127.0.0.1' && e.reason === 'failed_attempts'));
  t.equal(blockStarts(proxy).length, 1, 'refusals while blocked start no new block');
  t.equal(proxy.logs.events('auth.failed').length, 2, 'refusals while blocked are not authenticated at all');
});

t.test('the block ends after `block`, and the budget starts again', async (t) => {
  const { proxy } = await setup(t, { rateLimits: { failedAttempts: { points: 2, duration: '1m', block: 1000 } } });
  const alice = await proxy.token('alice');
  t.equal((await rpc(proxy.mcpUrl, { token: 'not-a-valid-token' })).status, 401);
  t.equal((await rpc(proxy.mcpUrl, { token: 'not-a-valid-token' })).status, 401);
  const blocked = await rpc(proxy.mcpUrl, { token: alice, body: initialize(1) });
  t.equal(blocked.status, 429);
  t.equal(retryAfter(blocked.headers), 1);
  await sleep(1_100);
  t.equal((await rpc(proxy.mcpUrl, { token: alice, body: initialize(2) })).status, 200, 'served again once the block expired');
  t.equal((await rpc(proxy.mcpUrl, { token: 'not-a-valid-token' })).status, 401, 'one new failure is a 401, not a block');
  t.equal((await rpc(proxy.mcpUrl, { token: alice, body: initialize(3) })).status, 200);
  t.equal(blockStarts(proxy).length, 1);
});

t.test('trustProxy as a hop count: the forwarded address is the one counted and blocked', async (t) => {
  const { proxy, upstream } = await setup(t, { security: { trustProxy: 1 }, rateLimits: { failedAttempts: { points: 2, duration: '1m', block: '1m' } } });
  const alice = await proxy.token('alice');
  const as = (address: string | null, token: string | null) => rpc(proxy.mcpUrl, { token, body: initialize(1), headers: address ? { 'x-forwarded-for': address } : {} });
  t.equal((await as('203.0.113.7', 'bad')).status, 401);
  t.equal((await as('203.0.113.7', 'worse')).status, 401);
  t.same(blockStarts(proxy).map((e) => e.address), ['203.0.113.7']);
  const seen = upstream.requests.length;
  t.equal((await as('203.0.113.7', alice)).status, 429, 'the blocked forwarded address');
  t.equal(upstream.requests.length, seen);
  t.equal((await as('203.0.113.8', alice)).status, 200, 'another forwarded address');
  t.equal((await as(null, alice)).status, 200, 'the proxy itself (no header)');
  t.match(proxy.logs.events('auth.failed')[0], { address: '203.0.113.7' });
});

t.test('trustProxy as CIDRs: hops are believed only through trusted proxies, so a client cannot pick its address', async (t) => {
  const { proxy } = await setup(t, { security: { trustProxy: ['127.0.0.1/32'] }, rateLimits: { failedAttempts: { points: 2, duration: '1m', block: '1m' } } });
  const alice = await proxy.token('alice');
  // The client wrote 198.51.100.77; the trusted proxy (127.0.0.1) appended the address it saw.
  const chain = '198.51.100.77, 203.0.113.9';
  t.equal((await rpc(proxy.mcpUrl, { token: 'bad', headers: { 'x-forwarded-for': chain } })).status, 401);
  t.equal((await rpc(proxy.mcpUrl, { token: 'bad', headers: { 'x-forwarded-for': chain } })).status, 401);
  t.same(blockStarts(proxy).map((e) => e.address), ['203.0.113.9'], 'the nearest untrusted hop is counted');
  t.equal((await rpc(proxy.mcpUrl, { token: alice, body: initialize(1), headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 429);
  t.equal((await rpc(proxy.mcpUrl, { token: alice, body: initialize(2), headers: { 'x-forwarded-for': '198.51.100.77' } })).status, 200, 'the client-written hop was never blamed');
});

t.test('what a well-behaved client causes itself never blocks its address: tokenless probes, its own ended sessions, its expired tokens', async (t) => {
  const { proxy } = await setup(t, { rateLimits: { failedAttempts: { points: 3, duration: '1m', block: '1m' } }, tokens: { accessTtl: '5m' } });
  for (let i = 0; i < 6; i++) t.equal((await rpc(proxy.mcpUrl, {})).status, 401, 'a tokenless discovery probe');

  const alice = await proxy.token('alice');
  const init = await rpc(proxy.mcpUrl, { token: alice, body: initialize(1) });
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  t.equal((await rpc(proxy.mcpUrl, { token: alice, sessionId, method: 'DELETE' })).status, 200, 'the client ends its session');
  for (let i = 0; i < 6; i++) {
    const retry = await rpc(proxy.mcpUrl, { token: alice, sessionId, body: { jsonrpc: '2.0', id: 10 + i, method: 'tools/list' } });
    t.equal(retry.status, 404, 'and retries the ended id: 404, re-initialize');
  }
  t.ok(proxy.logs.events('session.not_found').every((e) => e.reason === 'unknown'), 'an id minted for this client: not a forgery');

  proxy.advance(6 * 60_000);
  for (let i = 0; i < 6; i++) t.equal((await rpc(proxy.mcpUrl, { token: alice })).status, 401, 'its token ran out');
  t.ok(proxy.logs.events('auth.failed').filter((e) => e.code === 'TOKEN_INVALID').every((e) => e.reason === 'expired'));
  t.equal(blockStarts(proxy).length, 0, '18 refusals, no block');
  const fresh = await proxy.token('alice');
  t.equal((await rpc(proxy.mcpUrl, { token: fresh, body: initialize(2) })).status, 200, 'a fresh token gets straight back in');

  // What an attacker does still counts: a session id not minted for this client.
  for (let i = 0; i < 3; i++) await rpc(proxy.mcpUrl, { token: fresh, sessionId: `forged-${i}`, body: { jsonrpc: '2.0', id: 50 + i, method: 'tools/list' } });
  t.equal(blockStarts(proxy).length, 1, 'three forged ids block the address');
  t.equal((await rpc(proxy.mcpUrl, { token: fresh, body: initialize(3) })).status, 429);
});
