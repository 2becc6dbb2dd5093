/**
 * Hostile input over real HTTP: one in-process proxy in front of the real SDK demo upstream, which
 * records every request it gets. Headers are sent with `http.request` (so any value an HTTP client
 * can send: visible ASCII, space and tab) and, for the bytes Node's client refuses to send, over
 * raw sockets. Properties: no 500 (or any 5xx), no request reaching the upstream unless it was
 * authenticated and well-formed, no session minted unless the upstream answered an initialize.
 * Limits are raised so they do not mask behaviour, except in the one property about blocking.
 */
import t from 'tap';
import fc from 'fast-check';
import http from 'node:http';
import net from 'node:net';
import { isIP } from 'node:net';
import { createHmac } from 'node:crypto';
import { startDemoServer } from '../../demo/mcp-server.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';
import { headerChar, hostileString, mutate, tally } from '../fixtures/fuzz.js';
import { addressPrefix, clientAddress, parseBasic } from '../../src/http/headers.js';
import { parseMessage } from '../../src/http/jsonrpc.js';

const fuzz = tally();
// About 10-15 s of CPU; the longer limit only keeps a heavily shared CI box from killing a run that
// is slow, not stuck (each request has its own 10 s limit, so a hang still fails).
t.setTimeout(300_000);
const started = performance.now();

const ALLOWED_ORIGINS = ['https://app.example', 'http://localhost:6274'];
const HIGH = { points: 1_000_000_000, duration: '1m' };
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } } };
const TOOLS_LIST = '{"jsonrpc":"2.0","id":7,"method":"tools/list"}';
const ACCEPT = 'application/json, text/event-stream';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const TOKEN68 = `${B64URL}.~+/`;

const upstream = await startDemoServer();
const proxy = await startWarden({
  upstreams: [upstream.url],
  log: { level: 'error' },
  rateLimits: { client: HIGH, sessionCreate: HIGH, tokenEndpoint: HIGH, failedAttempts: { ...HIGH, block: '1s' } },
  sessions: { maxConcurrent: 100_000, bindTo: ['client', 'address'] },
  security: { allowedOrigins: ALLOWED_ORIGINS, trustProxy: 1 },
});
// Normal limits (the defaults): only the blocking property uses this one.
const limited = await startWarden({ upstreams: [upstream.url], log: { level: 'error' }, security: { trustProxy: 1 } });
t.teardown(async () => {
  agent.destroy();
  await proxy.close();
  await limited.close();
  await upstream.close();
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request with `http.request`; a proxy that does not answer within 10 s fails the case (a hang). */
function send(url: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'POST', headers: opts.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer within 10 s: ${opts.method ?? 'POST'} ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** One request written byte for byte on a fresh socket; resolves with the first status code (0: none). */
function sendRaw(port: number, head: Buffer, body: Buffer = Buffer.alloc(0)): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s on a raw socket')));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err)));
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'))?.[1] ?? 0)));
    socket.end(Buffer.concat([head, body]));
  });
}

/** Error-level log lines of both proxies: an unexpected error is a 500 even when the client never saw it. */
const errorLines = (): Record<string, unknown>[] => [...proxy.logs.lines, ...limited.logs.lines].filter((l) => typeof l.level === 'number' && l.level >= 50);
const bearer = async (w: TestWarden = proxy, client = 'alice', scope = 'mcp'): Promise<string> => `Bearer ${await w.token(client, scope)}`;
const mcpHeaders = (extra: http.OutgoingHttpHeaders = {}): http.OutgoingHttpHeaders => ({ 'content-type': 'application/json', accept: ACCEPT, ...extra });
const forwardedSince = (before: number): number => upstream.requests.length - before;
/** What the server sees of a header value: Node strips optional whitespace (SP, HTAB) at both ends. */
const ows = (v: string): string => v.replace(/^[ \t]+|[ \t]+$/g, '');
const headerValue = (maxLength: number) => fc.string({ unit: headerChar, maxLength });

async function openSession(token: string): Promise<string> {
  const res = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: token }), body: JSON.stringify(INIT) });
  const id = res.headers['mcp-session-id'];
  if (res.status !== 200 || typeof id !== 'string') throw new Error(`initialize failed: ${res.status} ${res.body}`);
  return id;
}

const ALICE = await bearer();
const aliceSession = await openSession(ALICE);
const bobSession = await openSession(await bearer(proxy, 'bob'));

// ---------------------------------------------------------------------------------------------

t.test('arbitrary Authorization headers: never 2xx, never 5xx, never forwarded', async (t) => {
  // Forgeries start from ALICE itself (valid): anything that reproduces it exactly is filtered out.
  const [head = '', payload = '', signature = ''] = ALICE.slice('Bearer '.length).split('.');
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const realHeader = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as Record<string, unknown>;
  const realClaims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  const expired = await proxy.token('alice', 'mcp', -120_000);
  const unknownClient = await proxy.token('mallory', 'mcp');
  const otherProxy = await limited.token();
  const wrongScope = await proxy.token('alice', 'extra');

  const forged = fc.oneof(
    // The real header and claims, signed with the wrong key, or not at all.
    fc.string({ minLength: 1, maxLength: 40 }).map((key) => `${head}.${payload}.${createHmac('sha256', key).update(`${head}.${payload}`).digest('base64url')}`),
    fc.constantFrom(`${b64({ ...realHeader, alg: 'none' })}.${payload}.`, `${b64({ ...realHeader, alg: 'none' })}.${payload}`, `${b64({ alg: 'HS256', typ: 'JWT' })}.${payload}.x`),
    // Claims changed (audience, issuer, expiry, client, scope) under the real header, with the real signature.
    fc.record({ aud: fc.string(), iss: fc.string(), exp: fc.integer(), client_id: fc.constantFrom('bob', 'admin'), scope: fc.string() }, { requiredKeys: [] })
      .map((changes) => `${head}.${b64({ ...realClaims, ...changes })}`)
      .filter((signed) => signed !== `${head}.${payload}`)
      .map((signed) => `${signed}.${signature}`),
    // One character changed in the signed part of the real token (not the signature: see parsers.slow.test.ts).
    mutate(`${head}.${payload}`, fc.constantFrom(...TOKEN68))
      .filter((signed) => signed !== `${head}.${payload}`)
      .map((signed) => `${signed}.${signature}`),
    fc.constantFrom(expired, unknownClient, otherProxy),
  );
  const value = fc.oneof(
    headerValue(120),
    fc.tuple(fc.constantFrom('Bearer ', 'bearer ', 'Bearer  ', 'Bearer\t', 'Basic ', 'Bearer', 'MAC ', 'Token '), headerValue(80)).map(([a, b]) => a + b),
    forged.map((tok) => `Bearer ${tok}`),
    fc.tuple(fc.constantFrom('Bearer ', 'Bearer', 'Bearer,', 'Bearer "'), forged, fc.constantFrom('', ' ', ',', '"', ' x', '\t')).map(([a, b, c]) => a + b + c),
  );

  await fuzz.check(t, 'Authorization: any value a client can send is 401, and nothing is forwarded', fc.asyncProperty(value, fc.constantFrom('POST', 'GET', 'DELETE'), async (authorization, method) => {
    const before = upstream.requests.length;
    const res = await send(proxy.mcpUrl, { method, headers: mcpHeaders({ authorization }), body: method === 'POST' ? JSON.stringify(INIT) : undefined });
    if (res.status !== 401 || forwardedSince(before) !== 0) throw new Error(`${res.status}, forwarded ${forwardedSince(before)}: ${res.body}`);
    if (!String(res.headers['www-authenticate']).startsWith('Bearer ')) throw new Error('401 without a Bearer challenge');
  }), { seed: 0x4701, numRuns: 1_500 });

  await fuzz.check(t, 'Authorization: repeated header lines are refused whatever their order', fc.asyncProperty(fc.array(fc.oneof(fc.constant(ALICE), value), { minLength: 2, maxLength: 4 }), async (lines) => {
    const before = upstream.requests.length;
    const res = await send(proxy.mcpUrl, { headers: { ...mcpHeaders(), Authorization: lines }, body: TOOLS_LIST });
    return res.status === 401 && forwardedSince(before) === 0;
  }), { seed: 0x4702, numRuns: 200 });

  t.test('table', async (t) => {
    const before = upstream.requests.length;
    const scope = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: `Bearer ${wrongScope}` }), body: TOOLS_LIST });
    t.equal(scope.status, 403, 'a valid token without the required scope is 403 insufficient_scope');
    // Regression: Node keeps only the first of repeated Authorization lines, so before the fix a valid
    // first line was accepted whatever followed; the parser refuses two, the stage now sees both.
    const twice = await send(proxy.mcpUrl, { headers: { ...mcpHeaders(), Authorization: [ALICE, 'Bearer other'] }, body: TOOLS_LIST });
    t.equal(twice.status, 401, 'two Authorization lines (valid first) are refused');
    t.equal(forwardedSince(before), 0, 'neither reached the upstream');
    const ok = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: ALICE }), body: TOOLS_LIST });
    t.equal(forwardedSince(before), 1, 'a single valid line still passes (the property above can fail)');
    t.not(ok.status, 401);
  });
});

// ---------------------------------------------------------------------------------------------

t.test('arbitrary Mcp-Session-Id with a valid token: 404 (or 400), never forwarded', async (t) => {
  const sessionId = fc.oneof(
    headerValue(100),
    fc.string({ unit: fc.constantFrom(...B64URL), minLength: 59, maxLength: 59 }),
    mutate(aliceSession, fc.constantFrom(...B64URL)),
    mutate(aliceSession, headerChar),
    fc.constantFrom(bobSession, `${aliceSession},${aliceSession}`, `${aliceSession} ${bobSession}`, aliceSession.slice(0, 58), `${aliceSession}A`, aliceSession.toLowerCase()),
  ).filter((id) => ows(id) !== aliceSession);

  await fuzz.check(t, 'Mcp-Session-Id: anything but the caller\'s own id is 404 -32001 and nothing is forwarded', fc.asyncProperty(sessionId, fc.constantFrom('POST', 'GET', 'DELETE'), async (id, method) => {
    const before = upstream.requests.length;
    const res = await send(proxy.mcpUrl, { method, headers: mcpHeaders({ authorization: ALICE, 'mcp-session-id': id }), body: method === 'POST' ? TOOLS_LIST : undefined });
    if (forwardedSince(before) !== 0) throw new Error(`forwarded with ${JSON.stringify(id)}: ${res.status}`);
    if (res.status === 404) return (JSON.parse(res.body) as { error: { code: number } }).error.code === -32001;
    return res.status === 400;
  }), { seed: 0x5101, numRuns: 1_500 });

  t.test('table', async (t) => {
    // Regression: before the fix, 3 other spellings of the last character decoded to the same id.
    const last = aliceSession.at(-1) ?? '';
    const before = upstream.requests.length;
    let accepted = 0;
    for (const c of B64URL) {
      if (c === last) continue;
      const res = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: ALICE, 'mcp-session-id': aliceSession.slice(0, -1) + c }), body: TOOLS_LIST });
      if (res.status !== 404) accepted++;
    }
    t.equal(accepted, 0, 'no re-spelling of a real session id is accepted');
    t.equal(forwardedSince(before), 0);
    const own = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: ALICE, 'mcp-session-id': aliceSession }), body: TOOLS_LIST });
    t.equal(own.status, 200, 'the real id works (so the property above can fail)');
    t.equal(own.headers['mcp-session-id'], aliceSession);
  });
});

// ---------------------------------------------------------------------------------------------

t.test('arbitrary Origin: exactly the allow-list passes, 403 before authentication otherwise', async (t) => {
  const originValue = fc.oneof(
    headerValue(60),
    fc.webUrl().map((u) => new URL(u).origin),
    fc.constantFrom(...ALLOWED_ORIGINS, 'null', 'https://APP.example', 'https://app.example/', 'https://app.example:443', 'https://app.example.evil', 'http://app.example', 'https://app.example, https://app.example', ' https://app.example\t'),
    fc.constantFrom(...ALLOWED_ORIGINS).chain((o) => mutate(o, headerChar)),
  );
  let listed = 0;
  await fuzz.check(t, 'Origin: 401 (no token) with CORS headers when listed, else 403 without them; never forwarded', fc.asyncProperty(originValue, async (origin) => {
    const before = upstream.requests.length;
    const res = await send(proxy.mcpUrl, { headers: mcpHeaders({ origin }), body: JSON.stringify(INIT) });
    const allowed = ALLOWED_ORIGINS.includes(ows(origin));
    if (allowed) listed += 1;
    if (forwardedSince(before) !== 0) return false;
    return allowed ? res.status === 401 && res.headers['access-control-allow-origin'] === ows(origin) : res.status === 403 && res.headers['access-control-allow-origin'] === undefined;
  }), { seed: 0x0f01, numRuns: 1_200 });
  t.ok(listed >= 25, `listed origins are generated too (${listed})`);
});

// ---------------------------------------------------------------------------------------------

t.test('arbitrary X-Forwarded-For (trustProxy: 1 hop)', async (t) => {
  const zone = fc.string({ unit: fc.constantFrom(...'0123456789abcdefghijklmnopqrstuvwxyz-.:'), minLength: 1, maxLength: 10 });
  const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4().map((a) => `::ffff:${a}`), fc.tuple(fc.ipV6(), zone).map(([a, z]) => `${a}%${z}`));
  const xff = fc.oneof(
    headerValue(80),
    fc.array(fc.oneof(address, headerValue(10)), { minLength: 1, maxLength: 5 }).map((hops) => hops.join(', ')),
    fc.array(address, { minLength: 1, maxLength: 5 }).map((hops) => hops.join(',')),
  );

  await fuzz.check(t, 'X-Forwarded-For without a token: 401 (never 5xx), not forwarded', fc.asyncProperty(xff, async (forwardedFor) => {
    const before = upstream.requests.length;
    const res = await send(proxy.mcpUrl, { headers: mcpHeaders({ 'x-forwarded-for': forwardedFor }), body: TOOLS_LIST });
    if (res.status !== 401 || forwardedSince(before) !== 0) throw new Error(`${res.status}: ${res.body}`);
  }), { seed: 0xff01, numRuns: 1_200 });

  await fuzz.check(t, 'X-Forwarded-For with a token: the upstream is told an IP, the one trustProxy picks; a session stays bound to its prefix', fc.asyncProperty(xff, fc.boolean(), async (forwardedFor, initialize) => {
    const before = upstream.requests.length;
    const res = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: ALICE, 'x-forwarded-for': forwardedFor }), body: initialize ? JSON.stringify(INIT) : TOOLS_LIST });
    const seen = upstream.requests[upstream.requests.length - 1]?.headers['x-forwarded-for'];
    const want = clientAddress('127.0.0.1', ows(forwardedFor), { kind: 'hops', hops: 1 });
    if (res.status >= 500 || forwardedSince(before) !== 1) throw new Error(`${res.status}, forwarded ${forwardedSince(before)}`);
    if (typeof seen !== 'string' || isIP(seen) === 0 || seen !== want) throw new Error(`upstream saw ${String(seen)}, want ${want}`);
    if (!initialize) return true;
    const session = res.headers['mcp-session-id'];
    if (res.status !== 200 || typeof session !== 'string') throw new Error(`initialize: ${res.status}`);
    // bindTo address: the same forwarded address keeps the session, the bare socket address only
    // when it shares the prefix (/24, /64), whatever the address looked like.
    const again = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: ALICE, 'x-forwarded-for': forwardedFor, 'mcp-session-id': session }), body: TOOLS_LIST });
    const direct = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: ALICE, 'mcp-session-id': session }), body: TOOLS_LIST });
    const samePrefix = addressPrefix(want, 24, 64) === addressPrefix('127.0.0.1', 24, 64);
    return again.status === 200 && direct.status === (samePrefix ? 200 : 404);
  }), { seed: 0xff02, numRuns: 300 });

  t.test('table', async (t) => {
    // Regression: a zone id made the address-prefix math throw (BigInt(NaN)) in rejectBlocked, where the
    // TypeError was taken for a store failure: 503 and a store.unavailable event, at any client's will.
    for (const forwardedFor of ['fe80::1%zz:q', '1::%x', '10.0.0.1, fe80::%:::::q']) {
      const res = await send(proxy.mcpUrl, { headers: mcpHeaders({ 'x-forwarded-for': forwardedFor }), body: TOOLS_LIST });
      t.equal(res.status, 401, forwardedFor);
    }
  });
});

// ---------------------------------------------------------------------------------------------

t.test('arbitrary JSON-RPC bodies with a valid token and no session', async (t) => {
  const deep = fc.tuple(fc.constantFrom('[', '{"a":'), fc.integer({ min: 1_000, max: 100_000 }), fc.boolean()).map(([open, depth, init]) => {
    const close = open === '[' ? ']' : '}';
    const inner = open === '[' ? '' : '1';
    const nested = open.repeat(depth) + inner + close.repeat(depth);
    return init ? JSON.stringify({ ...INIT, params: '@' }).replace('"@"', nested) : nested;
  });
  const id = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 200 }), fc.constantFrom(2 ** 53, 1e308, null), fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 16, maxLength: 300 }).map((digits) => ({ raw: digits })));
  const message = fc.record({ id, method: fc.oneof(fc.constantFrom('initialize', 'tools/list', 'ping', 'tools/call', 'notifications/initialized'), fc.string({ maxLength: 12 })), params: fc.jsonValue({ maxDepth: 3 }), jsonrpc: fc.constantFrom('2.0', '1.0') }, { requiredKeys: ['method'] });
  const encode = (m: unknown): string => JSON.stringify(m, (_k, v: unknown) => (typeof v === 'object' && v !== null && 'raw' in v ? `@@${String((v as { raw: string }).raw)}@@` : v)).replace(/"@@(\d+)@@"/g, '$1');
  const body = fc.oneof(
    { weight: 3, arbitrary: hostileString(120) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 4, arbitrary: message.map(encode) },
    { weight: 2, arbitrary: fc.array(message, { minLength: 1, maxLength: 4 }).map(encode) },
    { weight: 2, arbitrary: fc.record({ id, protocolVersion: fc.constantFrom('2025-11-25', '2025-03-26', 'x') }).map(({ id: i, protocolVersion }) => encode({ ...INIT, id: i, params: { ...INIT.params, protocolVersion } })) },
    { weight: 1, arbitrary: deep },
  );

  const seen = { refused: 0, forwarded: 0, minted: 0 };
  await fuzz.check(t, 'never 5xx; refused unread-upstream exactly when not a JSON-RPC message; a session id only from a real initialize', fc.asyncProperty(body, async (text) => {
    const before = upstream.requests.length;
    const sessionsBefore = upstream.sessionIds().length;
    const res = await send(proxy.mcpUrl, { headers: mcpHeaders({ authorization: ALICE }), body: text });
    const peek = parseMessage(Buffer.from(text));
    const minted = res.headers['mcp-session-id'];
    if (res.status >= 500) throw new Error(`${res.status}: ${res.body}`);
    seen[!peek.ok ? 'refused' : minted === undefined ? 'forwarded' : 'minted'] += 1;
    if (!peek.ok) {
      const refusal = JSON.parse(res.body) as { error: { code: number }; id: unknown };
      return res.status === 400 && forwardedSince(before) === 0 && refusal.error.code === (peek.reason === 'json' ? -32700 : -32600) && refusal.id === null && minted === undefined;
    }
    if (forwardedSince(before) !== 1) throw new Error(`forwarded ${forwardedSince(before)} times`);
    const upstreamMinted = upstream.sessionIds().length - sessionsBefore;
    if (minted === undefined) return upstreamMinted === 0 || res.status !== 200;
    // A proxy id: only for an initialize the upstream accepted, 59 characters, never the upstream's id.
    return peek.value.isInitialize && res.status === 200 && upstreamMinted === 1 && typeof minted === 'string' && minted.length === 59 && !upstream.sessionIds().includes(minted);
  }), { seed: 0xb0d1, numRuns: 1_000 });
  t.ok(seen.refused >= 50 && seen.forwarded >= 50 && seen.minted >= 25, `every outcome is reached: ${JSON.stringify(seen)}`);
});

// ---------------------------------------------------------------------------------------------

t.test('arbitrary token-endpoint requests', async (t) => {
  const tokenUrl = `${proxy.url}/oauth/token`;
  const secrets: Record<string, string> = TEST_CLIENTS;
  const CLIENT_SCOPES = ['mcp', 'extra'];
  const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  const paramValue: Record<string, fc.Arbitrary<string>> = {
    grant_type: fc.constantFrom('client_credentials', 'client_credentials', 'refresh_token', 'password', 'authorization_code', '', 'CLIENT_CREDENTIALS'),
    client_id: fc.constantFrom('alice', 'bob'),
    client_secret: fc.constantFrom(TEST_CLIENTS.alice, TEST_CLIENTS.bob, 'wrong', '', `${TEST_CLIENTS.alice} `),
    scope: fc.oneof(fc.constantFrom('mcp', 'extra', 'mcp extra', 'extra mcp mcp', ' mcp ', '', 'admin', 'mcp admin', 'MCP'), hostileString(12)),
    resource: fc.oneof(fc.constantFrom(proxy.mcpUrl, `${proxy.mcpUrl}/`, proxy.url, 'https://evil.example/mcp', ''), hostileString(12)),
    refresh_token: hostileString(20),
  };
  const param = fc.constantFrom(...Object.keys(paramValue), 'junk').chain((name) => (paramValue[name] ?? hostileString(10)).map((value) => [name, value] as const));
  const form = fc.array(param, { maxLength: 6 }).map((ps) => ps.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, ''))}`).join('&'));
  const body = fc.oneof({ weight: 5, arbitrary: form }, { weight: 1, arbitrary: hostileString(100) }, { weight: 1, arbitrary: form.map((f) => `${f}&${f}`) });
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/x-www-form-urlencoded') },
    { weight: 2, arbitrary: fc.constantFrom('application/x-www-form-urlencoded; charset=UTF-8', 'APPLICATION/X-WWW-FORM-URLENCODED', 'application/json', 'text/plain', 'multipart/form-data; boundary=x', '') },
    { weight: 1, arbitrary: headerValue(40) },
  );
  const authorization = fc.oneof(
    { weight: 5, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constantFrom(basic('alice', TEST_CLIENTS.alice), basic('bob', TEST_CLIENTS.bob), basic('alice', 'wrong'), basic('bob', TEST_CLIENTS.alice), 'Basic', 'Basic !!!', 'Bearer x') },
    // Arbitrary values, except those naming an unknown client: each of those costs a deliberate scrypt
    // (~250 ms, the timing equaliser); the property below covers them with fewer runs.
    { weight: 2, arbitrary: headerValue(60).filter((v) => { const b = parseBasic(ows(v)); return !b.ok || Object.hasOwn(secrets, b.value.id); }) },
  );

  /** RFC 6749 §4.4 as this proxy implements it: when exactly must the answer be 200? */
  function wellFormed(type: string, text: string, auth: string | undefined): boolean {
    if (type.split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded' || Buffer.byteLength(text) > 16 * 1024) return false;
    const params = [...new URLSearchParams(text)];
    const p = new Map(params);
    if (p.size !== params.length || params.some(([, v]) => v.length > 4096)) return false;
    const b = parseBasic(auth === undefined ? undefined : ows(auth));
    if (b.ok && (p.has('client_secret') || (p.has('client_id') && p.get('client_id') !== b.value.id))) return false;
    const creds = b.ok ? b.value : p.has('client_id') && p.has('client_secret') ? { id: p.get('client_id') ?? '', secret: p.get('client_secret') ?? '' } : null;
    if (!creds || !Object.hasOwn(secrets, creds.id) || secrets[creds.id] !== creds.secret) return false;
    if (p.get('grant_type') !== 'client_credentials') return false;
    const resource = p.get('resource');
    if (resource !== undefined && resource.replace(/\/$/, '') !== proxy.mcpUrl.replace(/\/$/, '')) return false;
    const scope = p.get('scope');
    if (scope === undefined) return true;
    const scopes = scope.split(' ').filter(Boolean);
    return scopes.length > 0 && scopes.every((s) => CLIENT_SCOPES.includes(s));
  }

  // Near misses of a good request: one client authentication, then grant, scope and resource drawn
  // mostly from the good values, so the 200 side and its neighbours are both reached.
  const enc = (pairs: [string, string][]): string => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const nearMiss = fc
    .record({
      who: fc.constantFrom('alice', 'bob'),
      how: fc.constantFrom('basic', 'post', 'both', 'basic+id', 'none'),
      secretOk: fc.boolean(),
      grant: fc.constantFrom('client_credentials', 'client_credentials', 'client_credentials', 'refresh_token', 'client_credential'),
      scope: fc.option(fc.constantFrom('mcp', 'extra', 'mcp extra', 'mcp  extra', 'admin', ''), { nil: undefined }),
      resource: fc.option(fc.constantFrom(proxy.mcpUrl, `${proxy.mcpUrl}/`, `${proxy.url}/other`), { nil: undefined }),
      repeat: fc.constantFrom(null, null, null, 'scope', 'grant_type'),
      type: fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded', 'application/x-www-form-urlencoded;charset=UTF-8', 'application/json'),
    })
    .map(({ who, how, secretOk, grant, scope, resource, repeat, type }) => {
      const secret = secretOk ? (secrets[who] ?? '') : 'wrong-secret';
      const pairs: [string, string][] = [['grant_type', grant]];
      if (how === 'post' || how === 'both') pairs.push(['client_id', who], ['client_secret', secret]);
      if (how === 'basic+id') pairs.push(['client_id', who]);
      if (scope !== undefined) pairs.push(['scope', scope]);
      if (resource !== undefined) pairs.push(['resource', resource]);
      if (repeat) pairs.push([repeat, 'mcp']);
      const auth = how === 'basic' || how === 'both' || how === 'basic+id' ? basic(who, secret) : undefined;
      return { type, text: enc(pairs), auth };
    });
  const request = fc.oneof(
    { weight: 2, arbitrary: fc.record({ type: contentType, text: body, auth: authorization }) },
    { weight: 1, arbitrary: nearMiss },
  );

  let granted = 0;
  await fuzz.check(t, 'token endpoint: 200 exactly for a well-formed client_credentials request of a valid client; else 400/401; never 5xx', fc.asyncProperty(request, async ({ type, text, auth }) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': type };
    if (auth !== undefined) headers.authorization = auth;
    const res = await send(tokenUrl, { headers, body: text });
    const want200 = wellFormed(type, text, auth);
    if (res.status === 200) granted += 1;
    if (res.status === 200) return want200 && (JSON.parse(res.body) as { token_type: string }).token_type === 'Bearer' && res.headers['cache-control'] === 'no-store';
    if (want200) throw new Error(`expected 200, got ${res.status}: ${res.body}`);
    return res.status === 400 || res.status === 401;
  }), { seed: 0x70c1, numRuns: 2_000 });
  t.ok(granted >= 25, `the generator reaches the 200 side too (${granted} tokens granted)`);

  await fuzz.check(t, 'token endpoint: unknown client ids (each pays the scrypt equaliser) are 401', fc.asyncProperty(hostileString(16).filter((id) => !Object.hasOwn(secrets, id)).map((id) => id.replace(/[\ud800-\udfff]/g, '')), fc.boolean(), async (id, viaBasic) => {
    const text = viaBasic ? 'grant_type=client_credentials' : `grant_type=client_credentials&client_id=${encodeURIComponent(id)}&client_secret=x`;
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/x-www-form-urlencoded' };
    if (viaBasic) headers.authorization = basic(id, 'x');
    const res = await send(tokenUrl, { headers, body: text });
    return res.status === 401;
  }), { seed: 0x70c2, numRuns: 8 });
});

// ---------------------------------------------------------------------------------------------

t.test('with normal limits, blocking an address never turns into a 500', async (t) => {
  const token = await bearer(limited);
  const tokenUrl = `${limited.url}/oauth/token`;
  type Kind = 'badToken' | 'noToken' | 'badSession' | 'badClient' | 'badForm' | 'valid' | 'origin';
  const kinds = fc.array(fc.constantFrom<Kind>('badToken', 'badToken', 'noToken', 'badSession', 'badSession', 'badClient', 'badForm', 'valid', 'origin'), { minLength: 22, maxLength: 40 });
  let run = 0;

  await fuzz.check(t, 'the 20th failed attempt blocks the address: every later request is 429, none is 5xx', fc.asyncProperty(kinds, async (sequence) => {
    // Each run is its own client address (trustProxy: 1), so runs do not share a budget.
    run += 1;
    const from = `198.51.100.${run}`;
    let failures = 0;
    for (const kind of sequence) {
      const blocked = failures >= 20;
      const headers: http.OutgoingHttpHeaders = mcpHeaders({ 'x-forwarded-for': from });
      let url = limited.mcpUrl;
      let text = TOOLS_LIST;
      if (kind === 'badToken') headers.authorization = 'Bearer not.a.token';
      if (kind === 'badSession' || kind === 'valid' || kind === 'origin') headers.authorization = token;
      if (kind === 'badSession') headers['mcp-session-id'] = 'x'.repeat(59);
      if (kind === 'origin') headers.origin = 'https://evil.example';
      if (kind === 'badClient' || kind === 'badForm') {
        url = tokenUrl;
        headers['content-type'] = 'application/x-www-form-urlencoded';
        text = kind === 'badClient' ? 'grant_type=client_credentials&client_id=alice&client_secret=wrong' : 'grant_type=client_credentials&grant_type=x';
      }
      const res = await send(url, { headers, body: text });
      if (res.status >= 500) throw new Error(`${kind}: ${res.status} ${res.body}`);
      if (blocked) {
        // The Origin check comes first (DESIGN §4 step 1), so a foreign page still gets its 403.
        const want = kind === 'origin' ? 403 : 429;
        if (res.status !== want) throw new Error(`${kind} after 20 failures: ${res.status}, not ${want}`);
        continue;
      }
      // No token at all is every client's first probe: not a failed attempt.
      if ((res.status === 401 && kind !== 'noToken') || res.status === 404) failures += 1;
      const expected = { badToken: [401], noToken: [401], badSession: [404], badClient: [401, 429], badForm: [400], valid: [400], origin: [403] }[kind];
      if (!expected.includes(res.status)) throw new Error(`${kind}: ${res.status} ${res.body}`);
    }
    return true;
  }), { seed: 0xb10c, numRuns: 25 });

  t.test('table', async (t) => {
    const from = '203.0.113.77';
    for (let i = 0; i < 20; i++) await send(limited.mcpUrl, { headers: mcpHeaders({ authorization: 'Bearer x', 'x-forwarded-for': from }), body: TOOLS_LIST });
    const res = await send(limited.mcpUrl, { headers: mcpHeaders({ authorization: token, 'x-forwarded-for': from }), body: TOOLS_LIST });
    t.equal(res.status, 429, 'even a valid token is blocked');
    t.ok(Number(res.headers['retry-after']) > 0, 'with Retry-After');
    const other = await send(limited.mcpUrl, { headers: mcpHeaders({ authorization: token, 'x-forwarded-for': '203.0.113.78' }), body: TOOLS_LIST });
    t.equal(other.status, 400, 'another address is not (the upstream answers: no session)');
  });
});

// ---------------------------------------------------------------------------------------------

t.test('raw sockets: header bytes an HTTP client library would not send', async (t) => {
  const port = new URL(proxy.url).port;
  const hostile = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    fc.string({ unit: 'binary', maxLength: 40 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
    fc.tuple(fc.string({ unit: headerChar, maxLength: 20 }), fc.constantFrom('\0', '\r', '\n', '\x7f', '\x01', '\x1b', '\r\n', '\n\n', '\r\n\r\n', '\xff', '\u00e9'), fc.string({ unit: headerChar, maxLength: 20 })).map(([a, b, c]) => new Uint8Array(Buffer.from(a + b + c, 'latin1'))),
  );
  const name = fc.constantFrom('authorization', 'mcp-session-id', 'origin', 'x-forwarded-for');

  await fuzz.check(t, 'raw header bytes: 400 from the parser or the usual refusal; never 2xx or 5xx; never forwarded', fc.asyncProperty(name, hostile, async (header, bytes) => {
    const before = upstream.requests.length;
    // A valid token first, so a hostile session id is the only thing wrong; other headers go without one.
    const auth = header === 'mcp-session-id' ? `authorization: ${ALICE}\r\n` : '';
    const head = Buffer.concat([
      Buffer.from(`POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n${auth}${header}: `, 'latin1'),
      Buffer.from(bytes),
      Buffer.from(`\r\ncontent-type: application/json\r\naccept: ${ACCEPT}\r\ncontent-length: ${TOOLS_LIST.length}\r\nconnection: close\r\n\r\n`, 'latin1'),
    ]);
    const status = await sendRaw(Number(port), head, Buffer.from(TOOLS_LIST));
    const allowed = { authorization: [400, 401], 'mcp-session-id': [400, 404], origin: [400, 401, 403], 'x-forwarded-for': [400, 401] }[header];
    if (!allowed.includes(status) || forwardedSince(before) !== 0) throw new Error(`${header}: ${status}, forwarded ${forwardedSince(before)}`);
  }), { seed: 0x5a01, numRuns: 800 });

  await fuzz.check(t, 'a client that hangs up mid-body is not an error: no 500 logged, the proxy keeps serving', fc.asyncProperty(fc.integer({ min: 1, max: 2_000 }), fc.nat(), fc.boolean(), async (declared, sentSeed, withToken) => {
    const sent = sentSeed % declared;
    const auth = withToken ? `authorization: ${ALICE}\r\n` : '';
    const head = Buffer.from(`POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n${auth}content-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`, 'latin1');
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(Buffer.concat([head, Buffer.alloc(sent, 0x20)]));
        setImmediate(() => socket.destroy());
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
    // One round trip later the abort has been handled: the proxy answers and has logged no error.
    const health = await send(`${proxy.url}/healthz`, { method: 'GET' });
    return health.status === 200 && errorLines().length === 0;
  }), { seed: 0x5a02, numRuns: 100 });
  const health = await send(`${proxy.url}/healthz`, { method: 'GET' });
  t.equal(health.status, 200, 'the proxy still answers');
});

t.test('nothing above made the proxy log an internal error', async (t) => {
  // Give in-flight hang-ups time to settle before reading the log.
  await new Promise((r) => setTimeout(r, 200));
  const errors = errorLines();
  t.same(errors.map((l) => `${String(l.msg)} ${String(l.code ?? '')}`), [], 'no error-level log lines (an unexpected error is a 500, even when the client is gone)');
});

t.test('case total', async (t) => {
  t.comment(`http: ${fuzz.total} generated cases in ${Math.round(performance.now() - started)} ms`);
  t.ok(fuzz.total >= 9_500, `at least 9,500 cases in this file (ran ${fuzz.total})`);
});
