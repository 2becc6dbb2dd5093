/**
 * The load-state, refuse-revoked and resolve-session stages, called directly with a hand-built context and the
 * real memory store (STYLE G14): every way a presented session id is refused, and what a
 * session-less request is marked with.
 */
import t from 'tap';
import { createSessionEnder } from '../../src/session/end-session.js';
import type { Test } from 'tap';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { createContext } from '../../src/context.js';
import type { Identity, RequestContext } from '../../src/context.js';
import { validateConfig } from '../../src/config/validate.js';
import { createClientRegistry } from '../../src/auth/clients.js';
import { createLogger } from '../../src/observability/logger.js';
import { loadState } from '../../src/pipeline/load-state.js';
import { refuseRevoked } from '../../src/pipeline/refuse-revoked.js';
import { resolveSession } from '../../src/pipeline/resolve-session.js';
import { createFingerprint } from '../../src/session/binding.js';
import { createSessionIds } from '../../src/session/session-id.js';
import { createRelay } from '../../src/session/relay.js';
import { createStreamGauge } from '../../src/session/streams.js';
import { createUpstreamPicker } from '../../src/session/upstreams.js';
import { createLimiters } from '../../src/store/limiters.js';
import { createMemoryStore } from '../../src/store/memory.js';

const NOW = 1_800_000_000_000;
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } };

async function harness(t: Test, raw: Record<string, unknown> = {}) {
  const result = validateConfig({
    upstreams: ['http://u0/mcp', 'http://u1/mcp'],
    clients: [{ id: 'alice', secret: 'alice-secret-0123456789', scopes: ['mcp'] }, { id: 'capped', secret: 'capped-secret-0123456789', scopes: ['mcp'], maxSessions: 1 }],
    ...raw,
  });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  const { config } = result;
  let now = NOW;
  const clock = () => now;
  const store = createMemoryStore({ maxEntries: 10_000, clock });
  t.teardown(() => store.close());
  const sessionIds = createSessionIds(new Uint8Array(32).fill(9));
  const fingerprint = createFingerprint(config.sessions);
  const limiters = createLimiters(store, config.rateLimits);
  const upstreams = createUpstreamPicker(config.upstreams, clock);
  const load = loadState({ limiters, clients: await createClientRegistry(config.clients, store, clock), sessionIds, idleTimeoutMs: config.sessions.idleTimeout, maxLifetimeMs: config.sessions.maxLifetime, clock, generation: { pending: () => null } });
  const ender = createSessionEnder({ store, owner: '', endUpstream: null, clock, log: createLogger('silent') });
  const resolve = resolveSession({
    store, ender, limiters, upstreams, fingerprint, maxBodyBytes: 4096, maxConcurrent: config.sessions.maxConcurrent, onLimit: config.sessions.onLimit,
    streams: createStreamGauge(config.sessions.maxStreams), relay: createRelay({ replicaId: 'here', advertiseUrl: null, mcpPath: '/mcp', secret: new Uint8Array(32), store, clock }), transport: 'streamable-http', clock,
  });

  function context(opts: { method?: string; headers?: Record<string, string>; body?: unknown; clientId?: string; address?: string; issuedAtMs?: number }): RequestContext {
    const req = new IncomingMessage(new Socket());
    req.method = opts.method ?? 'POST';
    req.headers = { ...opts.headers };
    // A POST in a session is parsed too: give it a message unless the test brings its own body.
    const body = opts.body ?? (req.method === 'POST' && opts.headers?.['mcp-session-id'] ? { jsonrpc: '2.0', id: 9, method: 'ping' } : undefined);
    if (body !== undefined) req.push(typeof body === 'string' ? body : JSON.stringify(body));
    req.push(null);
    const res = new ServerResponse(req);
    const ctx = createContext(req, res, { id: 'r1', startedAt: now, receivedMark: 0, log: createLogger('silent'), site: { origin: 'http://p', resource: 'http://p/mcp', resourceMetadataUrl: 'http://p/.well-known/oauth-protected-resource/mcp', issuer: 'http://p', requiredScope: 'mcp' } });
    const clientId = opts.clientId ?? 'alice';
    const identity: Identity = { clientId, principal: clientId, scopes: ['mcp'], grantId: 'g1', jti: 'j1', issuedAtMs: opts.issuedAtMs ?? now - 1000, expiresAtMs: now + 3_600_000, issuer: 'self', user: null, groups: [], claims: {} };
    ctx.identity = identity;
    ctx.clientAddress = opts.address ?? '10.0.0.1';
    return ctx;
  }

  const refuse = refuseRevoked({ generation: { epochMs: () => 0 }, skewMs: 0 });
  /** Runs stage 5, its revocation decision, then stage 7, as the pipeline does. */
  async function run(ctx: RequestContext): Promise<RequestContext> {
    await load(ctx);
    refuse(ctx);
    await resolve(ctx);
    return ctx;
  }

  /** Stores a session of `principal` as the response stage would, and returns its proxy id. */
  async function session(principal = 'alice', extra: { upstream?: number; fingerprint?: string; createdAt?: number } = {}): Promise<string> {
    const minted = sessionIds.mint(principal);
    const createdAt = extra.createdAt ?? now;
    await store.createSession(
      { key: minted.key, principal, grantId: 'g1', upstream: extra.upstream ?? 1, upstreamSessionId: `up-${minted.key}`, fingerprint: extra.fingerprint ?? '', createdAt, owner: null },
      { maxConcurrent: 100, onLimit: 'reject', now, idleTimeoutMs: config.sessions.idleTimeout, maxLifetimeMs: config.sessions.maxLifetime },
    );
    return minted.id;
  }

  return { config, store, context, run, session, fingerprint, advance: (ms: number) => (now += ms) };
}

t.test('a session-less initialize is marked for minting; anything else session-less just gets an upstream', async (t) => {
  const h = await harness(t);
  const init = await h.run(h.context({ body: INIT }));
  t.equal(init.creating, true);
  t.equal(init.message?.isInitialize, true);
  t.equal(init.message?.id, 1);
  t.same([init.upstreamIndex, init.upstream], [0, 'http://u0/mcp']);
  t.equal(init.session, null);
  t.equal(init.upstreamSessionId, null);

  const modern = await h.run(h.context({ body: { jsonrpc: '2.0', id: 'm', method: 'tools/list', params: { _meta: {} } }, headers: { 'mcp-protocol-version': '2026-07-28' } }));
  t.equal(modern.creating, false, 'a modern (or stateless) request is forwarded as it is');
  t.same([modern.upstreamIndex, modern.upstream], [1, 'http://u1/mcp'], 'round robin');
  const get = await h.run(h.context({ method: 'GET' }));
  t.same([get.creating, get.body], [false, null], 'a GET has no body to read');
});

t.test('open GET streams are capped per client on a replica', async (t) => {
  const h = await harness(t, { sessions: { maxStreams: 1 } });
  const first = await h.run(h.context({ method: 'GET' }));
  await t.rejects(h.run(h.context({ method: 'GET' })), { code: 'STREAM_LIMIT' });
  t.ok(await h.run(h.context({ method: 'GET', clientId: 'capped' })), 'another client has its own');
  first.res.emit('close');
  t.ok(await h.run(h.context({ method: 'GET' })), 'a closed stream frees its slot');
});

t.test('session-less bodies that are not JSON-RPC are refused before any upstream is picked', async (t) => {
  const h = await harness(t);
  await t.rejects(h.run(h.context({ body: '{not json' })), { code: 'INVALID_JSON' });
  await t.rejects(h.run(h.context({ body: [INIT, { jsonrpc: '2.0', method: 'notifications/initialized' }] })), { code: 'INVALID_MESSAGE' }, 'initialize in a batch');
  await t.rejects(h.run(h.context({ body: 'x'.repeat(5000) })), { code: 'BODY_TOO_LARGE' });
});

t.test('creation limits: the rate per client, the cap (reject), a per-client cap, and evict-oldest passing', async (t) => {
  const rated = await harness(t, { rateLimits: { sessionCreate: { points: 2, duration: '1m' } } });
  await rated.run(rated.context({ body: INIT }));
  await rated.run(rated.context({ body: INIT }));
  await t.rejects(rated.run(rated.context({ body: INIT })), { code: 'RATE_LIMITED', detail: { reason: 'session_create', limit: { points: 2, windowSeconds: 60, remaining: 0 } } });
  const other = await rated.run(rated.context({ body: INIT, clientId: 'capped' }));
  t.equal(other.creating, true, 'counted per client');

  const capped = await harness(t, { sessions: { maxConcurrent: 2, onLimit: 'reject' } });
  await capped.session();
  await capped.session();
  await t.rejects(capped.run(capped.context({ body: INIT })), { code: 'SESSION_LIMIT' });
  await capped.session('capped');
  await t.rejects(capped.run(capped.context({ body: INIT, clientId: 'capped' })), { code: 'SESSION_LIMIT' }, 'clients[].maxSessions overrides');

  const evicting = await harness(t, { sessions: { maxConcurrent: 1, onLimit: 'evict-oldest' } });
  await evicting.session();
  t.equal((await evicting.run(evicting.context({ body: INIT }))).creating, true, 'evict-oldest admits; the response stage evicts');
});

t.test('a presented id is found only within the caller\'s identity, alive, bound and on a known upstream', async (t) => {
  const h = await harness(t, { sessions: { bindTo: ['client', 'userAgent'], idleTimeout: '1m', maxLifetime: '5m' } });
  const fp = h.fingerprint({ userAgent: 'ua/1', address: '10.0.0.1' });
  const id = await h.session('alice', { fingerprint: fp });
  const headers = (sessionId: string, ua = 'ua/1') => ({ 'mcp-session-id': sessionId, 'user-agent': ua });

  const found = await h.run(h.context({ headers: headers(id), body: { jsonrpc: '2.0', id: 7, method: 'tools/list' } }));
  t.equal(found.session?.principal, 'alice');
  t.match(found.upstreamSessionId, /^up-/);
  t.same([found.upstreamIndex, found.upstream], [1, 'http://u1/mcp'], 'pinned to the upstream it was created on');
  t.equal(found.message?.method, 'tools/list', 'a POST in a session is read and parsed once its session checks out');
  await t.rejects(h.run(h.context({ headers: headers('made-up'), body: '{not json' })), { code: 'SESSION_NOT_FOUND' }, 'the session is judged before the body');
  await t.rejects(h.run(h.context({ headers: headers(id), body: '{not json' })), { code: 'INVALID_JSON' }, 'a bad body in a good session');

  await t.rejects(h.run(h.context({ headers: headers(id), clientId: 'capped' })), { code: 'SESSION_NOT_FOUND', detail: { reason: 'forged' } }, 'another client');
  await t.rejects(h.run(h.context({ headers: headers('made-up') })), { code: 'SESSION_NOT_FOUND', detail: { reason: 'forged' } });
  await t.rejects(h.run(h.context({ headers: headers(id, 'ua/2') })), { code: 'SESSION_BINDING_MISMATCH', detail: { reason: 'binding' } });
  await t.rejects(h.run(h.context({ headers: headers(await h.session('alice', { fingerprint: fp, upstream: 5 })) })), { code: 'SESSION_NOT_FOUND', detail: { reason: 'unknown' } }, 'pinned to an upstream no longer configured');

  h.advance(50_000);
  t.ok((await h.run(h.context({ headers: headers(id) }))).session, 'used within the idle timeout: slid');
  h.advance(50_000);
  t.ok((await h.run(h.context({ headers: headers(id) }))).session, '100 s after creation, alive because it slid');
  h.advance(61_000);
  await t.rejects(h.run(h.context({ headers: headers(id) })), { code: 'SESSION_NOT_FOUND', detail: { reason: 'unknown' } }, 'idle');
});

t.test('a client cutoff ends sessions created before it; tokens issued before it stop at load-state', async (t) => {
  const h = await harness(t);
  await h.store.revokePrincipal('alice', NOW - 5_000, 60_000);
  // A session stored by a replica that raced the revocation: older than the cutoff, so dead anyway.
  const racing = await h.session('alice', { createdAt: NOW - 10_000 });
  await t.rejects(h.run(h.context({ headers: { 'mcp-session-id': racing } })), { code: 'SESSION_NOT_FOUND', detail: { reason: 'unknown' } });
  const after = await h.session('alice', { createdAt: NOW });
  t.ok((await h.run(h.context({ headers: { 'mcp-session-id': after } }))).session, 'a session created after the cutoff is fine');
  await t.rejects(h.run(h.context({ headers: { 'mcp-session-id': after }, issuedAtMs: NOW - 6_000 })), { code: 'TOKEN_INVALID', detail: { reason: 'revoked' } }, 'a token from before the cutoff is not');

  await h.store.revokeToken('alice', 'j1', NOW + 60_000, NOW);
  await t.rejects(h.run(h.context({ headers: { 'mcp-session-id': after } })), { code: 'TOKEN_INVALID', detail: { reason: 'revoked' } }, 'a revoked jti');
});
