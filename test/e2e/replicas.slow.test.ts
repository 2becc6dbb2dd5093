/**
 * Replicas (DESIGN §5, §6): two mcp-warden processes sharing one Redis and one signing secret
 * behave as one proxy: sessions, their ending, revocation, the session cap, the creation rate and
 * upstream affinity are all shared.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { startRedis } from '../fixtures/redis.js';
import { startReplicas } from '../fixtures/replicas.js';
import { initialize, openSession, openStream, revokeToken, send, tokenEndpoint, waitFor, PROXY_ID } from '../fixtures/session-http.js';
import { TEST_CLIENTS } from '../fixtures/warden.js';

const redis = await startRedis();
t.teardown(() => redis.stop());

async function demo(t: Test): Promise<DemoServer> {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  return upstream;
}

t.test('a session created through one replica is served by the other, SSE, GET stream and DELETE included', async (t) => {
  const upstream = await demo(t);
  const [a, b] = await startReplicas(t, 2, { url: redis.url }, { upstreams: [upstream.url] });
  if (!a || !b) throw new Error('two replicas');
  const { client, transport, close } = await connectClient(a.mcpUrl, { token: await a.token() });
  t.teardown(close);
  const sessionId = transport.sessionId ?? '';
  t.match(sessionId, PROXY_ID);
  t.equal((await client.listTools()).tools.length, 5, 'through A');

  const bob = await b.token('bob');
  const viaB = await send(b.mcpUrl, { token: await b.token(), sessionId });
  t.equal(viaB.status, 200, 'B knows the session A created');
  t.equal(viaB.sessionId, sessionId, 'and answers with the same proxy id');
  t.equal((viaB.messages[0]?.result as { tools: unknown[] }).tools.length, 5);
  const stream = await openStream(b.mcpUrl, { token: await b.token(), sessionId, lastEventId: 'resume-1' });
  stream.close();
  t.not(stream.status, 404, 'a GET (resumption) through B reaches the session');
  t.equal(upstream.requests.at(-1)?.headers['last-event-id'], 'resume-1');
  t.equal((await send(b.mcpUrl, { token: bob, sessionId })).status, 404, 'still bound to alice on B');

  t.equal((await send(b.mcpUrl, { token: await b.token(), sessionId, method: 'DELETE' })).status, 200, 'DELETE through B');
  const before = upstream.requests.length;
  const gone = await client.listTools().then(() => 0, (err: { code?: number }) => err.code);
  t.equal(gone, 404, 'A sees the DELETE on its next request');
  t.equal(upstream.requests.length, before, 'without forwarding it');
  t.match(b.logs.events('session.ended'), [{ reason: 'delete', clientId: 'alice' }]);
  t.match(a.logs.events('session.not_found').at(-1), { reason: 'unknown', clientId: 'alice' });
  t.equal(upstream.sessionIds().length, 0);
});

t.test('revocation through one replica is seen by the other on its next request', async (t) => {
  const upstream = await demo(t);
  const [a, b] = await startReplicas(t, 2, { url: redis.url }, { upstreams: [upstream.url], tokens: { issueRefreshTokens: true } });
  if (!a || !b) throw new Error('two replicas');
  const grant = await tokenEndpoint(a.url, 'alice', TEST_CLIENTS.alice);
  const { sessionId } = await openSession(b.mcpUrl, grant.access_token);
  t.equal((await send(a.mcpUrl, { token: grant.access_token, sessionId })).status, 200);

  t.equal(await revokeToken(a.url, 'alice', TEST_CLIENTS.alice, grant.refresh_token ?? ''), 200, 'the grant is revoked through A');
  const revoked = await send(b.mcpUrl, { token: grant.access_token, sessionId });
  t.equal(revoked.status, 401, 'B refuses the grant\'s token');
  const other = await tokenEndpoint(b.url, 'alice', TEST_CLIENTS.alice);
  t.equal((await send(b.mcpUrl, { token: other.access_token, sessionId })).status, 404, 'and the grant\'s session ended everywhere');

  const second = await openSession(a.mcpUrl, other.access_token);
  t.equal((await send(b.mcpUrl, { token: other.access_token, sessionId: second.sessionId })).status, 200);
  await a.warden.store.revokePrincipal('alice', Date.now(), 3_600_000);
  t.equal((await send(b.mcpUrl, { token: other.access_token, sessionId: second.sessionId })).status, 401, 'client revocation through A: B refuses its tokens');
});

t.test('the session cap and the creation rate are shared: the total admitted is the limit, not twice it', async (t) => {
  t.test('maxConcurrent under concurrent initializes on both replicas', async (t) => {
    const upstream = await demo(t);
    const replicas = await startReplicas(t, 2, { url: redis.url }, { upstreams: [upstream.url], sessions: { maxConcurrent: 3, onLimit: 'reject' } });
    const tokens = await Promise.all(replicas.map((r) => r.token()));
    const attempts = await Promise.all(Array.from({ length: 8 }, (_, i) => send(replicas[i % 2]?.mcpUrl ?? '', { token: tokens[i % 2] ?? '', body: initialize(i) })));
    t.equal(attempts.filter((r) => r.status === 200).length, 3, 'exactly three sessions admitted');
    t.equal(attempts.filter((r) => r.status === 429).length, 5, 'the rest refused with 429');
    t.equal((await replicas[0]?.warden.store.listSessions('alice', Date.now()))?.length, 3);
    // A replica that lost the race for the last slot after the upstream had created a session ends it there.
    await waitFor(() => upstream.sessionIds().length <= 3, 'orphaned upstream sessions to be ended');
    t.equal(upstream.sessionIds().length, 3, 'the upstream keeps exactly the three admitted sessions');
  });

  t.test('rateLimits.sessionCreate across replicas', async (t) => {
    const upstream = await demo(t);
    const [a, b] = await startReplicas(t, 2, { url: redis.url }, { upstreams: [upstream.url], rateLimits: { sessionCreate: { points: 4, duration: '1m' } } });
    if (!a || !b) throw new Error('two replicas');
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await openSession((i % 2 ? b : a).mcpUrl, await a.token())).status);
    t.same(statuses, [200, 200, 200, 200, 429, 429]);
    t.equal(b.logs.events('rate.limited').length + a.logs.events('rate.limited').length, 2);
  });
  t.end();
});

t.test('sliding idle expiry in real time on Redis, used alternately through both replicas', async (t) => {
  const upstream = await demo(t);
  // Redis expires keys on its own clock, so time really passes here; the margins allow a slow machine 0.6 s per request.
  const [a, b] = await startReplicas(t, 2, { url: redis.url }, { upstreams: [upstream.url], sessions: { idleTimeout: 1_500 } });
  if (!a || !b) throw new Error('two replicas');
  const token = await a.token();
  const { sessionId } = await openSession(a.mcpUrl, token);
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  await pause(900);
  t.equal((await send(b.mcpUrl, { token, sessionId })).status, 200, '0.9 s, through B');
  await pause(900);
  t.equal((await send(a.mcpUrl, { token, sessionId })).status, 200, '1.8 s, through A: alive only because B slid it');
  await pause(1_700);
  t.equal((await send(b.mcpUrl, { token, sessionId })).status, 404, 'idle for 1.7 s: Redis expired it');
});

t.test('upstream affinity: sessions alternate over two upstreams and stay on theirs on every replica', async (t) => {
  const ups = [await demo(t), await demo(t)];
  const [a, b] = await startReplicas(t, 2, { url: redis.url }, { upstreams: ups.map((u) => u.url) });
  if (!a || !b) throw new Error('two replicas');
  const token = await a.token();
  const sessions: string[] = [];
  for (let i = 0; i < 4; i++) sessions.push((await openSession(a.mcpUrl, token)).sessionId ?? '');
  t.same(ups.map((u) => u.sessionIds().length), [2, 2], 'round robin: two sessions on each upstream');
  const rows = await a.warden.store.listSessions('alice', Date.now());
  t.same(rows.sort((x, y) => x.createdAt - y.createdAt).map((r) => r.upstream), [0, 1, 0, 1]);

  for (const [i, sessionId] of sessions.entries()) {
    const home = ups[i % 2];
    const away = ups[(i + 1) % 2];
    const counts = () => [home?.requests.length ?? 0, away?.requests.length ?? 0];
    const [homeBefore, awayBefore] = counts();
    t.equal((await send(b.mcpUrl, { token, sessionId })).status, 200);
    const stream = await openStream(b.mcpUrl, { token, sessionId });
    stream.close();
    const resume = await openStream(a.mcpUrl, { token, sessionId, lastEventId: `ev-${i}` });
    resume.close();
    t.equal((await send(b.mcpUrl, { token, sessionId, method: 'DELETE' })).status, 200);
    const [homeAfter, awayAfter] = counts();
    t.equal((homeAfter ?? 0) - (homeBefore ?? 0), 4, `session ${i}: POST, GET, resumption GET and DELETE all went to upstream ${i % 2}`);
    t.equal(awayAfter, awayBefore, 'none to the other upstream');
    t.equal(home?.requests.at(-2)?.headers['last-event-id'], `ev-${i}`);
  }
  t.same(ups.map((u) => u.sessionIds().length), [0, 0], 'each DELETE ended its session where it lived');
});
