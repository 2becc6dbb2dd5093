/**
 * Forwarding itself, below the whole proxy: the Streamable HTTP transport between a real node:http
 * upstream and a real client connection, with nothing else of the pipeline in the way. Each case
 * watches the upstream's side of the socket (is it paused? did its request end?) as well as what
 * the client gets.
 */
import t from 'tap';
import type { Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createContext } from '../../src/context.js';
import type { RequestContext } from '../../src/context.js';
import { ERROR_CATALOG, WardenError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { createUpstreamAgent, streamableHttp } from '../../src/pipeline/forward.js';
import type { ResponseStage } from '../../src/pipeline/stage.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const CHUNK = Buffer.alloc(64 * 1024, 'x');

async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An upstream answering with `handler`, and a proxy forwarding every request to it through `responseStages`. */
async function setup(t: Test, handler: Handler, responseStages: ResponseStage[] = [], timeoutMs = 5_000) {
  const upstream = http.createServer(handler);
  const upstreamUrl = await listen(upstream);
  const agent = createUpstreamAgent(timeoutMs);
  const transport = streamableHttp({
    upstreamTimeoutMs: timeoutMs, maxBodyBytes: 1 << 20, upstreamHeaders: {}, identityHeaders: { clientId: null, scopes: null, user: null },
    responseStages, stopwatch: () => performance.now(), agent,
  });
  const contexts: RequestContext[] = [];
  const log = createLogger('silent');
  const site = { origin: 'http://proxy.test', resource: 'http://proxy.test/mcp', resourceMetadataUrl: 'http://proxy.test/.well-known/oauth-protected-resource/mcp', issuer: 'http://proxy.test', requiredScope: null };
  const proxy = http.createServer((req, res) => {
    const ctx = createContext(req, res, { id: String(contexts.length), startedAt: Date.now(), receivedMark: 0, log, site });
    ctx.upstream = `${upstreamUrl}/mcp`;
    contexts.push(ctx);
    Promise.resolve(transport.forward(ctx)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(err instanceof WardenError ? ERROR_CATALOG[err.code].status : 500).end();
    });
  });
  // What the proxy hands its client's socket, one entry per write call (a corked batch is one).
  const writes: string[] = [];
  proxy.on('connection', (socket: net.Socket & { _write: Function; _writev: Function }) => {
    const write = socket._write.bind(socket);
    const writev = socket._writev.bind(socket);
    socket._write = (chunk: Buffer | string, encoding: BufferEncoding, cb: () => void) => {
      writes.push(String(chunk));
      return write(chunk, encoding, cb);
    };
    socket._writev = (chunks: { chunk: Buffer | string }[], cb: () => void) => {
      writes.push(chunks.map((c) => String(c.chunk)).join(''));
      return writev(chunks, cb);
    };
  });
  const proxyUrl = await listen(proxy);
  t.teardown(async () => {
    proxy.closeAllConnections();
    upstream.closeAllConnections();
    await agent.destroy();
    proxy.close();
    upstream.close();
  });
  return { proxyUrl, contexts, writes };
}

/**
 * Writes `total` bytes in 64 KiB chunks, going on at every 'drain': only a reader that stops
 * reading holds it back. `written` says how far it got.
 */
function pump(res: http.ServerResponse, total: number): { written: number } {
  const state = { written: 0 };
  const go = (): void => {
    while (state.written < total) {
      state.written += CHUNK.length;
      if (!res.write(CHUNK)) {
        res.once('drain', go);
        return;
      }
    }
    res.end();
  };
  go();
  return state;
}

/** Waits until `state.written` stops moving: every buffer between the upstream and its reader is full. */
async function settled(state: { written: number }): Promise<number> {
  let last = -1;
  while (last !== state.written) {
    last = state.written;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return last;
}

/** Resolves true when `emitter` emits `event` within `ms`, false otherwise. */
async function within(emitter: NodeJS.EventEmitter, event: string, ms: number): Promise<boolean> {
  const timer = new Promise<false>((resolve) => setTimeout(resolve, ms, false).unref());
  // A listener, not events.once: that rejects on 'error', which a cut response emits before 'close'.
  return Promise.race([new Promise<true>((resolve) => emitter.once(event, () => resolve(true))), timer]);
}

function get(url: string): http.ClientRequest {
  return http.get(url, { agent: false });
}

t.test('hold: while a response stage runs, nothing reaches the client and the upstream is paused', async (t) => {
  const total = 64 << 20;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let stageRan = false;
  let state: { written: number } | null = null;
  const { proxyUrl } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    state = pump(res, total);
  }, [async () => {
    stageRan = true;
    await gate;
  }]);
  const req = get(`${proxyUrl}/mcp`);
  let responded = false;
  const response = once(req, 'response').then(([res]) => {
    responded = true;
    return res as http.IncomingMessage;
  });
  while (state === null) await new Promise((resolve) => setTimeout(resolve, 10));
  const written = await settled(state);
  // What the two sockets hold plus HOLD_BYTES, not the body: the proxy stopped reading.
  t.ok(written < 16 << 20, `the upstream is held back while the stage runs (${written >> 10} KiB of ${total >> 20} MiB written)`);
  t.ok(stageRan, 'the stage is running');
  t.equal(responded, false, 'the client has no response head yet');

  release();
  const res = await response;
  t.equal(res.statusCode, 200);
  let received = 0;
  res.on('data', (chunk: Buffer) => (received += chunk.length));
  await once(res, 'end');
  t.equal(received, total, 'the whole body arrives once the stage is done');
});

t.test('hold: a stage may read a small body before anything is sent, and replace it', async (t) => {
  const { proxyUrl } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"a":');
    setTimeout(() => res.end('1}'), 50);
  }, [async (ctx) => {
    const response = ctx.response;
    if (!response) throw new Error('no response');
    const body = await response.readBody(1024);
    response.body = Buffer.from(JSON.stringify({ seen: String(body) }));
  }]);
  const res = await fetch(`${proxyUrl}/mcp`);
  t.same(await res.json(), { seen: '{"a":1}' }, 'the stage saw the whole body and its answer went out');
});

t.test('pipe: a body streams to the client before the upstream finished it', async (t) => {
  let finish!: () => void;
  const { proxyUrl } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('first part;');
    finish = () => res.end('last part');
  });
  const res = (await once(get(`${proxyUrl}/mcp`), 'response'))[0] as http.IncomingMessage;
  t.equal(res.statusCode, 200);
  const first = await Promise.race([once(res, 'data').then(([chunk]) => String(chunk)), new Promise<null>((resolve) => setTimeout(resolve, 2_000, null).unref())]);
  t.equal(first, 'first part;', 'the first part arrived while the upstream still held its response open');
  if (first === null) return;
  let rest = '';
  res.on('data', (chunk: Buffer) => (rest += String(chunk)));
  finish();
  await once(res, 'end');
  t.equal(rest, 'last part');
});

t.test('event stream: a first event that came with the head leaves with it in one write', async (t) => {
  const { proxyUrl, writes } = await setup(t, (_req, res) => {
    // Head and first event in one write from the upstream, as an SSE server that answers at once does.
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
  });
  const res = (await once(get(`${proxyUrl}/mcp`), 'response'))[0] as http.IncomingMessage;
  t.equal(res.statusCode, 200);
  const [chunk] = await once(res, 'data');
  t.match(String(chunk), /data: first/);
  const carrying = writes.find((w) => w.includes('data: first'));
  t.ok(carrying?.startsWith('HTTP/1.1 200'), 'the head and the event went to the socket in one write, not two');
  res.destroy();
});

t.test('event stream: a head without an event goes out at once, alone', async (t) => {
  let sendEvent!: () => void;
  const { proxyUrl, writes } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    sendEvent = () => res.write('data: later\n\n');
  });
  const req = get(`${proxyUrl}/mcp`);
  t.ok(await within(req, 'response', 2_000), 'the client has the head while the upstream has sent no event');
  t.equal(writes.length, 1, 'one write: the head');
  t.notOk(writes[0]?.includes('data:'));
  sendEvent();
  await new Promise((resolve) => setTimeout(resolve, 50));
  req.destroy();
});

t.test('cut: an upstream that dies mid-body cuts the client response (never a clean end)', async (t) => {
  let die!: () => void;
  const { proxyUrl } = await setup(t, (_req, res) => {
    // Chunked (no length): a clean end would pass for the whole body.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"partial":');
    die = () => res.socket?.destroy();
  });
  const req = get(`${proxyUrl}/mcp`);
  const res = (await once(req, 'response'))[0] as http.IncomingMessage;
  t.equal(res.statusCode, 200, 'the head went out before the cut');
  await once(res, 'data');
  let ended = false;
  let failure: Error | null = null;
  res.on('end', () => (ended = true));
  res.on('error', (err) => (failure = err));
  req.on('error', (err) => (failure ??= err));
  res.resume();
  const closed = within(res, 'close', 2_000);
  die();
  t.equal(await closed, true, 'the client response closed');
  t.equal(res.complete, false, 'the response is not complete');
  t.equal(ended, false, 'no clean end');
  t.match(failure, { code: 'ECONNRESET' }, 'the client saw its response aborted');
});

t.test('back-pressure: a client that does not read pauses the upstream; memory stays bounded', async (t) => {
  const total = 256 << 20;
  let state: { written: number } | null = null;
  const { proxyUrl, contexts } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    state = pump(res, total);
  });
  const client = net.connect(Number(new URL(proxyUrl).port), '127.0.0.1');
  t.teardown(() => client.destroy());
  client.pause();
  client.write('GET /mcp HTTP/1.1\r\nhost: proxy.test\r\n\r\n');
  while (state === null) await new Promise((resolve) => setTimeout(resolve, 10));
  const written = await settled(state);
  t.ok(written < 64 << 20, `the upstream is held back (${written >> 10} KiB of ${total >> 20} MiB written)`);
  const proxyRes = contexts[0]?.res;
  t.ok(proxyRes !== undefined && proxyRes.writableLength < 4 << 20, `the proxy buffers little for the client (${proxyRes?.writableLength} bytes)`);
});

t.test('abort: a client that leaves mid-stream ends the upstream request promptly', async (t) => {
  let upstreamReq!: http.IncomingMessage;
  let upstreamRes!: http.ServerResponse;
  const { proxyUrl } = await setup(t, (req, res) => {
    upstreamReq = req;
    upstreamRes = res;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"n":1}\n\n');
  });
  const req = get(`${proxyUrl}/mcp`);
  req.on('error', () => {});
  const res = (await once(req, 'response'))[0] as http.IncomingMessage;
  await once(res, 'data');
  const closed = within(upstreamRes, 'close', 2_000);
  req.destroy();
  t.equal(await closed, true, 'the upstream response closed within 2 s');
  t.equal(upstreamReq.socket.destroyed || upstreamRes.writableFinished === false, true, 'the upstream connection was torn down, not finished');
});

t.test('timeout: an upstream that does not answer its head in time is a 504; one that resets is a 502', async (t) => {
  const { proxyUrl } = await setup(t, (req, res) => {
    if (req.headers['x-fault'] === 'reset') res.socket?.destroy();
    // Otherwise: never answers.
  }, [], 200);
  const started = performance.now();
  t.equal((await fetch(`${proxyUrl}/mcp`)).status, 504, 'silent upstream: gateway timeout');
  t.ok(performance.now() - started < 2_000, 'within the upstream timeout, not later');
  t.equal((await fetch(`${proxyUrl}/mcp`, { headers: { 'x-fault': 'reset' } })).status, 502, 'reset upstream: bad gateway');
});

t.test('idle stream: the head carries the proxy headers, and neither it nor its header table stays behind', async (t) => {
  // What an earlier stage (enforce-rate-limit) leaves for the head, set here by a response stage.
  const proxyHeaders: ResponseStage = (ctx) => {
    ctx.responseHeaders = { ratelimit: '"client";r=9;t=60', 'x-from': 'proxy' };
  };
  const { proxyUrl, contexts } = await setup(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'x-from': 'upstream' });
    res.write('data: {"n":1}\n\n');
  }, [proxyHeaders]);
  const req = get(`${proxyUrl}/mcp`);
  const res = (await once(req, 'response'))[0] as http.IncomingMessage;
  await once(res, 'data');
  t.equal(res.headers.ratelimit, '"client";r=9;t=60', 'a proxy header goes out with the head');
  t.equal(res.headers['x-from'], 'upstream', "the upstream's own header wins over the proxy's, as over res.setHeader");
  const ctx = contexts[0] as RequestContext;
  // Each of these would be held for as long as the stream lives (docs/performance.md).
  t.same(ctx.res.getHeaderNames(), [], 'no header table kept on the response');
  t.same(Object.keys(ctx.response?.headers ?? { missing: true }), [], 'the sent head is let go');
  t.ok(ctx.res.rawListeners('close').every((l) => !('listener' in l)), "no once() wrapper on the response's close");
  req.destroy();
});
