/**
 * Redis Cluster as the store (DESIGN §6): a real 3-master cluster. Every key of one client carries
 * its `{client}` hash tag, so each request's scripts stay in one slot while different clients land
 * on different masters. The full SDK flow, revocation, the cap with eviction, the rate limiters and
 * listing every session across masters must work without a CROSSSLOT (or any store) error.
 */
import t from 'tap';
import { createSessionEnder } from '../../src/session/end-session.js';
import { createLogger } from '../../src/observability/logger.js';
import { startDemoServer } from '../../demo/mcp-server.js';
import { runCli, writeConfig } from '../fixtures/cli.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { redisCommand, startCluster } from '../fixtures/redis.js';
import { freshPrefix, SHARED_SECRET, startReplicas } from '../fixtures/replicas.js';
import { forgedId, openSession, openStream, revokeToken, send, tokenEndpoint, waitFor } from '../fixtures/session-http.js';
import { listSessionRows, revokeClientSessions } from '../../src/session/manage.js';

const cluster = await startCluster();
t.teardown(() => cluster.stop());
const upstream = await startDemoServer();
t.teardown(() => upstream.close());

const CLIENTS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const secret = (id: string) => `${id}-cluster-secret-0123456789`;
const store = { cluster: cluster.nodes.map((n) => `${n.host}:${n.port}`) };
const raw = (extra: Record<string, unknown> = {}) => ({
  upstreams: [upstream.url],
  clients: CLIENTS.map((id) => ({ id, secret: secret(id), scopes: ['mcp'] })),
  ...extra,
});

/** Keys per master under a prefix: proves the data is spread, and that every key stays in its own slot. */
async function keysPerMaster(prefix: string): Promise<number[]> {
  return Promise.all(cluster.nodes.map(async (n) => {
    const keys = (await redisCommand(n.port, ['EVAL', `return #redis.call('KEYS', ARGV[1])`, '0', `${prefix}*`])).trim();
    return Number(keys);
  }));
}

t.test('the full SDK flow for six clients spread over three masters: initialize, tools, GET stream, DELETE', async (t) => {
  const prefix = freshPrefix();
  const [a, b] = await startReplicas(t, 2, store, raw(), prefix);
  if (!a || !b) throw new Error('two replicas');
  for (const id of CLIENTS) {
    const { client, transport, close } = await connectClient(a.mcpUrl, { token: await a.token(id) });
    t.teardown(close);
    t.equal((await client.listTools()).tools.length, 5, `${id}: tools through A`);
    await waitFor(() => upstream.requests.some((r) => r.method === 'GET' && r.headers['x-mcp-client-id'] === id), `${id}'s GET stream`);
    const viaB = await send(b.mcpUrl, { token: await b.token(id), sessionId: transport.sessionId });
    t.equal(viaB.status, 200, `${id}: the same session through B`);
    if (id === 'alice') {
      const resume = await openStream(b.mcpUrl, { token: await b.token(id), sessionId: transport.sessionId ?? '', lastEventId: 'x_1' });
      resume.close();
      t.not(resume.status, 404);
    }
    if (id !== 'frank') await transport.terminateSession();
  }
  const spread = await keysPerMaster(prefix);
  t.ok(spread.filter((n) => n > 0).length >= 2, `keys on several masters: ${spread.join('/')}`);

  const rows = await listSessionRows(a.warden.store, null, Date.now());
  t.same(rows.map((r) => r.clientId), ['frank'], 'listing every client scans all masters; the DELETEs ended the others');
  t.same([...a.logs.events('store.unavailable'), ...b.logs.events('store.unavailable')], [], 'no store error anywhere (CROSSSLOT would be one)');
});

t.test('revocation on the cluster: access token, grant (its sessions end) and client', async (t) => {
  const [a] = await startReplicas(t, 1, store, raw({ tokens: { issueRefreshTokens: true } }));
  if (!a) throw new Error('one replica');
  const carol = await tokenEndpoint(a.url, 'carol', secret('carol'));
  const { sessionId } = await openSession(a.mcpUrl, carol.access_token);
  t.equal(await revokeToken(a.url, 'carol', secret('carol'), carol.access_token), 200);
  t.equal((await send(a.mcpUrl, { token: carol.access_token, sessionId })).status, 401, 'jti revoked');
  const again = await tokenEndpoint(a.url, 'carol', secret('carol'));
  t.equal((await send(a.mcpUrl, { token: again.access_token, sessionId })).status, 200, 'the session survives its token');
  const second = await openSession(a.mcpUrl, again.access_token);
  t.equal(await revokeToken(a.url, 'carol', secret('carol'), again.refresh_token ?? ''), 200);
  const fresh = await tokenEndpoint(a.url, 'carol', secret('carol'));
  t.equal((await send(a.mcpUrl, { token: fresh.access_token, sessionId: second.sessionId })).status, 404, 'the grant revocation ended its session');
  t.equal((await send(a.mcpUrl, { token: fresh.access_token, sessionId })).status, 200, 'the first grant\'s session is not that grant\'s');

  const dave = await a.token('dave');
  const daves = await openSession(a.mcpUrl, dave);
  t.equal(await a.warden.store.revokePrincipal('dave', Date.now(), 3_600_000), 1);
  t.equal((await send(a.mcpUrl, { token: dave, sessionId: daves.sessionId })).status, 401, 'client revoked');
  t.same(a.logs.events('store.unavailable'), []);
});

t.test('the cap with evict-oldest, the creation rate and the failed-attempt block on the cluster', async (t) => {
  const [a] = await startReplicas(t, 1, store, raw({
    sessions: { maxConcurrent: 2, onLimit: 'evict-oldest' },
    rateLimits: { sessionCreate: { points: 3, duration: '1m' }, failedAttempts: { points: 5, duration: '1m', block: '1m' } },
  }));
  if (!a) throw new Error('one replica');
  const erin = await a.token('erin');
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await openSession(a.mcpUrl, erin)).sessionId);
  t.same(await Promise.all(ids.map(async (sessionId) => (await send(a.mcpUrl, { token: erin, sessionId })).status)), [404, 200, 200], 'the oldest was evicted');
  const limited = await send(a.mcpUrl, { token: erin, body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } });
  t.equal(limited.status, 429, 'the fourth session in a minute');
  t.equal(limited.headers.get('ratelimit-policy'), '"session_create";q=3;w=60');

  const bob = await a.token('bob');
  // The evicted id above was erin's own: no failed attempt. Forged ids are.
  const guesses = await Promise.all(Array.from({ length: 5 }, () => send(a.mcpUrl, { token: bob, sessionId: forgedId() })));
  t.same(guesses.map((g) => g.status), [404, 404, 404, 404, 404]);
  t.same((await send(a.mcpUrl, { token: bob })).status, 429, 'blocked once the failed-attempt budget is spent');
  t.equal(a.logs.events('address.blocked').filter((e) => e.reason === 'threshold').length, 1, 'the block start is logged once');
  t.same(a.logs.events('store.unavailable'), []);
});

t.test('session list and revoke across masters: the core functions and the CLI on a cluster config', async (t) => {
  const keyPrefix = freshPrefix();
  const [a] = await startReplicas(t, 1, store, raw(), keyPrefix);
  if (!a) throw new Error('one replica');
  const opened = new Map<string, string>();
  for (const id of CLIENTS) opened.set(id, (await openSession(a.mcpUrl, await a.token(id))).sessionId ?? '');
  const rows = await listSessionRows(a.warden.store, null, Date.now());
  t.same(rows.map((r) => r.clientId).sort(), [...CLIENTS].sort(), 'one session per client, found on whichever master holds it');
  const created = a.logs.events('session.created').map((e) => e.session);
  t.same(rows.map((r) => r.session).sort(), created.sort(), 'listed by the same short hash the logs use');
  t.notOk(JSON.stringify(rows).includes(opened.get('alice') ?? '?'), 'never the ids');
  t.same(rows.map((r) => r.session).sort(), rows.map((r) => r.session).filter((h) => /^[A-Za-z0-9_-]{12}$/.test(h)).sort(), 'each a 12-character hash');
  t.ok(rows.every((r) => r.expiresAt > r.createdAt && r.upstream === 0));

  const config = writeConfig('cluster', { upstreams: [upstream.url], store: { type: 'redis', keyPrefix, ...store }, tokens: { secret: SHARED_SECRET } });
  // In turn: a revoke racing the listing could end carol's session before it is listed.
  const listed = await runCli(['session', 'list', '--json', '--config', config]);
  const revoked = await runCli(['session', 'revoke', `--id=${opened.get('carol') ?? ''}`, '--client', 'carol', '--config', config]);
  t.equal(listed.status, 0, listed.stderr);
  t.same((JSON.parse(listed.stdout) as { clientId: string }[]).map((r) => r.clientId).sort(), [...CLIENTS].sort(), 'the CLI lists every master too');
  t.same([revoked.status, revoked.stdout], [0, 'ended 1 session of client carol\n'], revoked.stderr);
  t.equal((await send(a.mcpUrl, { token: await a.token('carol'), sessionId: opened.get('carol') })).status, 404, 'the proxy sees the CLI\'s revocation');

  const ender = createSessionEnder({ store: a.warden.store, owner: '', endUpstream: null, clock: Date.now, log: createLogger('silent') });
  t.equal(await revokeClientSessions(a.warden.store, ender, 'bob', Date.now()), 1);
  t.equal((await send(a.mcpUrl, { token: await a.token('bob'), sessionId: opened.get('bob') })).status, 404);
  t.same((await listSessionRows(a.warden.store, 'bob', Date.now())), []);
  t.same(a.logs.events('store.unavailable'), []);
});
