/**
 * Proxy-minted session ids (DESIGN §5, MCP-NOTES §7.1): their shape, that the upstream's own ids
 * never reach a client on any kind of response, that a client-sent id never reaches the upstream,
 * that a session belongs to a client identity rather than a token, and the fingerprint binding.
 */
import t from 'tap';
import { connectClient } from '../fixtures/mcp-client.js';
import { answer, initialize, initialized, methodOf, openSession, openStream, rawUpstream, send, tokenEndpoint, toolsList, waitFor, PROXY_ID, UPSTREAM_ID } from '../fixtures/session-http.js';
import { startStack } from '../fixtures/stack.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';

t.test('minting: the proxy id is 59 visible ASCII chars, differs from the upstream id, and is the only id a client ever sees', async (t) => {
  const { upstream, proxy, token } = await startStack(t);
  const responses: { method: string; status: number; sessionId: string | null }[] = [];
  const recording: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    responses.push({ method: init?.method ?? 'GET', status: res.status, sessionId: res.headers.get('mcp-session-id') });
    return res;
  };
  const alice = await token();
  const { client, transport, close } = await connectClient(proxy.mcpUrl, { token: alice, fetch: recording });
  t.teardown(close);
  const proxyId = transport.sessionId ?? '';
  t.match(proxyId, PROXY_ID);
  t.ok([...proxyId].every((c) => c.charCodeAt(0) >= 0x21 && c.charCodeAt(0) <= 0x7e), 'visible ASCII only (MCP §1.4)');
  const [upstreamId] = upstream.sessionIds();
  t.match(upstreamId, UPSTREAM_ID);
  t.not(proxyId, upstreamId);
  t.match(proxy.logs.events('session.created')[0], { clientId: 'alice', session: /^[A-Za-z0-9_-]{12}$/ });

  await client.listTools();
  await client.callTool({ name: 'countdown', arguments: { from: 2 } });
  await waitFor(() => responses.some((r) => r.method === 'GET'), 'the SDK client GET stream');
  // Raw: a refusal of the upstream transport (406) and a resumption GET, on the same session.
  const notAcceptable = await send(proxy.mcpUrl, { token: alice, sessionId: proxyId, headers: { accept: 'application/json' } });
  t.equal(notAcceptable.status, 406, 'the upstream refused it');
  const stream = await openStream(proxy.mcpUrl, { token: alice, sessionId: proxyId, lastEventId: 'x_1_1' });
  stream.close();
  await transport.terminateSession();

  const kinds = new Set(responses.map((r) => `${r.method} ${r.status}`));
  for (const kind of ['POST 200', 'POST 202', 'GET 200', 'DELETE 200']) t.ok(kinds.has(kind), `saw a ${kind} response`);
  const headers = [...responses.map((r) => r.sessionId), notAcceptable.sessionId, stream.headers.get('mcp-session-id')];
  t.same(headers.filter((h) => h !== null && h !== proxyId), [], 'every Mcp-Session-Id a client saw is the proxy id');
  t.ok(headers.filter((h) => h === proxyId).length >= 4, 'and SDK upstreams repeat it, so the proxy rewrote it on each');

  const sent = upstream.requests.map((r) => r.headers['mcp-session-id']).filter((h) => h !== undefined);
  t.ok(sent.length >= 5);
  t.same([...new Set(sent)], [upstreamId], 'the upstream only ever got its own id, never the proxy id');
});

t.test('minting with a JSON-response upstream: the upstream id is swapped on JSON bodies too', async (t) => {
  const { upstream, proxy, token } = await startStack(t, {}, { upstream: { jsonResponse: true } });
  const alice = await token();
  const init = await openSession(proxy.mcpUrl, alice);
  t.equal(init.headers.get('content-type'), 'application/json');
  t.match(init.sessionId, PROXY_ID);
  const list = await send(proxy.mcpUrl, { token: alice, sessionId: init.sessionId, body: toolsList(3) });
  t.equal(list.headers.get('content-type'), 'application/json');
  t.equal(list.sessionId, init.sessionId);
  t.equal((list.messages[0]?.result as { tools: unknown[] }).tools.length, 5);
  t.notOk(JSON.stringify([...init.headers, ...list.headers]).includes(upstream.sessionIds()[0] ?? '?'));
});

t.test('minting against an upstream that puts its id on every response, errors included', async (t) => {
  const LEAK = 'upstream-secret-session-7f3a';
  const upstream = await rawUpstream((req, res, body) => {
    const leak = { 'mcp-session-id': LEAK };
    const method = methodOf(body);
    if (req.method === 'GET') return answer(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }, leak);
    if (req.method === 'DELETE') return answer(res, 200, undefined, leak);
    if (method === 'initialize') return answer(res, 200, { jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'raw', version: '1' } } }, leak);
    if (method === 'notifications/initialized') return answer(res, 202, undefined, leak);
    if (method === 'bad/request') return answer(res, 400, { jsonrpc: '2.0', error: { code: -32600, message: 'bad' }, id: 2 }, leak);
    if (method === 'not/here') return answer(res, 404, { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: 2 }, leak);
    return answer(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: 'boom' }, id: 2 }, leak);
  });
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const alice = await proxy.token();
  const init = await send(proxy.mcpUrl, { token: alice, body: initialize() });
  const sessionId = init.sessionId ?? '';
  t.match(sessionId, PROXY_ID);
  const replies = [
    init,
    await send(proxy.mcpUrl, { token: alice, sessionId, body: initialized }),
    await send(proxy.mcpUrl, { token: alice, sessionId, body: { jsonrpc: '2.0', id: 2, method: 'bad/request' } }),
    await send(proxy.mcpUrl, { token: alice, sessionId, body: { jsonrpc: '2.0', id: 2, method: 'not/here' } }),
    await send(proxy.mcpUrl, { token: alice, sessionId, body: { jsonrpc: '2.0', id: 2, method: 'crash' } }),
    await send(proxy.mcpUrl, { token: alice, sessionId, method: 'GET' }),
    await send(proxy.mcpUrl, { token: alice, body: { jsonrpc: '2.0', id: 2, method: 'session/less' } }),
    await send(proxy.mcpUrl, { token: alice, sessionId, method: 'DELETE' }),
  ];
  t.same(replies.map((r) => r.status), [200, 202, 400, 404, 500, 405, 500, 200]);
  t.same(replies.map((r) => r.sessionId), [sessionId, sessionId, sessionId, sessionId, sessionId, sessionId, null, sessionId], 'rewritten in a session, dropped outside one');
  for (const r of replies) t.notOk(JSON.stringify([...r.headers]).includes(LEAK), `no leak on a ${r.status}`);
  t.same(upstream.requests.map((r) => r.headers['mcp-session-id'] ?? null), [null, LEAK, LEAK, LEAK, LEAK, LEAK, null, LEAK], 'the upstream got its own id back, and nothing else');
});

t.test('identity, not token: the session survives token refresh and re-issue; another client cannot use it', async (t) => {
  const { upstream, proxy } = await startStack(t, { tokens: { issueRefreshTokens: true, accessTtl: '10s' } });
  const first = await tokenEndpoint(proxy.url, 'alice', TEST_CLIENTS.alice);
  const { sessionId } = await openSession(proxy.mcpUrl, first.access_token);
  proxy.advance(45_000);
  const expired = await send(proxy.mcpUrl, { token: first.access_token, sessionId });
  t.equal(expired.status, 401, 'the access token expired (10 s + 30 s skew)');
  t.match(expired.headers.get('www-authenticate'), /error="invalid_token"/);

  const refreshed = await tokenEndpoint(proxy.url, 'alice', TEST_CLIENTS.alice, first.refresh_token);
  t.not(refreshed.access_token, first.access_token);
  t.equal((await send(proxy.mcpUrl, { token: refreshed.access_token, sessionId })).status, 200, 'the refreshed token continues the same session');
  const reissued = await tokenEndpoint(proxy.url, 'alice', TEST_CLIENTS.alice);
  t.equal((await send(proxy.mcpUrl, { token: reissued.access_token, sessionId })).status, 200, 'so does a token of a new grant of the same client');
  t.equal(upstream.sessionIds().length, 1, 'all on the one upstream session');

  const before = upstream.requests.length;
  const bob = await tokenEndpoint(proxy.url, 'bob', TEST_CLIENTS.bob);
  const foreign = await send(proxy.mcpUrl, { token: bob.access_token, sessionId });
  t.same([foreign.status, foreign.rpcCode], [404, -32001], 'another client\'s token cannot');
  t.equal(upstream.requests.length, before);
  t.match(proxy.logs.events('session.not_found'), [{ clientId: 'bob', reason: 'forged' }]);
});

t.test('fingerprint binding to the user agent: a mismatch is 404 and session.binding_mismatch', async (t) => {
  const { upstream, proxy, token } = await startStack(t, { sessions: { bindTo: ['client', 'userAgent'] } });
  const alice = await token();
  const ua = { 'user-agent': 'agent/1.0' };
  const { sessionId } = await openSession(proxy.mcpUrl, alice, ua);
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId, headers: ua })).status, 200);
  const before = upstream.requests.length;
  const other = await send(proxy.mcpUrl, { token: alice, sessionId, headers: { 'user-agent': 'agent/2.0' } });
  t.same([other.status, other.rpcCode], [404, -32001]);
  t.equal(upstream.requests.length, before, 'not forwarded');
  t.match(proxy.logs.events('session.binding_mismatch'), [{ clientId: 'alice', code: 'SESSION_BINDING_MISMATCH', reason: 'binding' }]);
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId, headers: ua })).status, 200, 'the owner is unaffected');
});

t.test('fingerprint binding to the address prefix (through a trusted proxy): another /24 is refused', async (t) => {
  const { upstream, proxy, token } = await startStack(t, { sessions: { bindTo: ['client', 'address'] }, security: { trustProxy: ['127.0.0.1'] } });
  const alice = await token();
  const from = (address: string) => ({ 'x-forwarded-for': address });
  const { sessionId } = await openSession(proxy.mcpUrl, alice, from('10.1.2.3'));
  t.match(sessionId, PROXY_ID);
  t.equal((await send(proxy.mcpUrl, { token: alice, sessionId, headers: from('10.1.2.200') })).status, 200, 'same /24');
  const before = upstream.requests.length;
  const moved = await send(proxy.mcpUrl, { token: alice, sessionId, headers: from('10.1.3.3') });
  t.same([moved.status, moved.rpcCode], [404, -32001], 'another /24');
  t.equal(upstream.requests.length, before);
  t.match(proxy.logs.events('session.binding_mismatch'), [{ address: '10.1.3.3', reason: 'binding' }]);
});
