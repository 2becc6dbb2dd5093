/**
 * Redis outage, injected for real: a private redis-server is SIGKILLed under a steady flow of
 * authenticated requests, then started again on the same port. The proxy must fail closed
 * (503 + Retry-After, quickly, never forwarding) and recover by itself.
 */
import t from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { spawnWarden } from '../fixtures/cli.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { redisCommand, startRedis } from '../fixtures/redis.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';

const ACCEPT = 'application/json, text/event-stream';
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Shot {
  readonly kind: 'initialize' | 'session' | 'token';
  readonly marker: string;
  readonly start: number;
  readonly ms: number;
  /** 0 when the request failed or did not answer within 5 s (a hang). */
  readonly status: number;
  readonly retryAfter: string | null;
}

let markers = 0;

/** One request with a marker header (to find it at the upstream) and a 5 s hang detector. */
async function shoot(kind: Shot['kind'], url: string, init: RequestInit & { headers: Record<string, string> }): Promise<Shot> {
  const marker = `shot-${++markers}`;
  const start = Date.now();
  try {
    const res = await fetch(url, { ...init, headers: { ...init.headers, 'x-shot': marker }, signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    return { kind, marker, start, ms: Date.now() - start, status: res.status, retryAfter: res.headers.get('retry-after') };
  } catch {
    return { kind, marker, start, ms: Date.now() - start, status: 0, retryAfter: null };
  }
}

function mcpPost(url: string, token: string, body: unknown, sessionId?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: ACCEPT };
  if (sessionId) Object.assign(headers, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });
  return { method: 'POST', headers, body: JSON.stringify(body) };
}

function tokenRequest(clientId: keyof typeof TEST_CLIENTS = 'bob') {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${TEST_CLIENTS[clientId]}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  };
}

async function initialize(mcpUrl: string, token: string): Promise<{ status: number; sessionId: string | null }> {
  const res = await fetch(mcpUrl, { ...mcpPost(mcpUrl, token, INIT), signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return { status: res.status, sessionId: res.headers.get('mcp-session-id') };
}

t.test('in-process: Redis killed under load → 503 + Retry-After fast, nothing forwarded; Redis back → service resumes', async (t) => {
  const redis = await startRedis();
  const upstream = await startDemoServer();
  const proxy = await startWarden({
    upstreams: [upstream.url],
    store: { type: 'redis', url: redis.url, keyPrefix: 'mcpw:outage:' },
    sessions: { maxConcurrent: 1000 },
    // The flow must never meet a rate limit: every refusal here is about the store.
    rateLimits: { sessionCreate: { points: 10_000, duration: '1m' }, tokenEndpoint: { points: 10_000, duration: '1m' }, client: { points: 10_000, duration: '1m' } },
  });
  const sdk = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(async () => {
    await sdk.close();
    await proxy.close();
    await upstream.close();
    await redis.stop();
  });
  const token = await proxy.token();
  const before = await initialize(proxy.mcpUrl, token);
  t.equal(before.status, 200, 'raw initialize works before the outage');
  const sessionId = before.sessionId ?? '';
  t.ok((await sdk.client.listTools()).tools.length > 0, 'SDK client works before the outage');

  // A steady flow: each round an initialize, a request in an existing session and a token request.
  const shots: Shot[] = [];
  let flowing = true;
  const flow = (async () => {
    while (flowing) {
      shots.push(...(await Promise.all([
        shoot('initialize', proxy.mcpUrl, mcpPost(proxy.mcpUrl, token, INIT)),
        shoot('session', proxy.mcpUrl, mcpPost(proxy.mcpUrl, token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId)),
        shoot('token', `${proxy.url}/oauth/token`, tokenRequest()),
      ])));
      await sleep(40);
    }
  })();
  for (let i = 0; i < 100 && shots.length < 6; i++) await sleep(50);
  t.same(shots.map((s) => s.status).filter((s) => s !== 200), [], `the flow is served before the outage (${shots.length} requests)`);
  t.ok(shots.length >= 6, 'at least two rounds ran');

  const killStart = Date.now();
  await redis.stop();
  const killed = Date.now();
  await sleep(2_000);
  const ready = await fetch(`${proxy.url}/readyz`);
  t.equal(ready.status, 503, '/readyz reports the outage');
  t.match(await ready.json(), { ready: false, store: 'unreachable' });
  await t.rejects(sdk.client.listTools(), { code: 503 }, 'the SDK client gets HTTP 503, not a hang');
  const metrics = await fetch(`${proxy.url}/metrics`);
  t.equal(metrics.status, 200, '/metrics still answers during the outage');
  t.match(await metrics.text(), /^mcp_warden_store_errors_total [1-9]/m, 'and counts the store errors');

  const during = shots.filter((s) => s.start >= killed);
  t.ok(during.length >= 15, `a steady flow ran during the outage (${during.length} requests)`);
  t.same(during.filter((s) => s.status !== 503).map((s) => `${s.kind}:${s.status}`), [], 'every request after the kill got 503 (no 200, 401, 404, 500 or hang)');
  t.same(during.filter((s) => !(Number(s.retryAfter) >= 1)).map((s) => s.kind), [], 'every 503 carries Retry-After');
  t.ok(Math.max(...during.map((s) => s.ms)) < 2_000, `no request took 2 s or more (slowest ${Math.max(...during.map((s) => s.ms))} ms)`);
  t.same(new Set(during.map((s) => s.kind)), new Set(['initialize', 'session', 'token']), 'MCP and token requests were all refused');
  const straddling = shots.filter((s) => s.start >= killStart && s.start < killed);
  t.same(straddling.filter((s) => s.status !== 200 && s.status !== 503).map((s) => s.status), [], 'requests in flight at the kill got 200 or 503, never a 401/500/hang');
  const forwarded = new Set(upstream.requests.map((r) => String(r.headers['x-shot'])));
  t.same(during.filter((s) => forwarded.has(s.marker)).map((s) => s.marker), [], 'no request made during the outage reached the upstream');
  t.ok(proxy.logs.events('store.unavailable').length >= during.length, 'each refusal logged store.unavailable');

  const restarted = Date.now();
  await redis.start();
  let resumedAfter = -1;
  while (Date.now() - restarted < 10_000) {
    if ((await initialize(proxy.mcpUrl, token)).status === 200) {
      resumedAfter = Date.now() - restarted;
      break;
    }
    await sleep(100);
  }
  t.ok(resumedAfter >= 0, `a new initialize works again without restarting the proxy (after ${resumedAfter} ms)`);
  await sleep(300);
  flowing = false;
  await flow;
  const after = shots.filter((s) => s.start >= restarted + Math.max(resumedAfter, 0));
  t.ok(after.some((s) => s.kind === 'token' && s.status === 200), 'the token endpoint recovered');
  t.same(shots.filter((s) => [0, 401, 500].includes(s.status)).map((s) => `${s.kind}:${s.status}`), [], 'no hang, 401 or 500 at any point');

  const old = await shoot('session', proxy.mcpUrl, mcpPost(proxy.mcpUrl, token, { jsonrpc: '2.0', id: 3, method: 'tools/list' }, sessionId));
  t.ok(old.status === 200 || old.status === 404, `the pre-outage session is kept or cleanly gone (the private Redis keeps nothing): ${old.status}`);
  t.equal((await fetch(`${proxy.url}/readyz`)).status, 200, '/readyz is ready again');
  const fresh = await connectClient(proxy.mcpUrl, { token });
  t.teardown(fresh.close);
  t.ok((await fresh.client.listTools()).tools.length > 0, 'a new SDK session works after the outage');
});

t.test('real CLI process: survives the outage (no crash on ioredis errors), answers 503, resumes, exits 0', async (t) => {
  const redis = await startRedis();
  const upstream = await startDemoServer();
  const proxy = await spawnWarden({ upstreams: [upstream.url], store: { type: 'redis', url: redis.url, keyPrefix: 'mcpw:cli-outage:' } });
  t.teardown(async () => {
    await proxy.kill();
    await upstream.close();
    await redis.stop();
  });
  const token = await proxy.token();
  const { status, sessionId } = await initialize(proxy.mcpUrl, token);
  t.equal(status, 200);

  await redis.stop();
  const killed = Date.now();
  const seen = upstream.requests.length;
  const session = await shoot('session', proxy.mcpUrl, mcpPost(proxy.mcpUrl, token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId ?? ''));
  t.equal(session.status, 503, 'a session request gets 503');
  t.ok(Number(session.retryAfter) >= 1, 'with Retry-After');
  const tokenShot = await shoot('token', `${proxy.url}/oauth/token`, tokenRequest('alice'));
  t.equal(tokenShot.status, 503, 'the token endpoint gets 503');
  t.ok(Number(tokenShot.retryAfter) >= 1);
  t.equal((await fetch(`${proxy.url}/readyz`)).status, 503);
  t.ok(Date.now() - killed < 2_000, 'all three answered within 2 s of the kill');

  // Let ioredis fail several reconnect attempts: each one emits 'error' in the process.
  await sleep(1_500);
  t.equal(proxy.child.exitCode, null, 'the process is still running after failed reconnects');
  const later = await shoot('initialize', proxy.mcpUrl, mcpPost(proxy.mcpUrl, token, INIT));
  t.equal(later.status, 503, 'still failing closed');
  t.equal(upstream.requests.length, seen, 'nothing was forwarded during the outage');

  const restarted = Date.now();
  await redis.start();
  let back = 0;
  while (Date.now() - restarted < 10_000 && back !== 200) {
    back = (await initialize(proxy.mcpUrl, token)).status;
    if (back !== 200) await sleep(100);
  }
  t.equal(back, 200, `service resumed by itself after ${Date.now() - restarted} ms`);
  t.equal((await shoot('token', `${proxy.url}/oauth/token`, tokenRequest('alice'))).status, 200);

  proxy.child.kill('SIGTERM');
  const exit = await proxy.exited;
  t.same(exit, { code: 0, signal: null }, 'clean exit on SIGTERM after the outage');
  t.notMatch(proxy.output(), /Unhandled|uncaught|ERR_UNHANDLED/i, 'no unhandled error in the process output');
});

t.test('generated signing key (no tokens.secret): a Redis that comes back empty does not empty the key ring', async (t) => {
  const redis = await startRedis();
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], store: { type: 'redis', url: redis.url, keyPrefix: 'mcpw:keys:' }, tokens: { secret: null } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
    await redis.stop();
  });
  const issued = async (): Promise<number> => (await shoot('token', `${proxy.url}/oauth/token`, tokenRequest('alice'))).status;
  const token = await proxy.token();
  const unused = await proxy.token(); // never verified before the loss: not in the verified-token cache
  t.equal((await initialize(proxy.mcpUrl, token)).status, 200, 'a token signed with the generated key works');

  await redis.stop();
  await redis.start(); // no persistence: the keys stored in Redis are gone
  for (let i = 0; i < 100 && (await fetch(`${proxy.url}/readyz`)).status !== 200; i++) await sleep(100);
  await proxy.warden.keyRing.refresh(); // what the ring's periodic reload (every 30 s) does
  t.equal((await initialize(proxy.mcpUrl, unused)).status, 200, 'tokens issued before the loss still verify');
  t.equal(await issued(), 200, 'the token endpoint can still sign');
  t.equal((await initialize(proxy.mcpUrl, await proxy.token())).status, 200, 'and its new tokens verify');
  const stored = await proxy.warden.store.getKeys();
  t.same(stored.map((k) => k.kid), [proxy.warden.keyRing.signingKey().kid], 'the replica put its key back, so replicas starting now share it');
});

t.test('a Redis that hangs instead of dying (CLIENT PAUSE) → 503 after store.commandTimeout, not a hang', async (t) => {
  const redis = await startRedis();
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], store: { type: 'redis', url: redis.url, keyPrefix: 'mcpw:hang:', commandTimeout: '500ms' } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
    await redis.stop();
  });
  const token = await proxy.token();
  const { sessionId } = await initialize(proxy.mcpUrl, token);
  const seen = upstream.requests.length;
  // The server stays connected but answers nothing for 2.5 s.
  t.equal(await redisCommand(redis.port, ['CLIENT', 'PAUSE', '2500', 'ALL']), 'OK');
  const paused = Date.now();
  const shots = await Promise.all([
    shoot('session', proxy.mcpUrl, mcpPost(proxy.mcpUrl, token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId ?? '')),
    shoot('initialize', proxy.mcpUrl, mcpPost(proxy.mcpUrl, token, INIT)),
    shoot('token', `${proxy.url}/oauth/token`, tokenRequest()),
  ]);
  t.same(shots.map((s) => s.status), [503, 503, 503], 'every store-bound request failed closed');
  t.ok(shots.every((s) => Number(s.retryAfter) >= 1), 'with Retry-After');
  t.ok(shots.every((s) => s.ms >= 400 && s.ms < 2_000), `after about the command timeout (${shots.map((s) => s.ms).join(', ')} ms), long before the pause ends`);
  t.equal(upstream.requests.length, seen, 'nothing was forwarded');
  while (Date.now() - paused < 2_600) await sleep(100);
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await initialize(proxy.mcpUrl, token)).status;
    if (status !== 200) await sleep(100);
  }
  t.equal(status, 200, 'served again once Redis answers');
});
