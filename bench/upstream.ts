/**
 * A minimal MCP-like upstream, run as its own process: `node --import tsx bench/upstream.ts <port>`.
 * Plain node:http and no SDK, so it answers as fast as Node can and any time a proxy adds shows
 * up undiluted. Speaks just enough Streamable HTTP for the bench:
 * - POST `initialize`: JSON result plus a fresh `Mcp-Session-Id`;
 * - POST anything else: a small JSON-RPC result echoing the id (202 for notifications);
 *   an unknown session id gets 404 / -32001 like a real server, so a proxy that forwards the
 *   wrong id shows up as errors instead of as fast responses;
 * - GET with `Accept: text/event-stream`: an SSE stream that stays idle, or sends one event at
 *   once when asked (path `/sse-first`, or header `X-Bench-First-Event` since the proxies
 *   forward headers but mcp-warden replaces the path and query with the upstream URL's);
 * - DELETE: ends the session.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { HOST } from './ports.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: upstream.ts <port>\n');
  process.exit(2);
}

const sessions = new Set<string>();
const INITIALIZE_RESULT = {
  protocolVersion: '2025-11-25',
  capabilities: { tools: {}, logging: {} },
  serverInfo: { name: 'bench-upstream', version: '1.0.0' },
};
const FIRST_EVENT = `id: 1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'first' } })}\n\n`;

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function post(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let message: { id?: unknown; method?: unknown };
  try {
    message = JSON.parse(await readBody(req)) as { id?: unknown; method?: unknown };
  } catch {
    return json(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
  }
  const id = message.id ?? null;
  if (message.method === 'initialize') {
    const sessionId = randomUUID();
    sessions.add(sessionId);
    return json(res, 200, { jsonrpc: '2.0', id, result: INITIALIZE_RESULT }, { 'mcp-session-id': sessionId });
  }
  const sessionId = req.headers['mcp-session-id'];
  if (typeof sessionId === 'string' && !sessions.has(sessionId)) {
    return json(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id });
  }
  if (message.id === undefined) {
    res.writeHead(202).end();
    return;
  }
  json(res, 200, { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'ok' }] } });
}

function stream(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  if (req.url?.startsWith('/sse-first') || req.headers['x-bench-first-event'] !== undefined) res.write(FIRST_EVENT);
}

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') return json(res, 200, { status: 'ok' });
  if (req.method === 'POST') {
    post(req, res).catch(() => res.destroy());
    return;
  }
  if (req.method === 'GET' && String(req.headers.accept ?? '').includes('text/event-stream')) return stream(req, res);
  if (req.method === 'DELETE') {
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') sessions.delete(sessionId);
    res.writeHead(200).end();
    return;
  }
  json(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed' }, id: null });
});
// The proxies keep idle upstream sockets between measurements; Node's default 5 s would close
// them under the agents' feet and turn a quiet pause into connection-reset errors.
server.keepAliveTimeout = 65_000;
server.listen(port, HOST);

// Exit with the parent (the bench run), even when it was SIGKILLed and could not clean up.
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.once('SIGTERM', () => process.exit(0));
