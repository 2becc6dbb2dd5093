/**
 * store.clientCache through the proxy (issue 21): two replicas on one Redis, each serving a warm
 * caller from its cache; a grant revoked through one replica is refused (401) by the other within
 * the stated bound, and its session ended everywhere (404).
 */
import t from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { startRedis } from '../fixtures/redis.js';
import { startReplicas } from '../fixtures/replicas.js';
import { openSession, revokeToken, send, tokenEndpoint } from '../fixtures/session-http.js';
import { TEST_CLIENTS } from '../fixtures/warden.js';

const redis = await startRedis();
t.teardown(() => redis.stop());
const PROPAGATION_MS = 50;

t.test(`a grant revoked through one replica is refused by the other within ${PROPAGATION_MS} ms`, async (t) => {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const [a, b] = await startReplicas(t, 2, { url: redis.url, clientCache: true }, { upstreams: [upstream.url], tokens: { issueRefreshTokens: true } });
  if (!a || !b) throw new Error('two replicas');
  const grant = await tokenEndpoint(a.url, 'alice', TEST_CLIENTS.alice);
  const { sessionId } = await openSession(b.mcpUrl, grant.access_token);
  for (let i = 0; i < 5; i++) t.equal((await send(b.mcpUrl, { token: grant.access_token, sessionId })).status, 200, 'B serves the session (from its cache after the first)');
  t.equal(b.warden.store.clientCache()?.healthy, true, 'B\'s invalidation channel is up');

  t.equal(await revokeToken(a.url, 'alice', TEST_CLIENTS.alice, grant.refresh_token ?? ''), 200, 'the grant is revoked through A');
  const start = performance.now();
  let status = 200;
  while (status === 200 && performance.now() - start < PROPAGATION_MS) status = (await send(b.mcpUrl, { token: grant.access_token, sessionId })).status;
  const took = performance.now() - start;
  t.equal(status, 401, `B refuses the grant's token (after ${took.toFixed(1)} ms)`);
  t.ok(took <= PROPAGATION_MS, `within ${PROPAGATION_MS} ms`);
  const other = await tokenEndpoint(b.url, 'alice', TEST_CLIENTS.alice);
  t.equal((await send(b.mcpUrl, { token: other.access_token, sessionId })).status, 404, 'and the grant\'s session ended everywhere');
});
