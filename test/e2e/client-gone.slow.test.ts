/**
 * A client that hangs up while the proxy waits on the store. A private Redis is paused
 * (`CLIENT PAUSE`) so the hang-up lands between the request's arrival and the store's answer.
 * Nothing may be forwarded for it, and nothing may stay open: before the fix such a request
 * reached the upstream with a body that never came and was held until the upstream timeout
 * (a leak per aborted request: its context, an upstream connection, a shutdown that waits).
 */
import http from 'node:http';
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { redisCommand, startRedis } from '../fixtures/redis.js';
import { startWarden } from '../fixtures/warden.js';

const ACCEPT = 'application/json, text/event-stream';
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
const CALL = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
const PAUSE_MS = 600;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sends a request with a marker header and destroys the connection after `abortAfterMs`. */
function abandon(url: string, method: string, headers: Record<string, string>, body: string | null, abortAfterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers: { ...headers, ...(body === null ? {} : { 'content-length': String(Buffer.byteLength(body)) }) } });
    req.on('error', () => {});
    req.on('close', () => resolve());
    req.end(body ?? undefined);
    setTimeout(() => req.destroy(), abortAfterMs);
  });
}

async function setup(t: Test) {
  const redis = await startRedis();
  const upstream = await startDemoServer();
  const proxy = await startWarden({
    upstreams: [upstream.url],
    store: { type: 'redis', url: redis.url, keyPrefix: 'mcpw:gone:' },
    sessions: { maxStreams: 1 },
    shutdownGrace: '5s',
  });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await proxy.close();
    await upstream.close();
    await redis.stop();
  });
  const token = await proxy.token();
  const auth = { authorization: `Bearer ${token}`, accept: ACCEPT };
  const init = await fetch(proxy.mcpUrl, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: INIT });
  await init.arrayBuffer();
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  t.equal(init.status, 200, 'initialize works');
  const session = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
  /** Pauses the store, runs `hangUp` (which leaves while it is paused), waits the pause out. */
  const whileStorePaused = async (hangUp: () => Promise<void>) => {
    await redisCommand(redis.port, ['CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL']);
    await hangUp();
    await sleep(PAUSE_MS + 300);
  };
  /** Closes the proxy and reports how long it took and whether the shutdown had to cut requests. */
  const shutdown = async () => {
    const start = Date.now();
    await proxy.close();
    closed = true;
    return { ms: Date.now() - start, cut: proxy.logs.lines.filter((l) => typeof l.cut === 'number').map((l) => l.cut) };
  };
  return { proxy, upstream, session, whileStorePaused, shutdown };
}

function marked(upstream: { requests: { headers: Record<string, unknown> }[] }, marker: string): number {
  return upstream.requests.filter((r) => r.headers['x-marker'] === marker).length;
}

t.test('a POST in a session whose client left during the store round trip is not forwarded, and nothing stays open', async (t) => {
  const { proxy, upstream, session, whileStorePaused, shutdown } = await setup(t);
  await whileStorePaused(() => abandon(proxy.mcpUrl, 'POST', { ...session, 'content-type': 'application/json', 'x-marker': 'left' }, CALL, 100));
  t.equal(marked(upstream, 'left'), 0, 'the upstream never saw the abandoned request');
  t.ok(proxy.logs.lines.some((l) => l.msg === 'request' && l.status === 499), 'the access log records it as 499 (client closed request)');
  const after = await fetch(proxy.mcpUrl, { method: 'POST', headers: { ...session, 'content-type': 'application/json', 'x-marker': 'stayed' }, body: CALL });
  t.equal(after.status, 200, 'the next request in the session is served');
  await after.arrayBuffer();
  t.equal(marked(upstream, 'stayed'), 1, 'and forwarded');
  const { ms, cut } = await shutdown();
  t.same(cut, [], 'shutdown found no request still running');
  t.ok(ms < 2_000, `shutdown took ${ms} ms (a hanging request would hold it for the 5 s grace)`);
});

t.test('an initialize whose client left before its body was read does not hang', async (t) => {
  const { proxy, upstream, session, whileStorePaused, shutdown } = await setup(t);
  const { 'mcp-session-id': _, 'mcp-protocol-version': __, ...auth } = session;
  await whileStorePaused(() => abandon(proxy.mcpUrl, 'POST', { ...auth, 'content-type': 'application/json', 'x-marker': 'left' }, INIT, 100));
  t.equal(marked(upstream, 'left'), 0, 'the upstream never saw the abandoned initialize');
  const { ms, cut } = await shutdown();
  t.same(cut, [], 'shutdown found no request still running');
  t.ok(ms < 2_000, `shutdown took ${ms} ms`);
});

t.test('a GET stream whose client left during the store round trip does not keep its stream slot', async (t) => {
  const { proxy, upstream, session, whileStorePaused } = await setup(t);
  await whileStorePaused(() => abandon(proxy.mcpUrl, 'GET', { ...session, 'x-marker': 'left' }, null, 100));
  t.equal(marked(upstream, 'left'), 0, 'the upstream never saw the abandoned GET');
  // sessions.maxStreams is 1: a slot kept by the abandoned GET would refuse this one with 429.
  const controller = new AbortController();
  const stream = await fetch(proxy.mcpUrl, { headers: session, signal: controller.signal });
  t.equal(stream.status, 200, 'a new GET stream is admitted');
  t.match(stream.headers.get('content-type'), /^text\/event-stream/);
  controller.abort();
  await stream.body?.cancel().catch(() => {});
});

t.test('an initialize whose client left while the upstream answered: its upstream session is still ended', async (t) => {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  // A slow upstream: the demo server behind a hop that holds each answer for 400 ms, and keeps
  // going when the proxy's request goes away (as a busy server does).
  const slow = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    await sleep(400);
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version']) if (typeof req.headers[name] === 'string') headers[name] = req.headers[name];
    const answer = await fetch(upstream.url, { method: req.method ?? 'POST', headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
    const out: Record<string, string> = {};
    answer.headers.forEach((v, k) => { if (k !== 'content-length' && k !== 'transfer-encoding') out[k] = v; });
    res.writeHead(answer.status, out);
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    slow.closeAllConnections();
    slow.close(() => resolve());
  }));
  const proxy = await startWarden({ upstreams: [`http://127.0.0.1:${(slow.address() as { port: number }).port}/mcp`] });
  t.teardown(() => proxy.close());
  const token = await proxy.token('alice');

  await abandon(proxy.mcpUrl, 'POST', { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT }, INIT, 100);
  for (let i = 0; i < 30 && !upstream.requests.some((r) => r.method === 'DELETE'); i++) await sleep(100);
  t.ok(upstream.requests.some((r) => r.method === 'POST'), 'the upstream made a session for the initialize');
  t.ok(upstream.requests.some((r) => r.method === 'DELETE'), 'and mcp-warden ended it although its client had left');
  t.same(upstream.sessionIds(), [], 'no upstream session is left behind');
  t.same(await proxy.warden.store.listSessions(null, Date.now()), [], 'and no proxy session was made for nobody');
});
