/**
 * Slow and oversized clients against a real proxy: slowloris headers, trickled bodies, oversized
 * header blocks, streamed oversized bodies, and too many concurrent GET streams. Raw `net`
 * sockets where a well-behaved HTTP client could not misbehave on purpose.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startWarden } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const ACCEPT = 'application/json, text/event-stream';
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Seen {
  method: string;
  bytes: number;
  /** 'complete' when the whole body arrived, 'cut' when the request was aborted first. */
  outcome: 'pending' | 'complete' | 'cut';
}

/** A raw upstream: answers initialize with a session id, serves endless SSE on GET, records bodies. */
async function recordingUpstream(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const entry: Seen = { method: req.method ?? '', bytes: 0, outcome: 'pending' };
    seen.push(entry);
    req.on('data', (chunk: Buffer) => (entry.bytes += chunk.length));
    req.once('end', () => {
      entry.outcome = 'complete';
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.flushHeaders();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'upstream-1' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    req.once('close', () => {
      if (entry.outcome === 'pending') entry.outcome = 'cut';
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A raw client socket: what it received, and when (ms after connecting) it was closed. */
function rawClient(proxy: TestWarden): { socket: net.Socket; received: () => string; closedAfter: Promise<number> } {
  const { port } = new URL(proxy.url);
  const started = Date.now();
  const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  socket.on('error', () => {});
  const closedAfter = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  return { socket, received: () => data, closedAfter };
}

/** Keeps writing `line()` every `everyMs` until the socket closes or `maxMs` passes. */
async function trickle(socket: net.Socket, line: () => string, everyMs: number, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  while (!socket.destroyed && Date.now() < until) {
    socket.write(line());
    await sleep(everyMs);
  }
}

/** Requests /healthz every 100 ms while `busy` runs: the proxy must keep serving others. */
async function whileServing(proxy: TestWarden, busy: Promise<unknown>): Promise<number[]> {
  const statuses: number[] = [];
  let done = false;
  void busy.finally(() => (done = true));
  while (!done) {
    statuses.push((await fetch(`${proxy.url}/healthz`, { signal: AbortSignal.timeout(1_000) }).catch(() => ({ status: 0 }))).status);
    await sleep(100);
  }
  return statuses;
}

const auth = async (proxy: TestWarden) => `Bearer ${await proxy.token()}`;

t.test('slowloris: header lines trickled forever are cut after headersTimeout, others are still served', async (t) => {
  const proxy = await startWarden({ security: { headersTimeout: 500, requestTimeout: 1_000 } });
  t.teardown(() => proxy.close());
  const lorises = Array.from({ length: 10 }, () => rawClient(proxy));
  for (const { socket } of lorises) socket.write('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  let n = 0;
  const trickling = Promise.all(lorises.map(({ socket }) => trickle(socket, () => `X-Slow-${n++}: a\r\n`, 100, 5_000)));
  const served = await whileServing(proxy, Promise.all(lorises.map((l) => l.closedAfter)));
  await trickling;
  const closed = await Promise.all(lorises.map((l) => l.closedAfter));
  t.ok(closed.every((ms) => ms >= 450 && ms < 2_500), `every slow header block was cut after ~500 ms (${Math.min(...closed)}-${Math.max(...closed)} ms), not after 5 s`);
  t.ok(lorises.every((l) => l.received() === '' || l.received().startsWith('HTTP/1.1 408')), 'each got a 408 or a bare close');
  t.ok(served.length >= 3 && served.every((s) => s === 200), `/healthz answered 200 throughout (${served.length} checks)`);
});

t.test('a body trickled slower than requestTimeout is cut, with or without a session, and nothing of it is forwarded', async (t) => {
  const upstream = await recordingUpstream();
  const proxy = await startWarden({ upstreams: [upstream.url], security: { headersTimeout: 300, requestTimeout: 800 } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const bearer = await auth(proxy);
  const init = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: bearer, 'content-type': 'application/json', accept: ACCEPT }, body: JSON.stringify(INIT) });
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  await init.text();

  const head = (extra: string) => `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${bearer}\r\nContent-Type: application/json\r\nAccept: ${ACCEPT}\r\nContent-Length: 2000\r\n${extra}\r\n`;
  const before = upstream.seen.length;
  const readByProxy = rawClient(proxy);
  // In a session too: every POST body is read (bounded) before anything goes upstream.
  const streamed = rawClient(proxy);
  readByProxy.socket.write(head(''));
  streamed.socket.write(head(`Mcp-Session-Id: ${sessionId}\r\nMCP-Protocol-Version: 2025-11-25\r\n`));
  const trickling = Promise.all([readByProxy, streamed].map(({ socket }) => trickle(socket, () => ' ', 100, 5_000)));
  const served = await whileServing(proxy, Promise.all([readByProxy.closedAfter, streamed.closedAfter]));
  await trickling;
  for (const [name, c] of [['session-less body', readByProxy], ['session body', streamed]] as const) {
    const ms = await c.closedAfter;
    t.ok(ms >= 750 && ms < 3_000, `${name}: connection cut after ${ms} ms (requestTimeout 800 ms)`);
    t.ok(!/^HTTP\/1\.1 [25]/.test(c.received()), `${name}: no success and no 5xx, got ${JSON.stringify(c.received().split('\r\n')[0])}`);
  }
  t.ok(served.every((s) => s === 200), 'others were served meanwhile');
  await sleep(50);
  const forwarded = upstream.seen.slice(before);
  t.same(forwarded, [], 'neither body reached the upstream');
  t.same(proxy.logs.lines.filter((l) => l.level === 'error').map((l) => l.msg), [], 'a client timing out is not logged as a proxy error');
});

t.test('a header block over maxHeaderBytes gets 431', async (t) => {
  const proxy = await startWarden({ security: { maxHeaderBytes: 4_096 } });
  t.teardown(() => proxy.close());
  const big = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: await auth(proxy), 'x-pad': 'p'.repeat(8_000) }, body: '{}' });
  t.equal(big.status, 431);
  const small = await fetch(proxy.mcpUrl, { method: 'POST', headers: { 'x-pad': 'p'.repeat(2_000) }, body: '{}' });
  t.equal(small.status, 401, 'a header block under the cap reaches the pipeline');
  t.equal((await fetch(`${proxy.url}/healthz`)).status, 200);
});

t.test('a streamed body over maxBodyBytes gets 413 before the client finished sending; nothing of it is forwarded', async (t) => {
  const upstream = await recordingUpstream();
  const proxy = await startWarden({ upstreams: [upstream.url], security: { maxBodyBytes: 2_048 } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const bearer = await auth(proxy);
  const init = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: bearer, 'content-type': 'application/json', accept: ACCEPT }, body: JSON.stringify(INIT) });
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  await init.text();
  const before = upstream.seen.length;

  /** Sends 1.5 KiB, then 1.5 KiB more (past the cap), then waits for an answer before offering 10 MiB more. */
  const oversized = (headers: Record<string, string>) =>
    new Promise<{ status: number; answeredBeforeEnd: boolean; sentBytes: number }>((resolve, reject) => {
      let sentBytes = 0;
      let ended = false;
      const req = http.request(proxy.mcpUrl, { method: 'POST', agent: false, headers: { authorization: bearer, 'content-type': 'application/json', accept: ACCEPT, ...headers } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, answeredBeforeEnd: !ended, sentBytes });
      });
      req.on('error', reject);
      req.write(Buffer.alloc(1_536, ' '));
      sentBytes += 1_536;
      // Give the proxy time to act on what it has (it must answer 413 before the client ends).
      setTimeout(() => {
        req.write(Buffer.alloc(1_536, ' '));
        sentBytes += 1_536;
      }, 100);
      setTimeout(() => {
        // Only reached if no answer came: offer the rest (the proxy would have to buffer it all).
        for (let i = 0; i < 160 && !req.destroyed; i++) {
          req.write(Buffer.alloc(64 * 1024, ' '));
          sentBytes += 64 * 1024;
        }
        ended = true;
        req.end();
      }, 1_000);
    });
  const sessionLess = await oversized({});
  t.match(sessionLess, { status: 413, answeredBeforeEnd: true, sentBytes: 3_072 }, 'session-less (read to look for initialize): 413 after the first 3 KiB');
  t.equal(upstream.seen.length, before, 'nothing of it was forwarded');
  const inSession = await oversized({ 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });
  t.match(inSession, { status: 413, answeredBeforeEnd: true, sentBytes: 3_072 }, 'in a session: 413 after the first 3 KiB');
  await sleep(50);
  t.same(upstream.seen.slice(before), [], 'nothing of either body reached the upstream: a body is read whole (bounded) before it is forwarded');
});

t.test('concurrent GET streams per client are capped: N open, N+1 → 429 STREAM_LIMIT, closing one frees a slot', async (t) => {
  const upstream = await recordingUpstream();
  const proxy = await startWarden({ upstreams: [upstream.url], sessions: { maxStreams: 3 } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const alice = await auth(proxy);
  const open = (bearer: string) => {
    const abort = new AbortController();
    return fetch(proxy.mcpUrl, { headers: { authorization: bearer, accept: 'text/event-stream' }, signal: abort.signal }).then((res) => ({ res, close: () => abort.abort() }));
  };
  const streams = await Promise.all([open(alice), open(alice), open(alice)]);
  t.same(streams.map((s) => s.res.status), [200, 200, 200], 'N = 3 streams open');
  t.teardown(() => streams.forEach((s) => s.close()));
  const fourth = await open(alice);
  t.equal(fourth.res.status, 429, 'stream N+1 is refused');
  t.ok(Number(fourth.res.headers.get('retry-after')) >= 1, 'with Retry-After');
  t.match(await fourth.res.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Too many open streams' } });
  t.match(proxy.logs.events('rate.limited').at(-1), { code: 'STREAM_LIMIT', reason: 'streams' });
  const bob = await open(`Bearer ${await proxy.token('bob')}`);
  t.equal(bob.res.status, 200, 'the cap is per client: another client still gets a stream');
  bob.close();

  streams[0]?.close();
  let again = await open(alice);
  for (let i = 0; i < 20 && again.res.status !== 200; i++) {
    await sleep(25); // the slot frees when the proxy sees the close
    again = await open(alice);
  }
  t.equal(again.res.status, 200, 'closing one stream frees a slot');
  streams.push(again);
  t.equal((await open(alice)).res.status, 429, 'and the cap holds again');
});
