/**
 * Upstream sessions end when their proxy session does, however it ended (issue: idle expiry,
 * lifetime end and revocation left them alive upstream, so an upstream kept every session a
 * client ever opened). A real SDK upstream counts its open sessions.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { initialize, rpc, sleep } from '../fixtures/probe.js';
import { startRedis } from '../fixtures/redis.js';
import { startReplicas } from '../fixtures/replicas.js';
import { startWarden } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

async function setup(t: Test, raw: Record<string, unknown> = {}): Promise<{ proxy: TestWarden; upstream: DemoServer; open: (n: number) => Promise<string[]> }> {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const proxy = await startWarden({ upstreams: [upstream.url], ...raw });
  t.teardown(() => proxy.close());
  const open = async (n: number): Promise<string[]> => {
    const token = await proxy.token('alice');
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await rpc(proxy.mcpUrl, { token, body: initialize(i + 1) })).headers.get('mcp-session-id') ?? '');
    return ids;
  };
  return { proxy, upstream, open };
}

const deletes = (upstream: DemoServer): number => upstream.requests.filter((r) => r.method === 'DELETE').length;

/** The sweeper's DELETEs are fire-and-forget: wait until the upstream has them all. */
async function settled(upstream: DemoServer, count: number): Promise<void> {
  for (let i = 0; i < 50 && deletes(upstream) < count; i++) await sleep(50);
  await sleep(50);
}

t.test('idle expiry and the end of a lifetime end the upstream session too', async (t) => {
  const { proxy, upstream, open } = await setup(t, { sessions: { idleTimeout: '1m', maxLifetime: '10m', maxConcurrent: 10 } });
  await open(3);
  t.equal(upstream.sessionIds().length, 3);
  t.equal(await proxy.warden.sweepUpstreams(), 0, 'live sessions are left alone');
  proxy.advance(61_000);
  t.equal(await proxy.warden.sweepUpstreams(), 3, 'idle ones are ended upstream');
  await settled(upstream, 3);
  t.equal(deletes(upstream), 3);
  t.same(upstream.sessionIds(), [], 'the upstream holds none of them');
  t.equal(await proxy.warden.sweepUpstreams(), 0, 'and each only once');

  // Kept busy, a session still ends at maxLifetime.
  const token = await proxy.token('alice');
  const [busy] = await open(1);
  for (let minute = 0; minute < 11; minute++) {
    proxy.advance(59_000);
    await rpc(proxy.mcpUrl, { token, sessionId: busy, body: { jsonrpc: '2.0', id: 100 + minute, method: 'tools/list' } });
  }
  t.equal(await proxy.warden.sweepUpstreams(), 1, 'the lifetime ended it, and its upstream session');
  await settled(upstream, 4);
  t.same(upstream.sessionIds(), []);
});

t.test('revocation ends the upstream sessions; the client\'s own DELETE and evictions are not sent twice', async (t) => {
  const { proxy, upstream, open } = await setup(t, { sessions: { maxConcurrent: 2, onLimit: 'evict-oldest' } });
  const [first] = await open(2);
  await open(1); // evicts the oldest, DELETEd upstream at once
  await settled(upstream, 1);
  t.equal(deletes(upstream), 1, 'the evicted session was ended upstream at once');
  t.equal(upstream.sessionIds().length, 2);
  const token = await proxy.token('alice');
  const [mine] = await open(1); // evicts another
  t.equal((await rpc(proxy.mcpUrl, { token, sessionId: mine, method: 'DELETE' })).status, 200, 'the client ends one itself');
  await settled(upstream, 3);
  const before = deletes(upstream);
  t.equal(await proxy.warden.sweepUpstreams(), 0, 'nothing left to sweep: each was ended once');
  t.equal(deletes(upstream), before);

  await proxy.warden.store.revokePrincipal('alice', Date.now() + 1_000, 3_600_000);
  t.equal(await proxy.warden.sweepUpstreams(), 1, 'the revoked client\'s remaining session is ended upstream');
  await settled(upstream, before + 1);
  t.same(upstream.sessionIds(), [], 'nothing is left upstream');
  t.ok(first, 'sessions were made');
});

t.test('replicas on one Redis sweep together and end each upstream session once', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const [a, b] = await startReplicas(t, 2, { url: redis.url }, { upstreams: [upstream.url] }) as [TestWarden, TestWarden];
  const token = await a.token('alice');
  for (let i = 0; i < 4; i++) await rpc((i % 2 ? a : b).mcpUrl, { token, body: initialize(i + 1) });
  t.equal(upstream.sessionIds().length, 4);
  await a.warden.store.revokePrincipal('alice', Date.now() + 1_000, 3_600_000);
  const [byA, byB] = await Promise.all([a.warden.sweepUpstreams(), b.warden.sweepUpstreams()]);
  t.equal(byA + byB, 4, 'between them, all four were ended');
  await settled(upstream, 4);
  t.equal(deletes(upstream), 4, 'each exactly once');
  t.same(upstream.sessionIds(), []);
});

t.test('ending an upstream session goes through the upstream pool with upstreamHeaders, and gives up after upstreamTimeout', async (t) => {
  // An upstream that mints sessions and never answers a DELETE.
  const deletes: { headers: import('node:http').IncomingHttpHeaders; closedAfterMs: number | null }[] = [];
  let minted = 0;
  const server = createServer((req, res) => {
    if (req.method === 'DELETE') {
      const entry = { headers: req.headers, closedAfterMs: null as number | null };
      deletes.push(entry);
      const started = Date.now();
      res.once('close', () => (entry.closedAfterMs = Date.now() - started));
      return;
    }
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `up-${++minted}` }).end('{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"u","version":"1"}}}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  const proxy = await startWarden({
    upstreams: [`http://127.0.0.1:${port}/mcp`], upstreamHeaders: { 'X-Upstream-Key': 'k-123' },
    sessions: { maxConcurrent: 1, onLimit: 'evict-oldest' }, security: { upstreamTimeout: 300 },
  });
  t.teardown(() => proxy.close());
  const token = await proxy.token('alice');
  for (const id of [1, 2]) t.equal((await rpc(proxy.mcpUrl, { token, body: initialize(id) })).status, 200);
  // The second initialize evicted the first session: its upstream session is ended.
  for (let i = 0; i < 40 && (deletes.length === 0 || deletes[0]?.closedAfterMs === null); i++) await sleep(50);
  t.equal(deletes.length, 1, 'one DELETE for the evicted session');
  t.equal(deletes[0]?.headers['mcp-session-id'], 'up-1', 'naming the upstream\'s own id');
  t.equal(deletes[0]?.headers['x-upstream-key'], 'k-123', 'with the configured upstream headers');
  const after = deletes[0]?.closedAfterMs ?? Infinity;
  t.ok(after >= 250 && after < 2_000, `given up after upstreamTimeout (closed after ${after} ms), not left open`);
});
