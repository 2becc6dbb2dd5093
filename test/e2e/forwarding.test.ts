import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startDemoServer } from '../../demo/mcp-server.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { freePort } from '../fixtures/redis.js';
import { startWarden } from '../fixtures/warden.js';

/** A plain HTTP upstream for faults the SDK server cannot produce on demand. */
async function rawUpstream(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const ACCEPT = 'application/json, text/event-stream';

t.test('SDK client through the proxy: tools, progress over SSE, GET stream, DELETE', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const { client, transport, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);

  const { tools } = await client.listTools();
  t.same(tools.map((x) => x.name).sort(), ['add', 'countdown', 'echo', 'gated', 'whoami']);
  const echo = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
  t.same(echo.content, [{ type: 'text', text: 'echo: hi' }]);
  const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
  t.same(sum.content, [{ type: 'text', text: '42' }]);

  const events: string[] = [];
  const countdown = await client.callTool({ name: 'countdown', arguments: { from: 3 } }, undefined, {
    onprogress: (p) => events.push(`progress ${p.progress}`),
  });
  events.push('result');
  t.same(events, ['progress 1', 'progress 2', 'progress 3', 'result'], 'progress notifications arrive in order before the result');
  t.same(countdown.content, [{ type: 'text', text: 'liftoff' }]);

  t.ok(upstream.requests.some((r) => r.method === 'GET' && String(r.headers.accept).includes('text/event-stream')), 'the standalone GET stream reached the upstream');
  const versions = upstream.requests.filter((r) => r.method === 'POST').map((r) => r.headers['mcp-protocol-version']);
  t.ok(versions.slice(1).every((v) => v === '2025-11-25'), 'MCP-Protocol-Version passes through unchanged');
  t.equal(upstream.sessionIds().length, 1);
  await transport.terminateSession();
  t.equal(upstream.sessionIds().length, 0, 'DELETE reached the upstream and ended its session');
});

t.test('SSE is not buffered: event 1 reaches the client before the upstream may send event 2', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  let release: () => void = () => {};
  const first = new Promise<void>((resolve) => {
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      if (n.params.data === 'first') resolve();
    });
  });
  const call = client.callTool({ name: 'gated', arguments: {} });
  await first;
  // Only now may the upstream continue: if the proxy buffered, 'first' could never have arrived.
  release = upstream.gate().release;
  release();
  const result = await call;
  t.same(result.content, [{ type: 'text', text: 'done' }]);
});

t.test('a GET stream gets its headers before any event, and a client abort closes the upstream request', async (t) => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
  const seen: http.IncomingHttpHeaders[] = [];
  const upstream = await rawUpstream((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    req.on('close', () => upstreamClosed());
  });
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const abort = new AbortController();
  // Resolves on response headers: the upstream never sends an event, so nothing but the head can arrive.
  const res = await fetch(proxy.mcpUrl, { headers: { authorization: `Bearer ${await proxy.token()}`, accept: 'text/event-stream', 'last-event-id': 'stream-1_42', 'mcp-protocol-version': '2025-11-25' }, signal: abort.signal });
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'text/event-stream');
  t.equal(seen[0]?.['last-event-id'], 'stream-1_42', 'Last-Event-ID passes through');
  t.equal(seen[0]?.['mcp-protocol-version'], '2025-11-25');
  abort.abort();
  await closed;
  t.pass('upstream saw the request closed after the client hung up');
});

t.test('an idle SSE stream outlives the upstream timeout; slow headers get 504', async (t) => {
  const upstream = await rawUpstream((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      setTimeout(() => res.end('data: late\n\n'), 600);
      return;
    }
    // POST: never answer.
  });
  const proxy = await startWarden({ upstreams: [upstream.url], security: { upstreamTimeout: 200 } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const auth = `Bearer ${await proxy.token()}`;
  const stream = await fetch(proxy.mcpUrl, { headers: { authorization: auth, accept: 'text/event-stream' } });
  t.equal(await stream.text(), 'data: late\n\n', 'event sent after 3x the timeout still arrives');
  const slow = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json', accept: ACCEPT }, body: JSON.stringify(INIT) });
  t.equal(slow.status, 504);
  t.same(await slow.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Upstream MCP server timed out' }, id: 1 });
  t.equal(proxy.logs.events('upstream.failed').length, 1);
});

t.test('upstream refused → 502 JSON-RPC; reset mid-response → connection cut; the process survives', async (t) => {
  const deadPort = await freePort();
  const proxy = await startWarden({ upstreams: [`http://127.0.0.1:${deadPort}/mcp`] });
  t.teardown(() => proxy.close());
  const res = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: `Bearer ${await proxy.token()}`, 'content-type': 'application/json', accept: ACCEPT }, body: JSON.stringify({ ...INIT, id: 'abc' }) });
  t.equal(res.status, 502);
  t.same(await res.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Upstream MCP server unavailable' }, id: 'abc' }, 'the request id is echoed once the body was read');
  t.match(proxy.logs.events('upstream.failed')[0], { reason: 'refused', code: 'UPSTREAM_UNAVAILABLE' });

  const resetting = await rawUpstream((req) => req.socket.destroy());
  t.teardown(() => resetting.close());
  const proxy2 = await startWarden({ upstreams: [resetting.url] });
  t.teardown(() => proxy2.close());
  const reset = await fetch(proxy2.mcpUrl, { method: 'POST', headers: { authorization: `Bearer ${await proxy2.token()}`, 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
  t.equal(reset.status, 502);
  const health = await fetch(`${proxy2.url}/healthz`);
  t.equal(health.status, 200, 'still serving');
});

t.test('body caps: declared and streamed bodies over maxBodyBytes get 413 and are not forwarded', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], security: { maxBodyBytes: 2048 } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const auth = `Bearer ${await proxy.token()}`;
  const big = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: { pad: 'x'.repeat(5000) } });
  const declared = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json', accept: ACCEPT }, body: big });
  t.equal(declared.status, 413);
  t.match(await declared.json(), { jsonrpc: '2.0', error: { code: -32000 } });

  // Chunked (no Content-Length): the cap applies while the body streams.
  const chunked = (headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(proxy.mcpUrl, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json', accept: ACCEPT, ...headers } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      Readable.from([Buffer.from(big.slice(0, 1500)), Buffer.from(big.slice(1500))]).pipe(req);
    });
  t.equal(await chunked({}), 413, 'session-less body (read to find initialize) is capped');

  const init = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json', accept: ACCEPT }, body: JSON.stringify(INIT) });
  const sid = init.headers.get('mcp-session-id') ?? '';
  await init.text();
  const before = upstream.requests.length;
  t.equal(await chunked({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }), 413, 'a session\'s streamed body is capped in flight');
  t.ok(upstream.requests.slice(before).every((r) => r.method !== 'POST' || r.headers['content-length'] === undefined), 'no oversized body reached the upstream whole');
});

t.test('routing: unknown path 404, wrong method 405 with Allow, 202 stays 202', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const missing = await fetch(`${proxy.url}/nope`);
  t.equal(missing.status, 404);
  t.same(await missing.json(), { error: 'not_found', message: 'Not found' });
  const put = await fetch(proxy.mcpUrl, { method: 'PUT', body: '{}' });
  t.equal(put.status, 405);
  t.equal(put.headers.get('allow'), 'POST, GET, DELETE, OPTIONS');
  t.match(await put.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed' }, id: null });

  const auth = `Bearer ${await proxy.token()}`;
  const init = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json', accept: ACCEPT }, body: JSON.stringify(INIT) });
  t.equal(init.status, 200);
  const sid = init.headers.get('mcp-session-id') ?? '';
  await init.text();
  const note = await fetch(proxy.mcpUrl, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json', accept: ACCEPT, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  t.equal(note.status, 202);
  t.equal(await note.text(), '');
});

t.test('identity headers turned off are still stripped: a client cannot plant them', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], identityHeaders: { clientId: null, scopes: 'X-Granted' } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token(), headers: { 'X-MCP-Client-Id': 'mallory', 'X-MCP-Scopes': 'admin', 'X-Granted': 'admin' } });
  t.teardown(close);
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  const seen = JSON.parse((whoami.content as { text: string }[])[0]?.text ?? '{}') as { clientId: unknown; scopes: unknown };
  t.same(seen, { clientId: null, scopes: null, authorization: null }, 'no planted identity reached the upstream');
  const last = upstream.requests[upstream.requests.length - 1];
  t.equal(last?.headers['x-granted'], 'mcp', 'the configured header carries the real scopes');
});

t.test('request smuggling: a body on GET or DELETE is refused and never reaches the upstream', async (t) => {
  const seen: string[] = [];
  const upstream = await rawUpstream((req, res) => {
    seen.push(`${req.method} ${String(req.headers['x-mcp-client-id'])}`);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const token = await proxy.token();
  const { port } = new URL(proxy.url);
  const smuggled = 'POST /mcp HTTP/1.1\r\nHost: x\r\nX-MCP-Client-Id: victim\r\nContent-Length: 2\r\n\r\n{}';
  const attempts = [
    `DELETE /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
    `GET /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
  ];
  for (const raw of attempts) {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.end(raw));
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    t.match(reply, /^HTTP\/1\.1 400 /, `refused: ${raw.slice(0, 6)}`);
    t.match(reply, /must not carry a body/);
  }
  t.same(seen, [], 'nothing reached the upstream, least of all the smuggled request');
});

t.test('Expect: 100-continue is answered by the proxy and not passed on; hop-by-hop headers stay behind', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const token = await proxy.token();
  const body = JSON.stringify(INIT);
  const res = await new Promise<{ status: number; text: string; continued: boolean }>((resolve, reject) => {
    let continued = false;
    const req = http.request(proxy.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT, 'content-length': String(Buffer.byteLength(body)), expect: '100-continue', 'keep-alive': 'timeout=5', te: 'trailers', 'x-marker': 'expect' },
    });
    // Node's client waits for the interim response before it sends the body.
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (r) => {
      let text = '';
      r.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: r.statusCode ?? 0, text, continued }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
  t.ok(res.continued, 'the client got 100 Continue and sent its body');
  t.equal(res.status, 200, 'the initialize was forwarded and answered');
  t.match(res.text, /"protocolVersion"/);
  const seen = upstream.requests.find((r) => r.headers['x-marker'] === 'expect');
  t.ok(seen, 'the upstream got the request');
  t.same([seen?.headers.expect, seen?.headers['keep-alive'], seen?.headers.te], [undefined, undefined, undefined], 'without Expect, Keep-Alive or TE');
});

t.test('a POST answered as a stream counts against sessions.maxStreams like a GET stream', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], sessions: { maxStreams: 2 } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  // The SDK client holds its GET stream (1), and one call held open by the gate (2).
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  const started = new Promise<void>((resolve) => {
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      if (n.params.data === 'first') resolve();
    });
  });
  const held = client.callTool({ name: 'gated', arguments: {} });
  await started;
  const refused = await client.callTool({ name: 'echo', arguments: { message: 'third stream' } }).then(() => null, (err: { code?: number }) => err);
  t.equal(refused?.code, 429, 'a third stream of the same client is refused');
  t.match(proxy.logs.events('rate.limited').at(-1), { code: 'STREAM_LIMIT', clientId: 'alice' });
  upstream.gate().release();
  t.same((await held).content, [{ type: 'text', text: 'done' }], 'the held call finishes');
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'again' } })).content, [{ type: 'text', text: 'echo: again' }], 'and its slot is free again');
});
