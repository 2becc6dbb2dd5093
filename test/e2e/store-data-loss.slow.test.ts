/**
 * A Redis without persistence restarts and comes back empty (issue: revoked tokens came back to
 * life). Two replicas on a private redis-server: a token is revoked, Redis is killed and started
 * again with nothing, and then every token issued before (the revoked one included) is refused on
 * both replicas, an event and a metric say what happened, sessions are gone, new tokens work.
 */
import t from 'tap';
import type { AddressInfo } from 'node:net';
import { startDemoServer } from '../../demo/mcp-server.js';
import { initialize, rpc, sleep } from '../fixtures/probe.js';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startRedis } from '../fixtures/redis.js';
import { PUBLIC_URL, startReplicas } from '../fixtures/replicas.js';
import { startWarden } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

t.test('after the store lost its data, nothing issued before works again: revoked or not', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const [a, b] = await startReplicas(t, 2, { url: redis.url }, { upstreams: [upstream.url], tokens: { clockSkew: '0s' } }) as [TestWarden, TestWarden];

  const revoked = await a.token('alice');
  const kept = await a.token('bob');
  const init = await rpc(a.mcpUrl, { token: kept, body: initialize(1) });
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  t.equal(init.status, 200);
  // Revoke alice's token the way `token revoke --client alice` does: a cutoff in the store.
  await a.warden.store.revokePrincipal('alice', Date.now() + 1_000, 3_600_000);
  t.equal((await rpc(b.mcpUrl, { token: revoked })).status, 401, 'revoked, on both replicas');
  t.equal((await rpc(b.mcpUrl, { token: kept, sessionId, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } })).status, 200, 'bob works across replicas');

  await sleep(1_100); // the new store life must begin in a later second than the tokens' iat
  await redis.stop();
  await redis.start(); // empty: no persistence
  // The first request on the new connection waits for the marker check.
  let status = 0;
  for (let i = 0; i < 50 && status !== 401; i++) {
    status = (await rpc(a.mcpUrl, { token: revoked })).status;
    if (status !== 401) await sleep(100);
  }
  t.equal(status, 401, 'the revoked token stays refused although the store forgot the revocation');
  t.equal((await rpc(b.mcpUrl, { token: revoked })).status, 401, 'on the other replica too');
  t.equal((await rpc(a.mcpUrl, { token: kept, body: initialize(3) })).status, 401, 'and every token from before: clients fetch new ones');
  t.match(a.logs.events('store.data_lost'), [{ level: 'error', since: /^\d{4}-/ }], 'an event says what happened');
  t.ok(b.logs.events('store.data_lost').length === 1, 'each replica notices once');
  t.match(await a.warden.metrics.registry.metrics(), /mcp_warden_store_data_lost_total 1/);

  const fresh = await b.token('bob');
  t.equal((await rpc(a.mcpUrl, { token: fresh, sessionId, body: { jsonrpc: '2.0', id: 4, method: 'tools/list' } })).status, 404, 'the old session is gone');
  t.equal((await rpc(a.mcpUrl, { token: fresh, body: initialize(5) })).status, 200, 'a token issued now works');
});

t.test('a plain restart of a store that kept its data changes nothing', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  // One public URL, as behind a load balancer: a token of the first proxy is meant for the second.
  const raw = { publicUrl: PUBLIC_URL, upstreams: [upstream.url], store: { type: 'redis', url: redis.url } };
  const first = await startWarden(raw);
  const token = await first.token('alice');
  await first.close();
  const second = await startWarden(raw);
  t.teardown(() => second.close());
  const listen = `http://127.0.0.1:${(second.warden.server.address() as AddressInfo).port}/mcp`;
  t.equal((await rpc(listen, { token, body: initialize(1) })).status, 200, 'a proxy restart on the same store keeps tokens valid');
  t.equal(second.logs.events('store.data_lost').length, 0);
});

t.test('readyz tells whether the store keeps its data; the compose file\'s Redis does, and a restart of it loses nothing', async (t) => {
  const compose = parse(readFileSync(new URL('../../deploy/docker-compose.yml', import.meta.url), 'utf8')) as { services: { redis: { command: string[] } } };
  const [binary, ...args] = compose.services.redis.command;
  t.equal(binary, 'redis-server');
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());

  const volatile = await startRedis();
  t.teardown(() => volatile.stop());
  const plain = await startWarden({ upstreams: [upstream.url], store: { type: 'redis', url: volatile.url } });
  t.teardown(() => plain.close());
  t.match(await (await fetch(`${plain.url}/readyz`)).json(), { ready: true, persistence: 'none', warning: /a restart loses revocations/ }, 'a Redis without persistence is reported (still ready)');

  const durable = await startRedis({ args });
  t.teardown(() => durable.stop());
  const proxy = await startWarden({ upstreams: [upstream.url], store: { type: 'redis', url: durable.url } });
  t.teardown(() => proxy.close());
  const ready = (await (await fetch(`${proxy.url}/readyz`)).json()) as Record<string, unknown>;
  t.equal(ready.persistence, 'aof', 'the compose file\'s Redis command keeps an append-only file');
  t.equal(ready.warning, undefined);

  const revoked = await proxy.token('alice');
  const kept = await proxy.token('bob');
  await proxy.warden.store.revokePrincipal('alice', Date.now() + 1_000, 3_600_000);
  await sleep(1_100);
  await durable.stop();
  await durable.start();
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await rpc(proxy.mcpUrl, { token: kept, body: initialize(1) })).status;
    if (status !== 200) await sleep(100);
  }
  t.equal(status, 200, 'after the restart, tokens from before still work');
  t.equal((await rpc(proxy.mcpUrl, { token: revoked })).status, 401, 'and the revocation is still there');
  t.equal(proxy.logs.events('store.data_lost').length, 0, 'nothing was lost');
});
