/**
 * Proves the test fixtures work on their own (no proxy involved): the demo MCP
 * upstream with a real SDK client, the Redis process helper and the Redis cluster helper.
 */
import t from 'tap';
import { Redis, Cluster } from 'ioredis';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { startDemoServer } from '../demo/mcp-server.js';
import { connectClient } from './fixtures/mcp-client.js';
import { startRedis, startCluster } from './fixtures/redis.js';

function firstText(result: unknown): string {
  const c = (result as CallToolResult).content[0];
  return c && c.type === 'text' ? c.text : '';
}

t.test('demo server (stateful, SSE) with the SDK client', async (t) => {
  const server = await startDemoServer();
  t.teardown(() => server.close());
  const { client, transport, close } = await connectClient(server.url, {
    token: 'demo-token',
    headers: { 'x-mcp-client-id': 'alice', 'x-mcp-scopes': 'mcp:tools' },
  });
  t.teardown(close);

  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  t.equal(server.sessionIds().length, 1, 'one upstream session after initialize');
  t.equal(server.sessionIds()[0], transport.sessionId);
  t.equal(server.requests[0]?.method, 'POST');

  const logs: string[] = [];
  const logWaiters: Array<{ data: string; resolve: () => void }> = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    const data = String(n.params.data);
    logs.push(data);
    for (const w of logWaiters.filter((x) => x.data === data)) w.resolve();
  });
  const logArrived = (data: string) =>
    logs.includes(data) ? Promise.resolve() : new Promise<void>((resolve) => logWaiters.push({ data, resolve }));

  const { tools } = await client.listTools();
  const names = tools.map((x) => x.name);
  t.ok(names.length >= 4);
  for (const n of ['echo', 'add', 'countdown', 'gated', 'whoami']) t.ok(names.includes(n), `tool ${n} listed`);

  t.equal(firstText(await client.callTool({ name: 'echo', arguments: { message: 'hi' } })), 'echo: hi');
  t.equal(firstText(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } })), '42');

  const progress: Progress[] = [];
  const countdown = await client.callTool({ name: 'countdown', arguments: { from: 3, delayMs: 20 } }, undefined, {
    onprogress: (p) => progress.push(p),
  });
  t.equal(firstText(countdown), 'liftoff');
  t.same(progress.map((p) => p.progress), [1, 2, 3], 'progress arrives in order before the result');
  t.same(progress.map((p) => p.total), [3, 3, 3]);
  t.same(logs.slice(-3), ['tick 1', 'tick 2', 'tick 3'], 'log notifications per step');

  const who = JSON.parse(firstText(await client.callTool({ name: 'whoami', arguments: {} })));
  t.same(who, { clientId: 'alice', scopes: 'mcp:tools', authorization: 'Bearer demo-token' });

  // The gate stays closed until 'first' has reached the client, so a buffering hop would deadlock here.
  let settled = false;
  const gated = client.callTool({ name: 'gated', arguments: {} }).finally(() => { settled = true; });
  await logArrived('first');
  t.notOk(settled, 'call still pending when the first notification arrived');
  t.notOk(logs.includes('second'));
  server.gate().release();
  t.equal(firstText(await gated), 'done');
  t.ok(logs.indexOf('first') < logs.indexOf('second'));

  // Every request carried the client's headers through to the upstream.
  t.ok(server.requests.every((r) => r.headers['authorization'] === 'Bearer demo-token'));

  await transport.terminateSession();
  t.same(server.sessionIds(), [], 'DELETE removed the upstream session');
  t.equal(server.requests.at(-1)?.method, 'DELETE');
});

t.test('demo server: raw HTTP error shapes', async (t) => {
  const server = await startDemoServer();
  t.teardown(() => server.close());
  const post = (headers: Record<string, string>, body: string) => fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
  const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

  const unknown = await post({ 'mcp-session-id': 'nope' }, list);
  t.equal(unknown.status, 404);
  t.same(await unknown.json(), { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });

  const missing = await post({}, list);
  t.equal(missing.status, 400);
  t.match(await missing.json(), { error: { code: -32000 } });

  const bad = await post({}, '{not json');
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error: { code: -32700 } });

  const other = await fetch(server.url.replace('/mcp', '/other'));
  t.equal(other.status, 404);
  await other.body?.cancel();
});

t.test('stateless demo server', async (t) => {
  const seen: string[] = [];
  const server = await startDemoServer({ stateless: true, onRequest: (r) => seen.push(r.method) });
  t.teardown(() => server.close());
  const { client, transport, close } = await connectClient(server.url);
  t.teardown(close);
  t.equal(transport.sessionId, undefined, 'no session id in stateless mode');
  const { tools } = await client.listTools();
  t.ok(tools.some((x) => x.name === 'echo'));
  t.equal(firstText(await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3');
  t.same(server.sessionIds(), []);
  t.ok(seen.includes('GET'), 'client tried the GET stream');

  const get = await fetch(server.url, { headers: { accept: 'text/event-stream' } });
  t.equal(get.status, 405);
  t.same(await get.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
  t.equal(seen.length, server.requests.length, 'onRequest saw every request');
});

t.test('jsonResponse demo server', async (t) => {
  const server = await startDemoServer({ jsonResponse: true });
  t.teardown(() => server.close());
  const { client, close } = await connectClient(server.url);
  t.teardown(close);
  t.equal(firstText(await client.callTool({ name: 'echo', arguments: { message: 'json' } })), 'echo: json');
  t.equal(firstText(await client.callTool({ name: 'countdown', arguments: { from: 2 } })), 'liftoff');
  const init = server.requests.find((r) => r.method === 'POST');
  t.ok(init);
});

t.test('startRedis: ping, stop, start on the same port', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  t.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
  const opts = { port: redis.port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null };

  const c1 = new Redis(opts);
  c1.on('error', () => {});
  await c1.connect();
  t.equal(await c1.ping(), 'PONG');
  await c1.set('k', 'v');
  c1.disconnect();

  await redis.stop();
  const c2 = new Redis(opts);
  c2.on('error', () => {});
  await t.rejects(c2.connect(), 'connections fail while stopped');
  c2.disconnect();

  await redis.start();
  const c3 = new Redis(opts);
  c3.on('error', () => {});
  await c3.connect();
  t.equal(await c3.ping(), 'PONG', 'back on the same port');
  t.equal(await c3.get('k'), null, 'fresh, no persistence');
  c3.disconnect();
});

t.test('startCluster: 3 masters, keys across slots', async (t) => {
  const cluster = await startCluster();
  t.teardown(() => cluster.stop());
  t.equal(cluster.nodes.length, 3);
  const client = new Cluster(cluster.nodes, { enableOfflineQueue: true });
  t.teardown(() => { client.disconnect(); });
  // Slots 865, 8623 and 12182: one per master with redis-cli's even split.
  const keys = ['alpha', 'bravo', 'foo'];
  for (const k of keys) await client.set(k, `v-${k}`);
  for (const k of keys) t.equal(await client.get(k), `v-${k}`);
  const masters = new Set(keys.map((k) => client.slots[calcSlot(k)]?.[0]));
  t.equal(masters.size, 3, 'each key lives on a different master');
});

// CRC16/XMODEM mod 16384, as Redis Cluster uses (no hash tags in these keys).
function calcSlot(key: string): number {
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
