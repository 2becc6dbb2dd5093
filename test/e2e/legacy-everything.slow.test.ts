/**
 * The reference test server, `@modelcontextprotocol/server-everything`, in its legacy `sse` mode
 * behind mcp-warden: a legacy client through `legacySse`, and today's Streamable HTTP clients
 * through the bridge, with what a legacy server asks of its client in the middle of a tool call:
 * sampling and elicitation requests that must reach the client, answers that must reach the
 * server, progress notifications streamed as they happen.
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectV2Client } from '../fixtures/mcp-v2.js';
import { freePort } from '../fixtures/redis.js';
import { startWarden } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

async function startEverythingSse(t: Test, port?: number): Promise<string> {
  return (await spawnEverythingSse(t, port ?? (await freePort()))).url;
}

/** server-everything in `sse` mode on `port`; `stop()` kills it (an upstream that goes away). */
async function spawnEverythingSse(t: Test, port: number): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url).pathname, 'sse'], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => void child.kill());
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Server is running on port')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server-everything exited (${code})`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { url: `http://127.0.0.1:${port}/sse`, stop: async () => {
    child.kill('SIGKILL');
    await exited;
  } };
}

/** A client that can be asked for sampling and elicitation, answering like a person and a model would. */
function capableClient(): { client: Client; asked: string[] } {
  const asked: string[] = [];
  const client = new Client({ name: 'capable', version: '1' }, { capabilities: { sampling: {}, elicitation: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    asked.push('sampling');
    const first = request.params.messages[0]?.content;
    return { role: 'assistant', model: 'test-model', content: { type: 'text', text: `sampled: ${first && 'text' in first ? first.text : ''}` } };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => {
    asked.push('elicitation');
    return { action: 'accept', content: { name: 'Ada Lovelace', check: true } };
  });
  return { client, asked };
}

/** server-everything registers its sampling and elicitation tools once it knows the client can answer. */
async function waitForTool(client: Client, name: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if ((await client.listTools()).tools.some((tool) => tool.name === name)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} never appeared`);
}

const text = (result: unknown): string => ((result as { content?: { type: string; text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('\n');

t.test('bridge: a Streamable HTTP client in front of server-everything (sse): sampling, elicitation and progress cross the proxy both ways', async (t) => {
  const sse = await startEverythingSse(t);
  const proxy: TestWarden = await startWarden({ legacySse: { upstream: sse, bridge: true } });
  t.teardown(() => proxy.close());
  const { client, asked } = capableClient();
  const transport = new StreamableHTTPClientTransport(new URL(proxy.mcpUrl), { requestInit: { headers: { authorization: `Bearer ${await proxy.token('alice')}` } } });
  await client.connect(transport);
  t.teardown(() => client.close());
  t.match(transport.sessionId, /^[A-Za-z0-9_-]{59}$/, 'a proxy session id, never the upstream\'s');
  t.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'legacy' } })), 'Echo: legacy');

  await waitForTool(client, 'trigger-sampling-request');
  const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello', maxTokens: 10 } });
  t.match(text(sampled), /sampled: Resource trigger-sampling-request context: hello/, 'the server\'s sampling request reached the client and its answer reached the server');

  await waitForTool(client, 'trigger-elicitation-request');
  const elicited = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
  t.match(text(elicited), /User provided the requested information[\s\S]*Ada Lovelace/, 'elicitation, both ways');
  t.same(asked, ['sampling', 'elicitation']);

  const progress: number[] = [];
  await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
  t.same(progress, [1, 2, 3, 4], 'progress notifications arrive as they happen');
});

t.test('legacy client: the SDK\'s SSEClientTransport against server-everything through mcp-warden', async (t) => {
  const sse = await startEverythingSse(t);
  const proxy: TestWarden = await startWarden({ legacySse: { upstream: sse } });
  t.teardown(() => proxy.close());
  const token = await proxy.token('alice');
  const { client } = capableClient();
  const transport = new SSEClientTransport(new URL(`${proxy.url}/sse`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
    eventSourceInit: { fetch: (url, init) => fetch(url, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers).entries()), authorization: `Bearer ${token}` } }) },
  });
  await client.connect(transport);
  t.teardown(() => client.close());
  t.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'old' } })), 'Echo: old');
  await waitForTool(client, 'trigger-sampling-request');
  t.match(text(await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } })), /sampled:/, 'sampling over the legacy stream too');
});

t.test('bridge: the v2 SDK client, in both of its modes, against the legacy server', async (t) => {
  const sse = await startEverythingSse(t);
  const proxy: TestWarden = await startWarden({ legacySse: { upstream: sse, bridge: true } });
  t.teardown(() => proxy.close());
  for (const mode of ['auto', 'legacy'] as const) {
    const { client, close } = await connectV2Client(proxy.mcpUrl, { token: await proxy.token('alice'), mode });
    t.teardown(close);
    t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'), `${mode}: tools listed`);
    t.equal(text(await client.callTool({ name: 'echo', arguments: { message: mode } })), `Echo: ${mode}`, `${mode}: a tool call`);
  }
});

/** Raw Streamable HTTP through the bridge: one POST, its SSE (or JSON) body as text. */
async function post(proxy: TestWarden, token: string, sessionId: string | null, body: unknown): Promise<{ status: number; sessionId: string | null; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (sessionId) headers['mcp-session-id'] = sessionId;
  const res = await fetch(proxy.mcpUrl, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, sessionId: res.headers.get('mcp-session-id'), text: await res.text() };
}

/** Progress tokens of the progress notifications in an SSE body. */
const progressTokens = (sse: string): string[] =>
  [...sse.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1] ?? '{}') as { method?: string; params?: { progressToken?: string } })
    .filter((m) => m.method === 'notifications/progress').map((m) => String(m.params?.progressToken));

t.test('bridge: two calls at once each get their own progress notifications, routed by progress token', async (t) => {
  const sse = await startEverythingSse(t);
  const proxy: TestWarden = await startWarden({ legacySse: { upstream: sse, bridge: true } });
  t.teardown(() => proxy.close());
  const token = await proxy.token('alice');
  const init = await post(proxy, token, null, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  t.equal(init.status, 200);
  const sessionId = init.sessionId;
  t.equal((await post(proxy, token, sessionId, { jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202);
  const call = (id: number, progressToken: string, duration: number, steps: number) =>
    post(proxy, token, sessionId, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration, steps }, _meta: { progressToken } } });
  // The first call runs longest: while the second is open (the newest request), the first's
  // progress must still reach the first.
  const first = call(1, 'first', 1.5, 3);
  await new Promise((r) => setTimeout(r, 100));
  const second = call(2, 'second', 1, 2);
  const [a, b] = await Promise.all([first, second]);
  t.same(progressTokens(a.text), ['first', 'first', 'first'], 'the first call got exactly its own progress');
  t.same(progressTokens(b.text), ['second', 'second'], 'the second call got exactly its own');
  t.match(a.text, /"id":1/, 'and its answer');
  t.match(b.text, /"id":2/);
});

const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const ECHO = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: `m${id}` } } });

async function openStreams(proxy: TestWarden): Promise<number> {
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  return Number(/^mcp_warden_open_streams (\d+)/m.exec(text)?.[1] ?? NaN);
}

t.test('bridge: a client that aborts a call mid-stream leaves the session working and nothing open', async (t) => {
  const sse = await startEverythingSse(t);
  const proxy: TestWarden = await startWarden({ legacySse: { upstream: sse, bridge: true } });
  t.teardown(() => proxy.close());
  const token = await proxy.token();
  const { sessionId } = await post(proxy, token, null, INIT);
  await post(proxy, token, sessionId, { jsonrpc: '2.0', method: 'notifications/initialized' });

  const abort = new AbortController();
  const res = await fetch(proxy.mcpUrl, {
    method: 'POST', signal: abort.signal,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId ?? '' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 }, _meta: { progressToken: 'p' } } }),
  });
  const reader = res.body?.getReader();
  let streamed = '';
  while (reader && !streamed.includes('notifications/progress')) {
    const { value, done } = await reader.read();
    if (done) break;
    streamed += Buffer.from(value).toString('utf8');
  }
  t.match(streamed, /notifications\/progress/, 'the call was streaming');
  t.equal(await openStreams(proxy), 1, 'one stream open');
  abort.abort();
  await reader?.cancel().catch(() => {});
  for (let i = 0; i < 50 && (await openStreams(proxy)) !== 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(await openStreams(proxy), 0, 'the aborted stream is closed on the proxy');
  const after = await post(proxy, token, sessionId, ECHO(2));
  t.equal(after.status, 200);
  t.match(after.text, /Echo: m2/, 'the session goes on: the next call is answered');
  // The long operation's late answer (for the aborted request) must not land on the new one.
  t.notMatch(after.text, /"id":1/);
});

t.test('bridge: the upstream restarts: the session ends (404 -32001), a new one works on the new upstream', async (t) => {
  const port = await freePort();
  const first = await spawnEverythingSse(t, port);
  const proxy: TestWarden = await startWarden({ legacySse: { upstream: first.url, bridge: true } });
  t.teardown(() => proxy.close());
  const token = await proxy.token();
  const { sessionId } = await post(proxy, token, null, INIT);
  await post(proxy, token, sessionId, { jsonrpc: '2.0', method: 'notifications/initialized' });
  t.match((await post(proxy, token, sessionId, ECHO(1))).text, /Echo: m1/);

  await first.stop();
  const gone = await post(proxy, token, sessionId, ECHO(2));
  t.equal(gone.status, 404, 'the session went with the upstream');
  t.match(gone.text, /-32001/);

  const second = await spawnEverythingSse(t, port);
  t.teardown(() => second.stop());
  const again = await post(proxy, token, null, INIT);
  t.equal(again.status, 200, 'a new initialize reaches the restarted upstream');
  t.not(again.sessionId, sessionId, 'under a new proxy session id');
  await post(proxy, token, again.sessionId, { jsonrpc: '2.0', method: 'notifications/initialized' });
  t.match((await post(proxy, token, again.sessionId, ECHO(3))).text, /Echo: m3/);
});
