/**
 * How proxy sessions end (DESIGN §4 step 9, §5): sliding idle timeout and absolute lifetime,
 * DELETE whatever the upstream answers, an upstream that forgot the session (restart), and an
 * upstream 404 that is not about the session.
 */
import t from 'tap';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startDemoServer } from '../../demo/mcp-server.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { answer, initialize, initialized, methodOf, openSession, rawUpstream, send, PROXY_ID } from '../fixtures/session-http.js';
import { startStack } from '../fixtures/stack.js';
import { startWarden } from '../fixtures/warden.js';

t.test('idle timeout slides on every use; the absolute lifetime ends the session anyway', async (t) => {
  // A frozen clock that only advance() moves: the durations below are exact, whatever the machine's speed.
  const created = Date.now();
  const { upstream, proxy, token } = await startStack(t, { sessions: { idleTimeout: '1s', maxLifetime: 2500 } }, { clock: () => created });
  const alice = await token();
  const { sessionId } = await openSession(proxy.mcpUrl, alice);
  const expiry = async () => (await proxy.warden.store.listSessions('alice', created))[0]?.expiresAt ?? 0;
  const initialExpiry = await expiry();

  proxy.advance(900);
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId })).status, 200, 'used 0.9 s after creation');
  t.equal(initialExpiry, created + 1000);
  t.equal(await expiry(), created + 1900, 'the idle expiry slid forward');
  proxy.advance(900);
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId })).status, 200, '1.8 s after creation: alive only because it slid');
  proxy.advance(600);
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId })).status, 200, '2.4 s');
  t.equal(await expiry(), created + 2500, 'the slide is capped by maxLifetime');
  proxy.advance(300);
  const ended = await send(proxy.mcpUrl, { token: alice, sessionId });
  t.same([ended.status, ended.rpcCode], [404, -32001], '2.7 s: past the lifetime although used every 0.9 s');

  const idle = await openSession(proxy.mcpUrl, alice);
  proxy.advance(1_100);
  const before = upstream.requests.length;
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: idle.sessionId })).status, 404, 'unused for 1.1 s: idle timeout');
  t.equal(upstream.requests.length, before);
  t.equal(proxy.logs.events('session.not_found').length, 2);
});

t.test('DELETE ends the proxy session whatever the upstream answers, 405 included', async (t) => {
  let next = 0;
  const upstream = await rawUpstream((req, res, body) => {
    if (req.method === 'DELETE') return answer(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }, { allow: 'POST' });
    if (methodOf(body) === 'initialize') {
      return answer(res, 200, { jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'raw', version: '1' } } }, { 'mcp-session-id': `raw-${++next}` });
    }
    return answer(res, methodOf(body)?.startsWith('notifications/') ? 202 : 200, methodOf(body)?.startsWith('notifications/') ? undefined : { jsonrpc: '2.0', id: 2, result: {} });
  });
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const alice = await proxy.token();
  const { sessionId } = await send(proxy.mcpUrl, { token: alice, body: initialize() });
  t.match(sessionId, PROXY_ID);
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId, body: initialized })).status, 202);

  const deleted = await send(proxy.mcpUrl, { token: alice, sessionId, method: 'DELETE' });
  t.equal(deleted.status, 405, 'the upstream\'s 405 is passed back (SDK clients take it as success)');
  t.equal(upstream.requests.at(-1)?.headers['mcp-session-id'], 'raw-1', 'the DELETE reached the upstream with its own id');
  t.match(proxy.logs.events('session.ended'), [{ reason: 'delete', clientId: 'alice' }]);
  const before = upstream.requests.length;
  const after = await send(proxy.mcpUrl, { token: alice, sessionId });
  t.same([after.status, after.rpcCode], [404, -32001], 'the id is dead at the proxy');
  t.equal(upstream.requests.length, before, 'and the upstream, which still holds raw-1, never hears of it again');
  t.same(await proxy.warden.store.listSessions('alice', Date.now()), []);
});

t.test('upstream restart: its 404 -32001 deletes the record, the client gets 404, a fresh SDK client works', async (t) => {
  let upstream = await startDemoServer();
  const port = upstream.port;
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const alice = await proxy.token();
  const old = await connectClient(proxy.mcpUrl, { token: alice });
  t.teardown(old.close);
  const sessionId = old.transport.sessionId;
  t.equal((await old.client.listTools()).tools.length, 5);

  await upstream.close();
  // In one process the proxy's pooled keep-alive sockets need an event-loop turn to see the
  // old upstream's FIN; a real restart takes far longer than that.
  await new Promise((resolve) => setTimeout(resolve, 50));
  upstream = await startDemoServer({ port });
  const lost = await old.client.listTools().then(() => null, (err: unknown) => err);
  t.type(lost, StreamableHTTPError);
  t.equal((lost as StreamableHTTPError).code, 404, 'the SDK client sees 404: the MCP signal to re-initialize');
  t.match(proxy.logs.events('session.ended'), [{ reason: 'upstream_gone', clientId: 'alice' }]);
  t.same(await proxy.warden.store.listSessions('alice', Date.now()), [], 'the mapping is gone');

  const before = upstream.requests.length;
  const replay = await send(proxy.mcpUrl, { token: alice, sessionId });
  t.same([replay.status, replay.rpcCode], [404, -32001]);
  t.equal(upstream.requests.length, before, 'now refused by the proxy itself, without asking the upstream');

  const fresh = await connectClient(proxy.mcpUrl, { token: alice });
  t.teardown(fresh.close);
  t.not(fresh.transport.sessionId, sessionId);
  t.same((await fresh.client.callTool({ name: 'echo', arguments: { message: 'back' } })).content, [{ type: 'text', text: 'echo: back' }]);
  t.equal(upstream.sessionIds().length, 1);
});

t.test('however an upstream says it forgot a session, the record goes and the client gets 404 -32001', async (t) => {
  // What real servers answer for a session they do not know: the Python SDK (404, -32600), the
  // TypeScript SDK's examples (400 "Bad Request: No valid session ID provided"), a bare 404.
  const answers: Record<string, [number, unknown]> = {
    python: [404, { jsonrpc: '2.0', id: 'server-error', error: { code: -32600, message: 'Session not found' } }],
    example400: [400, { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null }],
    bare404: [404, undefined],
  };
  let style = 'python';
  let next = 0;
  const known = new Set<string>();
  const upstream = await rawUpstream((req, res, body) => {
    if (methodOf(body) === 'initialize') {
      const id = `raw-${++next}`;
      known.add(id);
      return answer(res, 200, { jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'raw', version: '1' } } }, { 'mcp-session-id': id });
    }
    if (methodOf(body) === 'bad/params') return answer(res, 400, { jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'Invalid params' } });
    const [status, reply] = answers[style] ?? [500, undefined];
    if (!known.has(String(req.headers['mcp-session-id']))) return answer(res, status, reply);
    return answer(res, 200, { jsonrpc: '2.0', id: 2, result: {} });
  });
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const alice = await proxy.token();
  for (const name of Object.keys(answers)) {
    style = name;
    const { sessionId } = await send(proxy.mcpUrl, { token: alice, body: initialize() });
    const invalid = await send(proxy.mcpUrl, { token: alice, sessionId, body: { jsonrpc: '2.0', id: 3, method: 'bad/params' } });
    t.same([invalid.status, invalid.rpcCode], [400, -32602], `${name}: a 400 about something else is passed back`);
    known.clear();
    const lost = await send(proxy.mcpUrl, { token: alice, sessionId });
    t.same([lost.status, lost.rpcCode], [404, -32001], `${name}: the client gets MCP's "session not found"`);
    t.equal(lost.headers.get('mcp-session-id'), sessionId, `${name}: with its own proxy id, never the upstream's`);
    const before = upstream.requests.length;
    t.same([(await send(proxy.mcpUrl, { token: alice, sessionId })).status, upstream.requests.length], [404, before], `${name}: the record is gone`);
  }
  t.equal(proxy.logs.events('session.ended').filter((e) => e.reason === 'upstream_gone').length, 3);
  t.equal(proxy.logs.events('auth.failed').length + proxy.logs.events('address.blocked').length, 0, 'nothing counted against the client');
  t.same(await proxy.warden.store.listSessions('alice', Date.now()), [], 'no dead record holds a slot against the cap');
});

t.test('an upstream 404 "method not found" (-32601) on a session deletes nothing', async (t) => {
  const upstream = await rawUpstream((req, res, body) => {
    const method = methodOf(body);
    if (method === 'initialize') return answer(res, 200, { jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'raw', version: '1' } } }, { 'mcp-session-id': 'raw-1' });
    if (method === 'no/such/method') return answer(res, 404, { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: 5 });
    return answer(res, 200, { jsonrpc: '2.0', id: 6, result: {} });
  });
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const alice = await proxy.token();
  const { sessionId } = await send(proxy.mcpUrl, { token: alice, body: initialize() });
  const missing = await send(proxy.mcpUrl, { token: alice, sessionId, body: { jsonrpc: '2.0', id: 5, method: 'no/such/method' } });
  t.same([missing.status, missing.rpcCode], [404, -32601], 'the upstream answer is passed back');
  t.equal(missing.sessionId, sessionId);
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId })).status, 200, 'the session is still there');
  t.equal(proxy.logs.events('session.ended').length, 0);
  t.equal((await proxy.warden.store.listSessions('alice', Date.now())).length, 1);
});

t.test('re-initializing without an id after a 404 gets a new session on the same upstream', async (t) => {
  const { upstream, proxy, token } = await startStack(t);
  const alice = await token();
  const first = await openSession(proxy.mcpUrl, alice);
  await send(proxy.mcpUrl, { token: alice, sessionId: first.sessionId, method: 'DELETE' });
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId: first.sessionId })).status, 404);
  const second = await openSession(proxy.mcpUrl, alice);
  t.equal(second.status, 200);
  t.not(second.sessionId, first.sessionId);
  t.equal(upstream.sessionIds().length, 1, 'the first upstream session was ended by the DELETE, the second is open');
});

t.test('with the default cap, a client that never sends DELETE is never locked out: the 12th connection works', async (t) => {
  const upstream = await startDemoServer();
  // The creation rate (10 a minute by default) is another limit: raised here so the test is about the cap.
  const proxy = await startWarden({ upstreams: [upstream.url], rateLimits: { sessionCreate: { points: 100, duration: '1m' } } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const token = await proxy.token();
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    // The SDK's client closes without DELETE (it never terminates the session by itself).
    const { client, transport, close } = await connectClient(proxy.mcpUrl, { token });
    t.equal((await client.listTools()).tools.length, 5, `connection ${i + 1} works`);
    ids.push(transport.sessionId ?? '');
    await close();
  }
  t.equal((await proxy.warden.store.listSessions('alice', Date.now())).length, 10, 'the cap (10) holds');
  t.equal((await send(proxy.mcpUrl, { token, sessionId: ids[0] })).status, 404, 'the oldest session was ended to make room');
  t.equal(proxy.logs.events('session.evicted').length, 2);
  t.equal(proxy.logs.events('session.limited').length, 0, 'nothing was refused');
  t.equal(upstream.sessionIds().length, 10, 'the evicted sessions ended upstream too');
});
