/**
 * Legacy HTTP+SSE (MCP 2024-11-05) clients through mcp-warden to a legacy upstream (DESIGN §16):
 * the SDK's own SSEServerTransport behind the proxy, the SDK's SSEClientTransport in front. The
 * upstream's session id never reaches the client; the proxy's sessionId is bound to the identity
 * that opened the stream; the stream is the session.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { rawUpstream, send, PROXY_ID } from '../fixtures/session-http.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import { startDemoServer } from '../../demo/mcp-server.js';
import { runDoctor } from '../../src/doctor.js';
import type { TestWarden } from '../fixtures/warden.js';

interface LegacyUpstream {
  readonly url: string;
  /** Upstream session ids (the SDK's sessionId) of open streams. */
  readonly open: Set<string>;
  /** Headers of every POST the upstream got. */
  readonly posts: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** The SDK's legacy server, routed as its own examples do: GET /sse, POST /messages?sessionId=. */
async function legacyUpstream(t: Test): Promise<LegacyUpstream> {
  const transports = new Map<string, SSEServerTransport>();
  const open = new Set<string>();
  const posts: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res);
      transports.set(transport.sessionId, transport);
      open.add(transport.sessionId);
      transport.onclose = () => {
        transports.delete(transport.sessionId);
        open.delete(transport.sessionId);
      };
      const mcp = new McpServer({ name: 'legacy-upstream', version: '1.0.0' }, { capabilities: { logging: {} } });
      mcp.registerTool('echo', { description: 'Echo', inputSchema: { message: z.string() } }, async ({ message }) => ({ content: [{ type: 'text', text: `echo: ${message}` }] }));
      mcp.registerTool('ticks', { description: 'Three log notifications, then done' }, async (extra) => {
        for (let i = 1; i <= 3; i++) await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: `tick ${i}` } });
        return { content: [{ type: 'text', text: 'done' }] };
      });
      void mcp.connect(transport);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/messages') {
      posts.push(req.headers);
      const transport = transports.get(url.searchParams.get('sessionId') ?? '');
      if (!transport) {
        res.writeHead(404).end('Session not found');
        return;
      }
      void transport.handlePostMessage(req, res);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.teardown(close);
  return { url: `http://127.0.0.1:${port}/sse`, open, posts, close };
}

/** The SDK's legacy client, sending the token on the stream and on every POST. */
async function legacyClient(t: Test, proxy: TestWarden, token: string): Promise<{ client: Client; endpoint: () => URL | undefined; seen: string[] }> {
  const seen: string[] = [];
  const withToken: typeof fetch = async (input, init) => {
    const res = await fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), authorization: `Bearer ${token}` } });
    return res;
  };
  const transport = new SSEClientTransport(new URL(`${proxy.url}/sse`), { eventSourceInit: { fetch: withToken }, requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'legacy-client', version: '1.0.0' });
  await client.connect(transport);
  t.teardown(() => client.close());
  // The SDK keeps the endpoint it was given: what the client saw of the upstream.
  const endpoint = (): URL | undefined => (transport as unknown as { _endpoint?: URL })._endpoint;
  return { client, endpoint, seen };
}

t.test('a legacy client reaches a legacy upstream through the proxy, and never sees the upstream\'s session id', async (t) => {
  const upstream = await legacyUpstream(t);
  const proxy = await startWarden({ legacySse: { upstream: upstream.url } });
  t.teardown(() => proxy.close());
  const token = await proxy.token();
  const { client, endpoint } = await legacyClient(t, proxy, token);

  const result = await client.callTool({ name: 'echo', arguments: { message: 'through' } });
  t.same(result.content, [{ type: 'text', text: 'echo: through' }]);
  const given = endpoint();
  t.equal(given?.origin, proxy.url, 'the endpoint the client got is on the proxy');
  t.equal(given?.pathname, '/messages');
  const proxyId = given?.searchParams.get('sessionId') ?? '';
  t.match(proxyId, PROXY_ID, 'a proxy-minted session id');
  const [upstreamId] = [...upstream.open];
  t.ok(upstreamId, 'the upstream holds one stream');
  t.not(proxyId, upstreamId);
  t.ok(upstream.posts.every((h) => h.authorization === undefined), 'the client\'s token never reaches the upstream');
  t.match(proxy.logs.events('session.created'), [{ clientId: 'alice' }]);

  // Another identity, a forged id, the upstream's own id, and the MCP path: all "not found".
  const bob = await proxy.token('bob');
  const post = (token: string, id: string) => send(`${proxy.url}/messages?sessionId=${encodeURIComponent(id)}`, { token, body: { jsonrpc: '2.0', id: 9, method: 'tools/list' } });
  t.same([(await post(bob, proxyId)).status, upstream.posts.length], [404, upstream.posts.length], 'bob cannot use alice\'s stream');
  t.equal((await post(token, `${proxyId.slice(0, -2)}AA`)).status, 404, 'a forged id');
  t.equal((await post(token, upstreamId ?? '')).status, 404, 'the upstream\'s own id');
  t.equal((await send(proxy.mcpUrl, { token, sessionId: proxyId })).status, 404, 'a legacy session is not a Streamable HTTP session');
  t.equal((await send(`${proxy.url}/messages`, { token, body: { jsonrpc: '2.0', id: 1, method: 'ping' } })).status, 400, 'no sessionId');
  t.equal((await send(`${proxy.url}/messages?sessionId=${proxyId}`, { body: { jsonrpc: '2.0', id: 1, method: 'ping' } })).status, 401, 'no token');

  await client.close();
  await t.resolves(waitFor(() => upstream.open.size === 0), 'closing the client\'s stream closes the upstream\'s');
  await waitFor(() => proxy.logs.events('session.ended').length > 0);
  t.match(proxy.logs.events('session.ended'), [{ reason: 'stream_closed', clientId: 'alice' }]);
  t.equal((await post(token, proxyId)).status, 404, 'and the session is over');
});

t.test('a legacy stream needs a token; a legacy upstream that never names its endpoint is a 502 that says so', async (t) => {
  const silent = await rawUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('event: message\ndata: {}\n\n');
  });
  t.teardown(() => silent.close());
  const proxy = await startWarden({ legacySse: { upstream: silent.url.replace(/\/mcp$/, '/sse') }, security: { upstreamTimeout: '1s' } });
  t.teardown(() => proxy.close());
  const anonymous = await fetch(`${proxy.url}/sse`, { headers: { accept: 'text/event-stream' } });
  t.equal(anonymous.status, 401);
  await anonymous.text();
  const res = await fetch(`${proxy.url}/sse`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${await proxy.token()}` } });
  t.equal(res.status, 502);
  t.match(await res.json(), { error: { message: /first event is "message", not "endpoint"/ } });
  t.equal((await proxy.warden.store.listSessions('alice', Date.now())).length, 0, 'no session was made');
});

t.test('bridge: a Streamable HTTP client works against a legacy upstream, notifications streamed, the session ends with the upstream stream', async (t) => {
  const upstream = await legacyUpstream(t);
  const proxy = await startWarden({ legacySse: { upstream: upstream.url, bridge: true } });
  t.teardown(() => proxy.close());
  const token = await proxy.token();
  const { client, transport, close } = await connectClient(proxy.mcpUrl, { token });
  t.teardown(close);
  const sessionId = transport.sessionId ?? '';
  t.match(sessionId, PROXY_ID, 'the client holds a proxy session id');
  t.equal(upstream.open.size, 1, 'the proxy holds one upstream stream for it');
  t.notOk([...upstream.open].includes(sessionId));

  t.same((await client.callTool({ name: 'echo', arguments: { message: 'bridged' } })).content, [{ type: 'text', text: 'echo: bridged' }]);
  const logs: string[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(String(n.params.data));
  });
  t.same((await client.callTool({ name: 'ticks', arguments: {} })).content, [{ type: 'text', text: 'done' }]);
  t.same(logs, ['tick 1', 'tick 2', 'tick 3'], 'notifications sent during the call reach the client, in order, before its answer');
  t.equal((await client.listTools()).tools.length, 2);
  t.ok(upstream.posts.every((h) => h.authorization === undefined), 'no client token upstream');

  const bob = await proxy.token('bob');
  t.equal((await send(proxy.mcpUrl, { token: bob, sessionId })).status, 404, 'bound to alice');

  await upstream.close();
  await waitFor(() => upstream.open.size === 0);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const lost = await send(proxy.mcpUrl, { token, sessionId });
  t.same([lost.status, lost.rpcCode], [404, -32001], 'the upstream stream ended: MCP\'s "session not found"');
  t.match(proxy.logs.events('session.ended'), [{ reason: 'upstream_gone' }]);
});

t.test('bridge: DELETE ends the upstream stream', async (t) => {
  const upstream = await legacyUpstream(t);
  const proxy = await startWarden({ legacySse: { upstream: upstream.url, bridge: true } });
  t.teardown(() => proxy.close());
  const { transport, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  t.equal(upstream.open.size, 1);
  await transport.terminateSession();
  await t.resolves(waitFor(() => upstream.open.size === 0), 'the upstream session ended with the proxy session');
  t.same(await proxy.warden.store.listSessions('alice', Date.now()), []);
});

t.test('bridge: shutting the proxy down ends the upstream streams it holds', async (t) => {
  const upstream = await legacyUpstream(t);
  const proxy = await startWarden({ legacySse: { upstream: upstream.url, bridge: true } });
  const { close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.equal(upstream.open.size, 1);
  await proxy.close();
  await t.resolves(waitFor(() => upstream.open.size === 0), 'no upstream session outlives the proxy');
  await close();
});

t.test('an upstream whose path looks like a legacy endpoint gets a warning at startup', async (t) => {
  const proxy = await startWarden({ upstreams: ['http://127.0.0.1:9/sse'] });
  t.teardown(() => proxy.close());
  t.ok(proxy.logs.lines.some((l) => /legacy HTTP\+SSE endpoint/.test(String(l.msg))), 'warned');
});

t.test('the proxy probes each upstream\'s transport: a legacy server among upstreams, or a Streamable HTTP one as legacySse.upstream, is named at start, in /readyz and by doctor', async (t) => {
  const legacy = await legacyUpstream(t);
  const modern = await startDemoServer();
  t.teardown(() => modern.close());
  const transportOf = (proxy: TestWarden, key: string) => proxy.logs.lines.find((l) => l.msg === 'upstream transport' && l.upstream === key)?.transport;

  // A legacy server configured as Streamable HTTP (at a path that does not give it away).
  const wrong = await startWarden({ upstreams: [legacy.url.replace(/\/sse$/, '/sse?x=1')], health: { probeTransports: true } });
  t.teardown(() => wrong.close());
  await waitFor(() => transportOf(wrong, 'upstreams[0]') !== undefined);
  t.equal(transportOf(wrong, 'upstreams[0]'), 'legacy-sse', 'found by asking, not from the path');
  t.ok(wrong.logs.lines.some((l) => l.level === 'warn' && /upstreams\[0\] speaks legacy HTTP\+SSE .* Set legacySse.upstream/.test(String(l.msg))), 'warned, with the fix');
  const ready = (await (await fetch(`${wrong.url}/readyz`)).json()) as { transports: Record<string, string> };
  t.same(ready.transports, { 'upstreams[0]': 'legacy-sse' }, '/readyz says what was found');
  await waitFor(() => legacy.open.size === 0);
  t.equal(legacy.open.size, 0, 'the probe closed the legacy stream it opened');
  const doctor = await runDoctor({ url: wrong.mcpUrl, clientId: 'alice', clientSecret: TEST_CLIENTS.alice });
  t.match(doctor.at(-1), { ok: false, step: /upstream transports/, got: /upstreams\[0\]: legacy-sse .*configured as the other transport/ }, 'doctor stops there, saying why');

  // A Streamable HTTP server configured as the legacy upstream.
  const backwards = await startWarden({ legacySse: { upstream: modern.url }, health: { probeTransports: true } });
  t.teardown(() => backwards.close());
  await waitFor(() => transportOf(backwards, 'legacySse.upstream') !== undefined);
  t.equal(transportOf(backwards, 'legacySse.upstream'), 'streamable-http');
  t.ok(backwards.logs.lines.some((l) => l.level === 'warn' && /legacySse.upstream speaks Streamable HTTP/.test(String(l.msg))), 'warned');

  // Configured right: no warning. Turned off: no probe at all.
  const right = await startWarden({ upstreams: [modern.url], legacySse: { upstream: legacy.url }, health: { probeTransports: true } });
  t.teardown(() => right.close());
  await waitFor(() => transportOf(right, 'upstreams[0]') !== undefined && transportOf(right, 'legacySse.upstream') !== undefined);
  t.same([transportOf(right, 'upstreams[0]'), transportOf(right, 'legacySse.upstream')], ['streamable-http', 'legacy-sse']);
  t.notOk(right.logs.lines.some((l) => l.level === 'warn' && /speaks/.test(String(l.msg))), 'no warning');
  const quiet = await startWarden({ upstreams: [legacy.url], health: { probeTransports: false } });
  t.teardown(() => quiet.close());
  t.notOk(quiet.logs.lines.some((l) => l.msg === 'upstream transport'), 'health.probeTransports: false asks nothing');
});

async function waitFor(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
