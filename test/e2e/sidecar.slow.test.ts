/**
 * The sidecar layout (DESIGN §15): each replica in front of its own upstream, all on one Redis. A
 * session lives on the upstream of the replica that created it; a request that a round-robin
 * Service sends to another replica is relayed to the owner over the authenticated internal hop,
 * or answered 404 -32001 once the owner is gone, so the client re-initializes.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { RELAY_HEADER } from '../../src/session/relay.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { freePort, startRedis } from '../fixtures/redis.js';
import { freshPrefix, PUBLIC_URL, SHARED_SECRET } from '../fixtures/replicas.js';
import { openStream, send, PROXY_ID } from '../fixtures/session-http.js';
import { startWarden } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const redis = await startRedis();
t.teardown(() => redis.stop());

interface Pod {
  readonly proxy: TestWarden;
  readonly upstream: DemoServer;
}

/** Two pods, each an mcp-warden in front of its own demo upstream, sharing one Redis. */
async function pods(t: Test, raw: Record<string, unknown> = {}): Promise<[Pod, Pod]> {
  const keyPrefix = freshPrefix();
  const made: Pod[] = [];
  for (const name of ['pod-a', 'pod-b']) {
    const upstream = await startDemoServer();
    const port = await freePort();
    const proxy = await startWarden({
      publicUrl: PUBLIC_URL,
      ...raw,
      listen: { host: '127.0.0.1', port },
      upstreams: [upstream.url],
      store: { type: 'redis', url: redis.url, keyPrefix },
      tokens: { secret: SHARED_SECRET },
      replica: { id: name, advertiseUrl: `http://127.0.0.1:${port}` },
    });
    const url = `http://127.0.0.1:${port}`;
    made.push({ proxy: { ...proxy, url, mcpUrl: `${url}/mcp` }, upstream });
    t.teardown(async () => {
      await proxy.close();
      await upstream.close();
    });
  }
  return made as [Pod, Pod];
}

t.test('a session created on one pod is served by the other through its owner, POST, GET stream and DELETE', async (t) => {
  const [a, b] = await pods(t);
  const { client, transport, close } = await connectClient(a.proxy.mcpUrl, { token: await a.proxy.token() });
  t.teardown(close);
  const sessionId = transport.sessionId ?? '';
  t.match(sessionId, PROXY_ID);
  t.equal(a.upstream.sessionIds().length, 1, 'the session lives on pod A\'s upstream');

  const before = b.upstream.requests.length;
  const viaB = await send(b.proxy.mcpUrl, { token: await b.proxy.token(), sessionId, body: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'add', arguments: { a: 2, b: 3 } } } });
  t.equal(viaB.status, 200, 'pod B relays the call to pod A');
  t.equal(viaB.sessionId, sessionId, 'the client keeps its proxy id');
  t.match(viaB.messages[0], { id: 7, result: { content: [{ text: '5' }] } });
  t.equal(b.upstream.requests.length, before, 'pod B\'s own upstream never sees the session');
  const seen = a.upstream.requests.at(-1);
  t.equal(seen?.headers['mcp-session-id'], a.upstream.sessionIds()[0], 'pod A forwards with the upstream\'s own id');
  t.equal(seen?.headers[RELAY_HEADER], undefined, 'the relay header stops at the owner');
  t.equal(seen?.headers.authorization, undefined, 'and so does the client\'s token');

  const gets = a.upstream.requests.filter((r) => r.method === 'GET').length;
  const stream = await openStream(b.proxy.mcpUrl, { token: await b.proxy.token(), sessionId, lastEventId: 'resume-1' });
  stream.close();
  t.not(stream.status, 404, 'a GET stream (resumption) through pod B reaches the session');
  t.equal(a.upstream.requests.filter((r) => r.method === 'GET').length, gets + 1, 'on pod A\'s upstream');
  t.equal(a.upstream.requests.at(-1)?.headers['last-event-id'], 'resume-1');

  t.equal((await send(b.proxy.mcpUrl, { token: await b.proxy.token(), sessionId, method: 'DELETE' })).status, 200, 'DELETE through pod B');
  t.equal(a.upstream.sessionIds().length, 0, 'ends the session on pod A\'s upstream');
  t.equal((await send(a.proxy.mcpUrl, { token: await a.proxy.token(), sessionId })).status, 404, 'and the proxy session is gone on both');
});

t.test('a relayed request takes one point of the client\'s limit, not two', async (t) => {
  const [a, b] = await pods(t, { rateLimits: { client: { points: 50, duration: '1m' } } });
  const { transport, close } = await connectClient(a.proxy.mcpUrl, { token: await a.proxy.token() });
  t.teardown(close);
  const sessionId = transport.sessionId ?? '';
  const token = await a.proxy.token();
  const remaining = async (url: string): Promise<number> => Number(/r=(\d+)/.exec((await send(url, { token, sessionId })).headers.get('ratelimit') ?? '')?.[1]);
  const first = await remaining(b.proxy.mcpUrl);
  const second = await remaining(b.proxy.mcpUrl);
  const third = await remaining(a.proxy.mcpUrl);
  t.equal(first - second, 1, 'one point per relayed request');
  t.equal(second - third, 1, 'and the owner took none for it');
});

t.test('when the owning pod is gone, its sessions get 404 -32001 everywhere and the client re-initializes', async (t) => {
  const [a, b] = await pods(t);
  const token = await a.proxy.token();
  const { transport, close } = await connectClient(a.proxy.mcpUrl, { token });
  t.teardown(close);
  const sessionId = transport.sessionId ?? '';
  await a.proxy.close();

  const reply = await send(b.proxy.mcpUrl, { token, sessionId });
  t.equal(reply.status, 404);
  t.equal(reply.rpcCode, -32001, 'MCP\'s "session not found": the client starts a new session');
  t.match(b.proxy.logs.events('session.ended'), [{ reason: 'owner_gone', clientId: 'alice' }]);
  t.equal((await send(b.proxy.mcpUrl, { token, sessionId })).status, 404, 'the record is gone, not retried');

  const again = await connectClient(b.proxy.mcpUrl, { token });
  t.teardown(again.close);
  t.equal((await again.client.listTools()).tools.length, 5, 'a new session on pod B works');
  t.equal(b.upstream.sessionIds().length, 1);
});

t.test('a relay header that does not verify is refused and counted, never trusted', async (t) => {
  const [a, b] = await pods(t);
  const token = await a.proxy.token();
  const { transport, close } = await connectClient(a.proxy.mcpUrl, { token });
  t.teardown(close);
  const sessionId = transport.sessionId ?? '';
  const forged = `v1;pod-b;${Date.now()};${Buffer.from('203.0.113.9').toString('base64url')};${'A'.repeat(43)}`;
  const reply = await send(a.proxy.mcpUrl, { token, sessionId, headers: { [RELAY_HEADER]: forged } });
  t.equal(reply.status, 403);
  t.match(a.proxy.logs.events('relay.refused'), [{ code: 'RELAY_REFUSED', address: '127.0.0.1' }], 'logged with the socket address, not the claimed one');
  t.match(a.proxy.logs.events('auth.failed'), [], 'refused before the token is even looked at');
  t.equal((await send(b.proxy.mcpUrl, { token, sessionId, headers: { [RELAY_HEADER]: 'v1;x' } })).status, 403, 'malformed too');
});

t.test('gateway layout: no relay, and any relay header is refused', async (t) => {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(() => proxy.close());
  const reply = await send(proxy.mcpUrl, { token: await proxy.token(), sessionId: 'x', headers: { [RELAY_HEADER]: 'v1;pod-a;1;AA;AA' } });
  t.equal(reply.status, 403);
  t.match(proxy.logs.events('relay.refused'), [{ reason: 'forged' }]);
});
