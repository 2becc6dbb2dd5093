/**
 * Per-tool policy end to end: real SDK upstreams (v1 demo server, v2 handler) and real SDK
 * clients (v1 and v2). A denied message never reaches the upstream; step-up answers 403 with the
 * scope; batches are refused whole; spoofed 2026-07-28 headers are refused before any decision.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reloadPolicyFrom } from '../../src/cli/serve.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { connectV2Client, startV2Server } from '../fixtures/mcp-v2.js';
import { initialized, openSession, send } from '../fixtures/session-http.js';
import { startStack } from '../fixtures/stack.js';
import { startWarden } from '../fixtures/warden.js';

const POLICY = {
  default: 'deny',
  rules: [
    { id: 'tools', effect: 'allow', tools: ['echo', 'countdown', 'whoami'] },
    { id: 'echo-secret', effect: 'deny', tools: ['echo'], arguments: [{ pointer: '/message', prefix: 'secret' }] },
    { id: 'step-up', effect: 'deny', tools: ['countdown'], unlessScopes: ['extra'] },
  ],
};

const callTool = (id: number | string, name: string, args: unknown = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const posts = (requests: { method: string }[]): number => requests.filter((r) => r.method === 'POST').length;

t.test('v1 SDK client: allowed calls pass, hidden and missing tools get the same error, nothing denied reaches the upstream', async (t) => {
  const { upstream, proxy } = await startStack(t, { policy: POLICY });
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'hi' } })).content, [{ type: 'text', text: 'echo: hi' }]);
  const before = posts(upstream.requests);
  const hidden = await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }).catch((err: unknown) => err);
  const missing = await client.callTool({ name: 'no_such_tool', arguments: {} }).catch((err: unknown) => err);
  t.ok(hidden instanceof McpError && missing instanceof McpError, 'JSON-RPC errors, not transport failures');
  if (hidden instanceof McpError && missing instanceof McpError) {
    t.equal(hidden.code, -32602);
    t.equal(missing.code, hidden.code, 'same code for a hidden and a missing tool');
    t.equal(hidden.message.replace('add', 'X'), missing.message.replace('no_such_tool', 'X'), 'same message but for the name');
    t.match(hidden.message, /Unknown tool: add/);
    t.notMatch(hidden.message, /rule|tools|policy|deny/i, 'nothing about rules');
  }
  const secret = await client.callTool({ name: 'echo', arguments: { message: 'secret plans' } }).catch((err: unknown) => err);
  t.match(secret, { code: -32602 }, 'argument condition');
  t.equal(posts(upstream.requests), before, 'no denied call was forwarded');

  const denied = proxy.logs.events('policy.denied');
  t.equal(denied.length, 3);
  t.match(denied[0], { event: 'policy.denied', principal: 'alice', method: 'tools/call', name: 'add', rule: null, reason: 'default', code: 'POLICY_DENIED' });
  t.match(denied[2], { name: 'echo', rule: 'echo-secret', reason: 'rule' });
  t.match(denied[0]?.session, /^[A-Za-z0-9_-]{6,16}$/, 'the session as a short hash');
  const sessionId = client.transport?.sessionId ?? '';
  t.ok(sessionId.length > 20 && !proxy.logs.text().includes(sessionId), 'never the session id itself');
  t.notMatch(proxy.logs.text(), /secret plans/, 'never the arguments');
});

t.test('step-up: 403 insufficient_scope naming the scope, then a re-issued token with it passes', async (t) => {
  const { upstream, proxy } = await startStack(t, { policy: POLICY });
  const narrow = await proxy.token('alice', 'mcp');
  const init = await openSession(proxy.mcpUrl, narrow);
  const sessionId = init.sessionId ?? '';
  const before = posts(upstream.requests);
  const refused = await send(proxy.mcpUrl, { token: narrow, sessionId, body: callTool(5, 'countdown', { from: 1 }) });
  t.equal(refused.status, 403);
  t.equal(refused.headers.get('www-authenticate'), `Bearer error="insufficient_scope", scope="mcp extra", resource_metadata="${proxy.url}/.well-known/oauth-protected-resource/mcp"`);
  t.equal(posts(upstream.requests), before, 'not forwarded');
  t.match(proxy.logs.events('policy.denied')[0], { code: 'STEP_UP_REQUIRED', rule: 'step-up', name: 'countdown' });
  const wide = await proxy.token('alice', 'mcp extra');
  const allowed = await send(proxy.mcpUrl, { token: wide, sessionId, body: callTool(6, 'countdown', { from: 1 }) });
  t.equal(allowed.status, 200);
  t.ok(allowed.messages.some((m) => m.id === 6 && 'result' in m), 'the call ran with the wider token');
});

t.test('batches: any denied message refuses the whole batch, one error per id', async (t) => {
  const { upstream, proxy } = await startStack(t, { policy: POLICY });
  const token = await proxy.token();
  const sessionId = (await openSession(proxy.mcpUrl, token)).sessionId ?? '';
  const before = posts(upstream.requests);
  const headers = { 'mcp-protocol-version': '2025-03-26' };
  const batch = [callTool(1, 'echo', { message: 'ok' }), initialized, callTool('two', 'add', { a: 1, b: 1 }), { jsonrpc: '2.0', id: 3, method: 'prompts/get', params: { name: 'p' } }];
  const refused = await send(proxy.mcpUrl, { token, sessionId, headers, body: batch });
  t.equal(refused.status, 200);
  t.same(JSON.parse(refused.text), [
    { jsonrpc: '2.0', error: { code: -32600, message: 'Not run: another message of this batch was refused' }, id: 1 },
    { jsonrpc: '2.0', error: { code: -32602, message: 'Unknown tool: add' }, id: 'two' },
    { jsonrpc: '2.0', error: { code: -32602, message: 'Unknown prompt: p' }, id: 3 },
  ]);
  t.equal(posts(upstream.requests), before, 'no member of the batch was forwarded');
  const allowed = await send(proxy.mcpUrl, { token, sessionId, headers, body: [callTool(7, 'echo', { message: 'a' }), callTool(8, 'echo', { message: 'b' })] });
  t.equal(allowed.status, 200);
  t.same(allowed.messages.map((m) => m.id).sort(), [7, 8], 'an allowed batch is forwarded whole');
  const malformed = await send(proxy.mcpUrl, { token, sessionId, body: { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: ['echo'] } } });
  t.equal(malformed.status, 400, 'a tools/call without a string name cannot be judged: refused');
  t.equal(malformed.rpcCode, -32600);
});

t.test('2026-07-28 headers must match the body before any decision (v2 client and upstream)', async (t) => {
  const upstream = await startV2Server();
  const proxy = await startWarden({ upstreams: [upstream.url], policy: { default: 'deny', rules: [{ id: 'echo', effect: 'allow', tools: ['echo'] }, { id: 'fence', effect: 'deny', resources: ['file:///etc/*'] }] } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const token = await proxy.token();
  const { client, close } = await connectV2Client(proxy.mcpUrl, { token, mode: 'auto' });
  t.teardown(close);
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'modern' } })).content, [{ type: 'text', text: 'echo: modern' }]);
  const denied = await client.callTool({ name: 'delete_everything', arguments: {} }).catch((err: unknown) => err);
  t.match(denied, { code: -32602 }, 'the v2 client gets the JSON-RPC error in band');

  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
  const modern = (name: string) => ({ jsonrpc: '2.0', id: 'm1', method: 'tools/call', params: { name, arguments: { message: 'x' }, _meta: meta } });
  const before = upstream.requests.length;
  const spoofed = await send(proxy.mcpUrl, { token, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, body: modern('delete_everything') });
  t.equal(spoofed.status, 400);
  t.equal(spoofed.rpcCode, -32020, 'HeaderMismatch');
  const wrongMethod = await send(proxy.mcpUrl, { token, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' }, body: modern('echo') });
  t.equal(wrongMethod.rpcCode, -32020);
  const nameOnList = await send(proxy.mcpUrl, { token, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list', 'mcp-name': 'echo' }, body: { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: meta } } });
  t.equal(nameOnList.rpcCode, -32020, 'a name on a method that names nothing');
  t.equal(upstream.requests.length, before, 'nothing forwarded');
  t.same(proxy.logs.events('policy.denied').filter((e) => e.code === 'HEADER_MISMATCH'), [], 'refused before any decision');
  t.equal(proxy.logs.events('request.refused').filter((e) => e.code === 'HEADER_MISMATCH').length, 3);
  const encoded = await send(proxy.mcpUrl, { token, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` }, body: modern('echo') });
  t.equal(encoded.status, 200, 'a base64-encoded name that matches passes');
  const fenced = await send(proxy.mcpUrl, { token, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'resources/read', 'mcp-name': 'file:///etc/passwd' }, body: { jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'file:///etc/passwd', _meta: meta } } });
  t.equal(fenced.rpcCode, -32602);
  t.match(JSON.parse(fenced.text), { error: { message: 'Unknown resource: file:///etc/passwd' }, id: 3 });
});

t.test('no policy: no authorize stage, a request inside a session is forwarded unread', async (t) => {
  const { proxy } = await startStack(t);
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  t.same((await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).content, [{ type: 'text', text: '3' }]);
  t.same(proxy.logs.events('policy.denied'), []);
});

t.test('reloadPolicy: a bad policy keeps the old one and lists every problem; a good one applies to the next request', async (t) => {
  const { proxy } = await startStack(t, { policy: POLICY });
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  const bad = proxy.warden.reloadPolicy({ default: 'maybe', rules: [{ id: 'x', effect: 'allow', tool: ['add'] }] });
  t.same(!bad.ok && bad.problems.map((p) => p.path).sort(), ['policy.default', 'policy.rules[0].tool']);
  t.match(proxy.logs.events('policy.reload_failed')[0], { problems: ['policy.default: must be "allow" or "deny"', 'policy.rules[0].tool: is not a known key'] });
  t.match(await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }).catch((e: unknown) => e), { code: -32602 }, 'still the old policy');
  t.same(proxy.warden.reloadPolicy({ default: 'allow', rules: [] }), { ok: true, rules: 0 });
  t.same((await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).content, [{ type: 'text', text: '3' }], 'the new policy');
  t.equal(proxy.logs.events('policy.reloaded').length, 1);
  t.notOk(proxy.warden.reloadPolicy(null).ok, 'removing the policy needs a restart');
});

t.test('SIGHUP path: the policy section is read from the config file again', async (t) => {
  const { proxy } = await startStack(t, { policy: POLICY });
  const dir = mkdtempSync(join(tmpdir(), 'mcpw-policy-'));
  const file = join(dir, 'proxy.json');
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  writeFileSync(file, '{ "policy": ');
  t.equal(await reloadPolicyFrom(file, proxy.warden), false, 'not JSON');
  t.equal(await reloadPolicyFrom(join(dir, 'absent.json'), proxy.warden), false, 'no file');
  t.equal(await reloadPolicyFrom(null, proxy.warden), false, 'started without a file');
  writeFileSync(file, JSON.stringify({ policy: { default: 'allow', rules: [{ id: 'no-echo', effect: 'deny', tools: ['echo'], arguments: [{ pointer: 'message', prefix: 'x' }] }] } }));
  t.equal(await reloadPolicyFrom(file, proxy.warden), false, 'a bad pointer');
  const failures = proxy.logs.events('policy.reload_failed');
  t.equal(failures.length, 4);
  t.match(failures[3], { problems: ['policy.rules[0].arguments[0].pointer: must be a JSON pointer such as "/path" (RFC 6901)'] });
  t.match(await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } }).catch((e: unknown) => e), { code: -32602 }, 'the old policy still holds');
  writeFileSync(file, JSON.stringify({ listen: { port: 1 }, policy: { default: 'allow', rules: [{ id: 'no-echo', effect: 'deny', tools: ['echo'] }] } }));
  t.equal(await reloadPolicyFrom(file, proxy.warden), true);
  t.same((await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })).content, [{ type: 'text', text: '2' }]);
  t.match(await client.callTool({ name: 'echo', arguments: { message: 'x' } }).catch((e: unknown) => e), { code: -32602 });
});

t.test('audit and metrics: tool.called per allowed call, decisions counted with bounded tool labels', async (t) => {
  const { proxy } = await startStack(t, { policy: POLICY, log: { level: 'info', toolCalls: true } });
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  await client.callTool({ name: 'echo', arguments: { message: 'top secret words' } });
  await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }).catch(() => {});
  await client.callTool({ name: 'x'.repeat(100), arguments: {} }).catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 50));
  const called = proxy.logs.events('tool.called');
  t.equal(called.length, 1, 'only the allowed call');
  t.match(called[0], { principal: 'alice', name: 'echo', status: 200, arguments: /^[A-Za-z0-9_-]{16}$/, session: /^[A-Za-z0-9_-]+$/ });
  t.type(called[0]?.ms, 'number');
  t.notMatch(proxy.logs.text(), /top secret words/);
  const text = await proxy.warden.metrics.registry.metrics();
  t.match(text, /mcp_warden_policy_decisions_total\{method="tools\/call",decision="allow",tool="echo"\} 1/);
  t.match(text, /mcp_warden_policy_decisions_total\{method="tools\/call",decision="deny",tool="other"\} 2/, 'unlisted names are "other"');
  t.notMatch(text, /xxxxxxxx/, 'a client-chosen name never becomes a label');
  t.match(text, /mcp_warden_policy_decisions_total\{method="initialize",decision="allow",tool="none"\} 1/);
});

t.test('log.toolCalls without a policy: the audit alone', async (t) => {
  const { proxy } = await startStack(t, { log: { level: 'info', toolCalls: true } });
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } });
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.match(proxy.logs.events('tool.called'), [{ name: 'add', status: 200 }]);
  t.notMatch(await proxy.warden.metrics.registry.metrics(), /mcp_warden_policy_decisions_total\{/, 'no decisions without a policy');
});

t.test('reload under traffic: a call already past the authorize stage finishes; the next one meets the new policy', async (t) => {
  const { upstream, proxy } = await startStack(t, { policy: { default: 'allow', rules: [] } });
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);
  const gate = upstream.gate();
  const before = upstream.requests.length;
  const inFlight = client.callTool({ name: 'gated', arguments: {} });
  // Wait until the upstream has the call (the gated tool is now waiting on the gate).
  while (upstream.requests.length === before) await new Promise((resolve) => setTimeout(resolve, 10));
  t.same(proxy.warden.reloadPolicy({ default: 'allow', rules: [{ id: 'no-gated', effect: 'deny', tools: ['gated'] }] }), { ok: true, rules: 1 });
  gate.release();
  t.same((await inFlight).content, [{ type: 'text', text: 'done' }], 'the in-flight call was not cut');
  t.match(await client.callTool({ name: 'gated', arguments: {} }).catch((e: unknown) => e), { code: -32602 }, 'the next call is refused');
  t.match(proxy.logs.events('policy.denied'), [{ rule: 'no-gated' }]);
});
