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

async function startEverythingSse(t: Test): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, [new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url).pathname, 'sse'], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => void child.kill());
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Server is running on port')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server-everything exited (${code})`)));
  });
  return `http://127.0.0.1:${port}/sse`;
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
