/**
 * A real MCP upstream (official SDK v1, Streamable HTTP on plain node:http).
 * Used by the demo and by the integration tests as the server behind the proxy,
 * so it records every HTTP request it sees and offers tools that exercise
 * streaming (progress, log notifications, a gate that proves nothing is buffered)
 * and identity forwarding (whoami).
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

export interface DemoServerOptions {
  port?: number;
  host?: string;
  stateless?: boolean;
  jsonResponse?: boolean;
  onRequest?: (rec: RecordedRequest) => void;
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface DemoServer {
  url: string;
  port: number;
  requests: RecordedRequest[];
  sessionIds(): string[];
  gate(): { release(): void };
  close(): Promise<void>;
}

const MCP_PATH = '/mcp';

/** Releases that arrive before any `gated` call is waiting are banked, so test order does not matter. */
function createGate() {
  const waiters: Array<() => void> = [];
  let credits = 0;
  return {
    wait(): Promise<void> {
      if (credits > 0) {
        credits--;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    handle(): { release(): void } {
      let used = false;
      return {
        release() {
          if (used) return;
          used = true;
          const next = waiters.shift();
          if (next) next();
          else credits++;
        },
      };
    },
  };
}

type Gate = ReturnType<typeof createGate>;

const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function createMcpServer(gate: Gate): McpServer {
  // logging capability is required, otherwise notifications/message from a tool is refused.
  const server = new McpServer({ name: 'mcp-warden-demo-upstream', version: '1.0.0' }, { capabilities: { logging: {} } });

  server.registerTool('echo', { description: 'Echo a message back', inputSchema: { message: z.string() } },
    async ({ message }) => text(`echo: ${message}`));

  server.registerTool('add', { description: 'Add two numbers', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => text(String(a + b)));

  server.registerTool('countdown', {
    description: 'Count down, sending progress and log notifications for each step',
    inputSchema: {
      from: z.number().int().min(1).max(20).default(3),
      delayMs: z.number().int().min(0).max(5000).default(0),
    },
  }, async ({ from, delayMs }, extra) => {
    // The client only gets progress if it asked for it (SDK clients set the token when onprogress is given).
    const progressToken = extra._meta?.progressToken;
    for (let i = 1; i <= from; i++) {
      if (i > 1 && delayMs > 0) await sleep(delayMs);
      const remaining = from - i;
      if (progressToken !== undefined) {
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress: i, total: from, message: `T-${remaining}` },
        });
      }
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: `tick ${i}` } });
    }
    return text('liftoff');
  });

  server.registerTool('gated', { description: 'Log "first", wait for the test to open the gate, log "second"' },
    async (extra) => {
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'first' } });
      await gate.wait();
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'second' } });
      return text('done');
    });

  server.registerTool('whoami', { description: 'Report the identity headers this upstream received' },
    async (extra) => {
      // requestInfo.headers is built from a WHATWG Headers object: keys are lower-case, repeats joined by ", ".
      const h = extra.requestInfo?.headers ?? {};
      return text(JSON.stringify({
        clientId: h['x-mcp-client-id'] ?? null,
        scopes: h['x-mcp-scopes'] ?? null,
        authorization: h['authorization'] ?? null,
      }));
    });

  return server;
}

function sendJsonRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

class BadJson extends Error {}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadJson('Parse error');
  }
}

export async function startDemoServer(opts: DemoServerOptions = {}): Promise<DemoServer> {
  const host = opts.host ?? '127.0.0.1';
  const gate = createGate();
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  // Stateless transports live for one request; tracked only so close() can end in-flight streams.
  const inflight = new Set<StreamableHTTPServerTransport>();
  const requests: RecordedRequest[] = [];

  async function handleStateless(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      sendJsonRpcError(res, 405, -32000, 'Method not allowed.');
      return;
    }
    const body = await readJsonBody(req);
    // A stateless transport throws if reused, so every request gets its own transport and server.
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: opts.jsonResponse ?? false,
    });
    const server = createMcpServer(gate);
    inflight.add(transport);
    res.on('close', () => {
      inflight.delete(transport);
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function handleStateful(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const header = req.headers['mcp-session-id'];
    const sid = Array.isArray(header) ? header[0] : header;
    const body = req.method === 'POST' ? await readJsonBody(req) : undefined;
    let transport = sid ? sessions.get(sid) : undefined;

    if (!transport && sid) {
      sendJsonRpcError(res, 404, -32001, 'Session not found');
      return;
    }
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        sendJsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
        return;
      }
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: opts.jsonResponse ?? false,
        onsessioninitialized: (id) => { sessions.set(id, created); },
        onsessionclosed: (id) => { sessions.delete(id); },
      });
      created.onclose = () => { if (created.sessionId) sessions.delete(created.sessionId); };
      await createMcpServer(gate).connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  }

  const httpServer = http.createServer((req, res) => {
    const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } };
    requests.push(rec);
    opts.onRequest?.(rec);

    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== MCP_PATH) {
      sendJsonRpcError(res, 404, -32000, 'Not found');
      return;
    }
    const handler = opts.stateless ? handleStateless : handleStateful;
    handler(req, res).catch((err: unknown) => {
      if (err instanceof BadJson) sendJsonRpcError(res, 400, -32700, 'Parse error');
      else sendJsonRpcError(res, 500, -32603, `Internal error: ${(err as Error)?.message ?? String(err)}`);
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port ?? 0, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}${MCP_PATH}`,
    port,
    requests,
    sessionIds: () => [...sessions.keys()],
    gate: () => gate.handle(),
    async close() {
      const all = [...sessions.values(), ...inflight];
      sessions.clear();
      inflight.clear();
      await Promise.allSettled(all.map((t) => t.close()));
      const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeAllConnections();
      await closed;
    },
  };
}
