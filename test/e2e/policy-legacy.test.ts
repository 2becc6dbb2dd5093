/**
 * The policy on the legacy HTTP+SSE transport (2024-11-05): messages posted to the message
 * endpoint are authorized, and list answers, which come back on the event stream, are filtered.
 * Real SDK legacy server (SSEServerTransport) and client (SSEClientTransport).
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
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startWarden } from '../fixtures/warden.js';

async function legacyUpstream(t: Test): Promise<{ url: string; posts: () => number }> {
  const transports = new Map<string, SSEServerTransport>();
  let posts = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res);
      transports.set(transport.sessionId, transport);
      const mcp = new McpServer({ name: 'legacy-upstream', version: '1.0.0' });
      for (const name of ['echo', 'delete_all', 'run_sql']) {
        mcp.registerTool(name, { description: name, inputSchema: { message: z.string() } }, async ({ message }) => ({ content: [{ type: 'text', text: `${name}: ${message}` }] }));
      }
      void mcp.connect(transport);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/messages') {
      posts += 1;
      const transport = transports.get(url.searchParams.get('sessionId') ?? '');
      if (transport) void transport.handlePostMessage(req, res);
      else res.writeHead(404).end();
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sse`, posts: () => posts };
}

t.test('legacy HTTP+SSE client: calls authorized, tools/list filtered on the event stream', async (t) => {
  const upstream = await legacyUpstream(t);
  const proxy = await startWarden({ legacySse: { upstream: upstream.url }, policy: { default: 'allow', rules: [{ id: 'no-deletes', effect: 'deny', tools: ['delete_*'] }, { id: 'sql', effect: 'deny', when: { clients: ['alice'] }, tools: ['run_sql'] }] } });
  t.teardown(() => proxy.close());
  const token = await proxy.token();
  const withToken: typeof fetch = (input, init) => fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), authorization: `Bearer ${token}` } });
  const transport = new SSEClientTransport(new URL(`${proxy.url}/sse`), { eventSourceInit: { fetch: withToken }, requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'legacy-client', version: '1.0.0' });
  await client.connect(transport);
  t.teardown(() => client.close());

  t.same((await client.listTools()).tools.map((x) => x.name), ['echo'], 'filtered on the stream');
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).content, [{ type: 'text', text: 'echo: x' }]);
  const before = upstream.posts();
  const denied = await client.callTool({ name: 'delete_all', arguments: { message: 'x' } }).catch((err: unknown) => err);
  t.ok(denied instanceof Error && !(denied instanceof McpError && denied.code === -32001), 'refused at once (not a request timeout)');
  t.match(String(denied), /403/);
  t.equal(upstream.posts(), before, 'never posted to the upstream');
  t.match(proxy.logs.events('policy.denied'), [{ name: 'delete_all', rule: 'no-deletes', code: 'LEGACY_MESSAGE_DENIED' }]);
});
