/**
 * Graceful shutdown of the real CLI process: SIGTERM/SIGINT while POSTs are in flight and a GET
 * stream is open. In-flight requests finish with their full result, streams end cleanly, new
 * connections are refused, and the process exits 0 within shutdownGrace; past the grace the
 * remaining requests are cut and the exit is still 0.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { spawnWarden } from '../fixtures/cli.js';
import type { CliWarden } from '../fixtures/cli.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { startWarden } from '../fixtures/warden.js';

const ACCEPT = 'application/json, text/event-stream';
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Outcome {
  readonly status: number;
  readonly body: string;
  /** How the body ended: 'end' (complete) or 'cut' (connection lost mid-body). */
  readonly ended: 'end' | 'cut';
  /** ms after the signal. */
  readonly at: number;
}

async function session(proxy: CliWarden, token: string): Promise<Record<string, string>> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT };
  const res = await fetch(proxy.mcpUrl, { method: 'POST', headers, body: JSON.stringify(INIT) });
  await res.arrayBuffer();
  const sid = res.headers.get('mcp-session-id');
  if (res.status !== 200 || !sid) throw new Error(`initialize answered ${res.status}`);
  return { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
}

/** A request on its own connection (agent: false), read to its end or its cut. */
function request(url: string, method: string, headers: Record<string, string>, signalAt: () => number, body?: unknown): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text, ended: 'end', at: Date.now() - signalAt() }));
      res.once('error', () => resolve({ status: res.statusCode ?? 0, body: text, ended: 'cut', at: Date.now() - signalAt() }));
    });
    req.once('error', () => resolve({ status: 0, body: '', ended: 'cut', at: Date.now() - signalAt() }));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const countdown = (id: number, from: number, delayMs: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'countdown', arguments: { from, delayMs } } });

/** Resolves once the upstream has received `n` tools/call requests (they are in flight). */
async function inFlight(upstream: DemoServer, n: number): Promise<void> {
  const calls = () => upstream.requests.filter((r) => r.method === 'POST' && r.headers['x-call'] !== undefined).length;
  for (let i = 0; i < 200 && calls() < n; i++) await sleep(10);
  if (calls() < n) throw new Error('calls did not reach the upstream');
}

/** Whether a fresh TCP connection to the proxy is refused. */
function refused(url: string): Promise<string> {
  return new Promise((resolve) => {
    http.get(`${url}/healthz`, { agent: false }, (res) => {
      res.resume();
      resolve(`answered ${res.statusCode}`);
    }).once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: in-flight POSTs finish whole, the GET stream ends cleanly, new connections are refused, exit 0`, async (t) => {
    const upstream = await startDemoServer();
    const proxy = await spawnWarden({ upstreams: [upstream.url], shutdownGrace: '4s' });
    t.teardown(async () => {
      await proxy.kill();
      await upstream.close();
    });
    const token = await proxy.token();
    const headers = await session(proxy, token);
    let signalled = 0;
    const since = () => (signalled === 0 ? -Infinity : signalled);

    const stream = request(proxy.mcpUrl, 'GET', { ...headers, accept: 'text/event-stream' }, since);
    // Three raw POSTs of ~1 s each (SSE responses with progress), and one through the SDK client.
    const posts = [1, 2, 3].map((i) => request(proxy.mcpUrl, 'POST', { ...headers, 'x-call': String(i) }, since, countdown(10 + i, 5, 250)));
    const sdk = await connectClient(proxy.mcpUrl, { token, headers: { 'x-call': 'sdk' } });
    sdk.client.onerror = () => {}; // its GET stream ends at shutdown; a failed reconnect is expected
    const viaSdk = sdk.client.callTool({ name: 'countdown', arguments: { from: 5, delayMs: 250 } }).then((r) => ({ ok: r.content, at: Date.now() - signalled }), (err: Error) => ({ ok: err.message, at: Date.now() - signalled }));
    t.teardown(sdk.close);
    await inFlight(upstream, 4);
    await sleep(100);

    signalled = Date.now();
    proxy.child.kill(signal);
    await sleep(150);
    t.equal(await refused(proxy.url), 'ECONNREFUSED', 'a new connection is refused once shutdown began');

    const ended = await stream;
    t.equal(ended.status, 200);
    t.equal(ended.ended, 'end', 'the GET stream ended cleanly (not cut)');

    const results = await Promise.all(posts);
    for (const [i, r] of results.entries()) {
      t.match(r, { status: 200, ended: 'end' }, `POST ${i + 1} completed`);
      t.match(r.body, /"text":"liftoff"/, `POST ${i + 1} got its full result`);
      t.equal(r.body.match(/notifications\/message/g)?.length, 5, `POST ${i + 1} got all 5 notifications before it`);
    }
    t.ok(results.every((r) => r.at > 200), 'they finished after the signal (they really were in flight)');
    t.ok(ended.at < Math.min(...results.map((r) => r.at)), `the stream ended at once (${ended.at} ms after the signal), before any POST finished`);
    t.same((await viaSdk).ok, [{ type: 'text', text: 'liftoff' }], 'the SDK client\'s call completed too');

    const exit = await proxy.exited;
    const exitedAt = Date.now() - signalled;
    t.same(exit, { code: 0, signal: null }, 'exit code 0');
    t.ok(exitedAt < 4_000 + 1_500, `exited within shutdownGrace + margin (${exitedAt} ms)`);
    t.ok(exitedAt >= Math.max(...results.map((r) => r.at)) - 50, 'and not before the in-flight requests were done');
    t.match(proxy.lines().find((l) => l.msg === 'shutting down'), { signal });
    t.notOk(proxy.lines().some((l) => l.msg === 'requests still running at the end of the shutdown grace were cut'), 'nothing was cut');
  });
}

t.test('a request longer than shutdownGrace is cut at the deadline; the process still exits 0', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await spawnWarden({ upstreams: [upstream.url], shutdownGrace: '600ms' });
  t.teardown(async () => {
    await proxy.kill();
    await upstream.close();
  });
  const headers = await session(proxy, await proxy.token());
  let signalled = 0;
  const since = () => signalled;
  const quick = request(proxy.mcpUrl, 'POST', { ...headers, 'x-call': 'quick' }, since, countdown(20, 2, 200));
  const long = request(proxy.mcpUrl, 'POST', { ...headers, 'x-call': 'long' }, since, countdown(21, 12, 400));
  await inFlight(upstream, 2);
  await sleep(50);
  signalled = Date.now();
  proxy.child.kill('SIGTERM');

  const done = await quick;
  t.match(done, { status: 200, ended: 'end' }, 'a request that fits in the grace completes');
  t.match(done.body, /liftoff/);
  const cut = await long;
  t.equal(cut.status, 200, 'the long one had started streaming');
  t.equal(cut.ended, 'cut', 'and was cut, not ended as if complete');
  t.notMatch(cut.body, /liftoff/, 'without its result');
  t.ok(cut.at >= 550 && cut.at < 2_500, `at the deadline (${cut.at} ms after the signal, grace 600 ms)`);
  const exit = await proxy.exited;
  t.same(exit, { code: 0, signal: null }, 'exit code 0 after cutting');
  t.ok(Date.now() - signalled < 600 + 1_500, 'within the grace + margin');
  t.match(proxy.lines().find((l) => l.msg === 'requests still running at the end of the shutdown grace were cut'), { cut: 1 });
});

t.test('in-process close(): the listener, the GET streams and the keep-alive connections to the upstream are all gone', async (t) => {
  const upstream = http.createServer((req, res) => {
    req.resume();
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      return;
    }
    req.once('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}'));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    upstream.closeAllConnections();
    upstream.close();
  });
  const connections = () => new Promise<number>((resolve) => upstream.getConnections((_e, n) => resolve(n)));
  const proxy = await startWarden({ upstreams: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`] });
  const token = await proxy.token();
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT };
  await Promise.all([1, 2, 3, 4].map(async (id) => (await fetch(proxy.mcpUrl, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }) })).text()));
  const stream = await fetch(proxy.mcpUrl, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  t.equal(stream.status, 200);
  const before = await connections();
  t.ok(before >= 2, `the proxy holds upstream connections: idle keep-alive ones and the stream's (${before})`);

  await proxy.close();
  t.equal(await stream.text(), '', 'the GET stream ended cleanly');
  let left = await connections();
  for (let i = 0; i < 50 && left > 0; i++) {
    await sleep(10);
    left = await connections();
  }
  t.equal(left, 0, 'no connection to the upstream outlives close()');
  t.equal(proxy.warden.server.listening, false, 'the listener is closed');
});
