/**
 * The five attack families of the original report (ORIGINAL-REPORT.md "Attack Scenarios"), each
 * against a real SDK upstream that records every request it gets: hijacking, fixation, brute
 * force, replay and flooding.
 */
import t from 'tap';
import { connectClient } from '../fixtures/mcp-client.js';
import { forgedId, initialize, openSession, send, tokenEndpoint, revokeToken, waitFor, PROXY_ID } from '../fixtures/session-http.js';
import { startStack } from '../fixtures/stack.js';
import { TEST_CLIENTS } from '../fixtures/warden.js';

t.test('scenario 1, session hijacking: B\'s valid token with A\'s session id gets 404 -32001 and nothing is forwarded', async (t) => {
  const { upstream, proxy, token } = await startStack(t);
  const a = await connectClient(proxy.mcpUrl, { token: await token('alice') });
  t.teardown(a.close);
  const stolen = a.transport.sessionId ?? '';
  t.match(stolen, PROXY_ID);
  // The SDK client opens its GET stream by itself after initialize: let it land before counting.
  await waitFor(() => upstream.requests.some((r) => r.method === 'GET'), 'the client GET stream');
  const before = upstream.requests.length;

  const bob = await token('bob');
  for (const method of ['POST', 'GET', 'DELETE'] as const) {
    const reply = await send(proxy.mcpUrl, { token: bob, sessionId: stolen, method });
    t.equal(reply.status, 404, `${method} with A's session id`);
    t.equal(reply.rpcCode, -32001);
    t.equal(reply.sessionId, null, 'no session id on the refusal');
  }
  t.equal(upstream.requests.length, before, 'nothing reached the upstream');
  const events = proxy.logs.events('session.not_found');
  t.equal(events.length, 3);
  t.match(events[0], { clientId: 'bob', code: 'SESSION_NOT_FOUND', reason: 'forged' }, 'the tag covers the client: refused before any lookup');
  t.notOk(proxy.logs.text().includes(stolen), 'the full session id is never logged');

  const tools = await a.client.listTools();
  t.equal(tools.tools.length, 5, 'A is unaffected: its session still works');
  t.equal(upstream.sessionIds().length, 1, 'and its upstream session is intact');
});

t.test('scenario 2, session fixation: an attacker-chosen Mcp-Session-Id on initialize is never forwarded nor adopted', async (t) => {
  const { upstream, proxy, token } = await startStack(t);
  const alice = await token('alice');
  const bobSession = await openSession(proxy.mcpUrl, await token('bob'));
  const chosen = ['attacker-chosen-session-0001', forgedId(), bobSession.sessionId ?? ''];
  const before = upstream.requests.length;

  for (const id of chosen) {
    const planted = await send(proxy.mcpUrl, { token: alice, sessionId: id, body: initialize() });
    t.equal(planted.status, 404, 'initialize carrying a chosen id: 404, the client must re-initialize without it');
    t.equal(planted.rpcCode, -32001);
    t.equal(planted.sessionId, null);
  }
  t.equal(upstream.requests.length, before, 'none of those requests reached the upstream');
  t.equal(proxy.logs.events('session.not_found').length, chosen.length);

  const fresh = await openSession(proxy.mcpUrl, alice);
  t.equal(fresh.status, 200);
  t.match(fresh.sessionId, PROXY_ID);
  t.notOk(chosen.includes(fresh.sessionId ?? ''), 'the re-initialized session has a fresh proxy id');
  const seen = JSON.stringify(upstream.requests.map((r) => r.headers));
  for (const id of chosen) t.notOk(seen.includes(id), 'the chosen id never reached the upstream');
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: chosen[0] })).status, 404, 'and it was not adopted');
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: fresh.sessionId })).status, 200);
});

t.test('scenario 3, brute force: thousands of well-formed random ids all get 404, none is forwarded, then the source is blocked', async (t) => {
  const budget = 2000;
  const { upstream, proxy, token } = await startStack(t, {
    rateLimits: { client: { points: 100_000, duration: '1m' }, failedAttempts: { points: budget, duration: '1m', block: '5m' } },
    log: { level: 'warn' },
  });
  const alice = await token('alice');
  const real = await openSession(proxy.mcpUrl, alice);
  const realId = real.sessionId ?? '';
  const before = upstream.requests.length;

  // Random ids, plus the real one with one character changed: the tag rejects all without a lookup.
  const guesses = Array.from({ length: budget }, (_, i) => (i % 100 === 0 ? `${realId.slice(0, 20)}${realId[20] === 'A' ? 'B' : 'A'}${realId.slice(21)}` : forgedId()));
  const methods = ['GET', 'POST', 'GET', 'DELETE'] as const;
  const statuses = new Map<number, number>();
  const codes = new Set<number | null>();
  for (let i = 0; i < guesses.length; i += 50) {
    const replies = await Promise.all(guesses.slice(i, i + 50).map((id, j) => send(proxy.mcpUrl, { token: alice, sessionId: id, method: methods[j % methods.length] })));
    for (const r of replies) {
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      codes.add(r.rpcCode);
    }
  }
  t.same([...statuses], [[404, budget]], `all ${budget} guesses got 404`);
  t.same([...codes], [-32001]);
  t.equal(upstream.requests.length, before, 'no guess reached the upstream');
  t.equal(proxy.logs.events('session.not_found').length, budget);

  const blocked = await send(proxy.mcpUrl, { token: alice, sessionId: realId });
  t.equal(blocked.status, 429, 'over the failed-attempt budget the source is blocked, even with a valid session');
  t.ok(Number(blocked.headers.get('retry-after')) > 60, 'for the block duration');
  t.equal(proxy.logs.events('address.blocked').filter((e) => e.reason === 'threshold').length, 1, 'the block start is logged once');
  t.equal(proxy.logs.events('address.blocked').filter((e) => e.code === 'ADDRESS_BLOCKED').length, 1, 'and the refused request');
  t.equal(upstream.requests.length, before);
});

t.test('scenario 4, session replay: an id that ended gets 404 however it ended', async (t) => {
  t.test('after DELETE', async (t) => {
    const { upstream, proxy, token } = await startStack(t);
    const alice = await token();
    const { sessionId } = await openSession(proxy.mcpUrl, alice);
    t.equal((await send(proxy.mcpUrl, { token: alice, sessionId, method: 'DELETE' })).status, 200);
    const before = upstream.requests.length;
    const replay = await send(proxy.mcpUrl, { token: alice, sessionId });
    t.same([replay.status, replay.rpcCode], [404, -32001]);
    t.equal(upstream.requests.length, before);
    t.match(proxy.logs.events('session.not_found').at(-1), { reason: 'unknown' });
  });

  t.test('after idle expiry and after the absolute lifetime', async (t) => {
    const frozen = Date.now();
    const { proxy, token } = await startStack(t, { sessions: { idleTimeout: '1s', maxLifetime: 2500 } }, { clock: () => frozen });
    const alice = await token();
    const idle = await openSession(proxy.mcpUrl, alice);
    const busy = await openSession(proxy.mcpUrl, alice);
    for (let i = 0; i < 5; i++) {
      proxy.advance(600);
      t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: busy.sessionId })).status, i < 4 ? 200 : 404, `busy session at ${600 * (i + 1)} ms`);
      if (i === 1) t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: idle.sessionId })).status, 404, 'idle session after 1.2 s');
    }
  });

  t.test('after grant revocation (RFC 7009 revoke of its refresh token)', async (t) => {
    const { upstream, proxy } = await startStack(t, { tokens: { issueRefreshTokens: true } });
    const grant = await tokenEndpoint(proxy.url, 'alice', TEST_CLIENTS.alice);
    const { sessionId } = await openSession(proxy.mcpUrl, grant.access_token);
    t.equal(await revokeToken(proxy.url, 'alice', TEST_CLIENTS.alice, grant.refresh_token ?? ''), 200);
    t.equal((await send(proxy.mcpUrl, { token: grant.access_token, sessionId })).status, 401, 'the grant\'s access token is revoked');
    const before = upstream.requests.length;
    const other = await tokenEndpoint(proxy.url, 'alice', TEST_CLIENTS.alice);
    const replay = await send(proxy.mcpUrl, { token: other.access_token, sessionId });
    t.same([replay.status, replay.rpcCode], [404, -32001], 'a new grant of the same client cannot replay the ended session');
    t.equal(upstream.requests.length, before);
  });

  t.test('after client revocation', async (t) => {
    const { upstream, proxy, token } = await startStack(t);
    const { sessionId } = await openSession(proxy.mcpUrl, await token());
    const now = Date.now();
    await proxy.warden.store.revokePrincipal('alice', now, 3_600_000);
    // A token issued after the cutoff: JWT iat has second resolution, so let a second pass.
    proxy.advance(1_000);
    const before = upstream.requests.length;
    const replay = await send(proxy.mcpUrl, { token: await token(), sessionId });
    t.same([replay.status, replay.rpcCode], [404, -32001]);
    t.equal(upstream.requests.length, before);
    t.equal((await openSession(proxy.mcpUrl, await token())).status, 200, 'a new session works');
  });
  t.end();
});

t.test('scenario 5, session flooding: caps and creation rate hold, existing sessions keep working', async (t) => {
  t.test('over maxConcurrent with onLimit "reject": 429 SESSION_LIMIT, the upstream never sees it', async (t) => {
    const { upstream, proxy, token } = await startStack(t, { sessions: { maxConcurrent: 2, onLimit: 'reject' } });
    const alice = await token();
    const first = await openSession(proxy.mcpUrl, alice);
    await openSession(proxy.mcpUrl, alice);
    const before = upstream.requests.length;
    const flood = await send(proxy.mcpUrl, { token: alice, body: initialize(7) });
    t.equal(flood.status, 429);
    t.same(flood.messages[0], { jsonrpc: '2.0', error: { code: -32000, message: 'Too many open sessions' }, id: 7 });
    t.ok(flood.headers.get('retry-after'));
    t.match(proxy.logs.events('session.limited')[0], { code: 'SESSION_LIMIT', clientId: 'alice' });
    t.equal(upstream.requests.length, before);
    t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: first.sessionId })).status, 200, 'an existing session keeps working');
    t.equal((await openSession(proxy.mcpUrl, await token('bob'))).status, 200, 'another client is not affected');
  });

  t.test('over maxConcurrent with onLimit "evict-oldest": the oldest id gets 404, and its upstream session ends', async (t) => {
    const { upstream, proxy, token } = await startStack(t, { sessions: { maxConcurrent: 2, onLimit: 'evict-oldest' } });
    const alice = await token();
    const ids = [];
    const upstreamIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await openSession(proxy.mcpUrl, alice)).sessionId);
      upstreamIds.push(...upstream.sessionIds().filter((id) => !upstreamIds.includes(id)));
    }
    const evicted = await send(proxy.mcpUrl, { token: alice, sessionId: ids[0] });
    t.same([evicted.status, evicted.rpcCode], [404, -32001], 'the oldest was evicted');
    t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: ids[1] })).status, 200);
    t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: ids[2] })).status, 200);
    t.equal(proxy.logs.events('session.evicted').length, 1);
    // Without the DELETE, the SDK upstream would keep the evicted session for as long as it runs:
    // a client cycling sessions through the cap would pile them up there.
    await waitFor(() => !upstream.sessionIds().includes(upstreamIds[0] ?? ''), 'the upstream to end the evicted session');
    t.same(upstream.sessionIds().sort(), upstreamIds.slice(1).sort(), 'the upstream keeps exactly the two live sessions');
    const deletes = upstream.requests.filter((r) => r.method === 'DELETE');
    t.same(deletes.map((r) => r.headers['mcp-session-id']), [upstreamIds[0]], 'one DELETE, with the evicted session\'s upstream id');
  });

  t.test('over rateLimits.sessionCreate: 429 with RateLimit headers', async (t) => {
    const { upstream, proxy, token } = await startStack(t, { rateLimits: { sessionCreate: { points: 3, duration: '1m' } } });
    const alice = await token();
    const kept = await openSession(proxy.mcpUrl, alice);
    await openSession(proxy.mcpUrl, alice);
    await openSession(proxy.mcpUrl, alice);
    const before = upstream.requests.length;
    const flood = await send(proxy.mcpUrl, { token: alice, body: initialize() });
    t.equal(flood.status, 429);
    t.equal(flood.rpcCode, -32000);
    t.equal(flood.headers.get('ratelimit-policy'), '"session_create";q=3;w=60');
    t.match(flood.headers.get('ratelimit'), /^"session_create";r=0;t=\d+$/);
    t.ok(Number(flood.headers.get('retry-after')) >= 1);
    t.match(proxy.logs.events('rate.limited')[0], { reason: 'session_create', clientId: 'alice' });
    t.equal(upstream.requests.length, before, 'the refused initialize was not forwarded');
    const still = await send(proxy.mcpUrl, { token: alice, sessionId: kept.sessionId });
    t.equal(still.status, 200, 'an existing session keeps working meanwhile');
    t.match(still.headers.get('ratelimit'), /^"client";r=\d+;t=\d+$/);
  });
  t.end();
});
