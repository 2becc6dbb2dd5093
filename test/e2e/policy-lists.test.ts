/**
 * Lists filtered to match the policy: real SDK upstreams answering in SSE and in JSON, v1 and v2
 * clients, and a raw upstream for pagination, progress events flowing first, and bodies that
 * cannot be checked (fail closed).
 */
import t from 'tap';
import type { Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient } from '../fixtures/mcp-client.js';
import { connectV2Client, startV2Server } from '../fixtures/mcp-v2.js';
import { rawUpstream, send } from '../fixtures/session-http.js';
import { startStack } from '../fixtures/stack.js';
import { startWarden } from '../fixtures/warden.js';

const POLICY = {
  default: 'deny',
  rules: [
    { id: 'tools', effect: 'allow', tools: ['echo', 'countdown', 'whoami'] },
    { id: 'step-up', effect: 'deny', tools: ['countdown'], unlessScopes: ['extra'] },
    { id: 'no-whoami', effect: 'deny', when: { clients: ['bob'] }, tools: ['whoami'] },
  ],
};

for (const jsonResponse of [false, true]) {
  t.test(`v1 SDK client, ${jsonResponse ? 'JSON' : 'SSE'} answers: tools/list shows what the caller may use`, async (t) => {
    const { upstream, proxy } = await startStack(t, { policy: POLICY }, { upstream: { jsonResponse } });
    const alice = await connectClient(proxy.mcpUrl, { token: await proxy.token('alice') });
    t.teardown(alice.close);
    t.same((await alice.client.listTools()).tools.map((x) => x.name).sort(), ['countdown', 'echo', 'whoami'], 'add and gated are hidden; a step-up tool is listed');
    const bob = await connectClient(proxy.mcpUrl, { token: await proxy.token('bob') });
    t.teardown(bob.close);
    t.same((await bob.client.listTools()).tools.map((x) => x.name).sort(), ['countdown', 'echo'], 'per-caller');
    t.ok(upstream.requests.length > 0);
  });
}

t.test('v2 SDK client (2026-07-28) against a v2 upstream: the list is filtered too', async (t) => {
  const upstream = await startV2Server();
  const proxy = await startWarden({ upstreams: [upstream.url], policy: { default: 'deny', rules: [{ id: 'other', effect: 'allow', tools: ['other'] }] } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const { client, close } = await connectV2Client(proxy.mcpUrl, { token: await proxy.token(), mode: 'auto' });
  t.teardown(close);
  t.same((await client.listTools()).tools, [], 'echo is hidden');
  const open = await startWarden({ upstreams: [upstream.url], policy: { default: 'allow', rules: [] } });
  t.teardown(() => open.close());
  const c2 = await connectV2Client(open.mcpUrl, { token: await open.token(), mode: 'auto' });
  t.teardown(c2.close);
  t.same((await c2.client.listTools()).tools.map((x) => x.name), ['echo'], 'and shown when allowed');
});

/** A stateless upstream that answers lists in pages, over SSE (a progress notification first) or JSON. */
async function pagedUpstream(t: Test, mode: { sse: boolean; broken?: 'json' | 'result' | 'huge' }) {
  const pages: Record<string, { tools: unknown[]; nextCursor?: string }> = {
    '': { tools: [{ name: 'echo' }, { name: 'delete_all' }, { name: 7 }, 'x', { name: 'file_read' }], nextCursor: 'p2' },
    p2: { tools: [{ name: 'delete_more' }, { name: 'echo2' }] },
  };
  const upstream = await rawUpstream((req, res, body) => {
    const message = JSON.parse(body) as { id: number; method: string; params?: { cursor?: string } };
    if (message.method === 'resources/list') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { resources: [{ uri: 'file:///etc/passwd', name: 'p' }, { uri: 'file:///srv/a', name: 'a' }, { uri: 'file:///srv/../etc/shadow', name: 's' }] } }));
      return;
    }
    const page = pages[message.params?.cursor ?? ''] ?? { tools: [] };
    let result: unknown = { ...page };
    if (mode.broken === 'result') result = 'not an object';
    const reply = JSON.stringify({ jsonrpc: '2.0', id: message.id, result });
    if (!mode.sse) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(mode.broken === 'json' ? '{"jsonrpc":"2.0",' : reply);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`: keep-alive\n\nid: e1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`);
    // The result comes later, in two pieces: the progress event must not wait for it.
    setTimeout(() => {
      const text = mode.broken === 'json' ? 'data: {"jsonrpc":"2.0",\n\n' : `id: e2\ndata: ${reply}\n\n`;
      res.write(text.slice(0, 10));
      setTimeout(() => res.end(text.slice(10)), 20);
    }, 150);
  });
  t.teardown(() => upstream.close());
  return upstream;
}

const LIST_POLICY = { default: 'allow', rules: [{ id: 'no-deletes', effect: 'deny', tools: ['delete_*'] }, { id: 'fence', effect: 'deny', resources: ['file:///etc/*'] }] };
const list = (cursor?: string) => ({ jsonrpc: '2.0', id: 11, method: 'tools/list', params: cursor ? { cursor } : {} });

for (const sse of [true, false]) {
  t.test(`pagination over ${sse ? 'SSE' : 'JSON'}: every page filtered, cursors kept, items that cannot be judged dropped`, async (t) => {
    const upstream = await pagedUpstream(t, { sse });
    const proxy = await startWarden({ upstreams: [upstream.url], policy: LIST_POLICY });
    t.teardown(() => proxy.close());
    const token = await proxy.token();
    const first = await send(proxy.mcpUrl, { token, body: list() });
    t.equal(first.status, 200);
    const result = first.messages.find((m) => m.id === 11)?.result as { tools: { name: string }[]; nextCursor?: string };
    t.same(result.tools, [{ name: 'echo' }, { name: 'file_read' }]);
    t.equal(result.nextCursor, 'p2');
    const second = await send(proxy.mcpUrl, { token, body: list('p2') });
    t.same(second.messages.find((m) => m.id === 11)?.result, { tools: [{ name: 'echo2' }] });
    if (sse) {
      t.ok(first.messages.some((m) => m.method === 'notifications/progress'), 'other events pass');
      t.match(first.text, /^: keep-alive\n\nid: e1\n/, 'comments and event ids are kept');
      t.match(first.text, /id: e2\ndata: /);
    }
    const resources = await send(proxy.mcpUrl, { token, body: { jsonrpc: '2.0', id: 12, method: 'resources/list' } });
    t.same((resources.messages[0]?.result as { resources: { uri: string }[] }).resources.map((r) => r.uri), ['file:///srv/a'], 'fenced and ambiguous URIs are hidden');
  });
}

t.test('SSE: a progress event reaches the client before the list result arrives (no buffering)', async (t) => {
  const upstream = await pagedUpstream(t, { sse: true });
  const proxy = await startWarden({ upstreams: [upstream.url], policy: LIST_POLICY });
  t.teardown(() => proxy.close());
  const res = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: `Bearer ${await proxy.token()}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' }, body: JSON.stringify(list()) });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const started = Date.now();
  let seen = '';
  while (!seen.includes('notifications/progress')) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  t.ok(seen.includes('notifications/progress') && !seen.includes('"tools"'), 'the progress event came alone');
  t.ok(Date.now() - started < 140, 'before the upstream sent the result');
  await reader.cancel();
});

for (const [name, mode] of [['SSE event that is not JSON', { sse: true, broken: 'json' }], ['JSON body that is not JSON', { sse: false, broken: 'json' }], ['list result that is not an object', { sse: false, broken: 'result' }]] as const) {
  t.test(`fail closed: ${name}`, async (t) => {
    const upstream = await pagedUpstream(t, mode);
    const proxy = await startWarden({ upstreams: [upstream.url], policy: LIST_POLICY });
    t.teardown(() => proxy.close());
    const token = await proxy.token();
    if (mode.sse) {
      const res = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' }, body: JSON.stringify(list()) });
      const text = await res.text().catch(() => 'CUT');
      t.notMatch(text, /jsonrpc":"2.0",\n/, 'the unparseable event never reaches the client');
      await sleep(20);
      t.ok(proxy.logs.events('upstream.failed').some((e) => e.reason === 'unparseable'), 'logged');
      return;
    }
    const reply = await send(proxy.mcpUrl, { token, body: list() });
    t.equal(reply.status, 502);
    t.equal(reply.rpcCode, -32000);
    t.match(reply.text, /could not be checked against the policy/);
  });
}

t.test('no policy: list answers pass untouched', async (t) => {
  const upstream = await pagedUpstream(t, { sse: false });
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(() => proxy.close());
  const reply = await send(proxy.mcpUrl, { token: await proxy.token(), body: list() });
  t.equal((reply.messages[0]?.result as { tools: unknown[] }).tools.length, 5);
});
