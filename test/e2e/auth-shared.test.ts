/**
 * Authentication across replicas: two proxies behind one public URL share one Redis. Revocation
 * made through one is enforced by the other at once; without a configured secret both sign with
 * one generated key; a key rotation is picked up without restart while older tokens keep working.
 */
import t from 'tap';
import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startDemoServer } from '../../demo/mcp-server.js';
import { rotateKeys } from '../../src/admin/tokens.js';
import { validateConfig } from '../../src/config/validate.js';
import { basic, mcpPost, postForm, rawRequest } from '../fixtures/http.js';
import { leakGuard } from '../fixtures/leaks.js';
import { startRedis } from '../fixtures/redis.js';
import { claimsOf, kidOf } from '../fixtures/tokens.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const PUBLIC_URL = 'http://replicas.example:8080';
const redis = await startRedis();
const upstream = await startDemoServer();
const leaks = leakGuard();
leaks.add(...Object.values(TEST_CLIENTS));
t.teardown(async () => {
  await upstream.close();
  await redis.stop();
});

const ALICE = basic('alice', TEST_CLIENTS.alice);

/** The listener of a replica (its public URL is the shared one, not reachable from here). */
const local = (proxy: TestWarden): string => `http://127.0.0.1:${(proxy.warden.server.address() as AddressInfo).port}`;

/** Two replicas: one public URL, one Redis key space (a fresh prefix per test). */
async function replicas(t: Test, tokens: Record<string, unknown>) {
  const store = { type: 'redis', url: redis.url, keyPrefix: `auth-${randomBytes(4).toString('hex')}:` };
  const raw = { upstreams: [upstream.url], publicUrl: PUBLIC_URL, store, tokens: { issueRefreshTokens: true, ...tokens } };
  const a = await startWarden(raw);
  const b = await startWarden(raw);
  leaks.watch(a.logs);
  leaks.watch(b.logs);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const parsed = validateConfig(raw);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return { a, b, config: parsed.config };
}

async function grant(proxy: TestWarden): Promise<{ access: string; refresh: string }> {
  const body = (await postForm(`${local(proxy)}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: ALICE })).json();
  const tokens = { access: String(body.access_token), refresh: String(body.refresh_token) };
  leaks.add(tokens.access, tokens.refresh);
  return tokens;
}

const mcpStatus = async (proxy: TestWarden, access: string): Promise<number> => (await mcpPost(`${local(proxy)}/mcp`, `Bearer ${access}`)).status;

t.test('revocation through one replica is enforced by the other at once', async (t) => {
  const { a, b } = await replicas(t, { secret: 'shared-signing-secret-0123456789abcdef' });
  const g1 = await grant(a);
  const g2 = await grant(b);
  for (const access of [g1.access, g2.access]) {
    t.equal(await mcpStatus(a, access), 200, 'accepted by A');
    t.equal(await mcpStatus(b, access), 200, 'accepted by B');
  }

  const byEndpoint = await postForm(`${local(a)}/oauth/revoke`, { token: g1.access }, { authorization: ALICE });
  t.equal(byEndpoint.status, 200, 'access token revoked through A');
  t.equal(await mcpStatus(b, g1.access), 401, 'B refuses it');
  t.match(b.logs.events('auth.failed').at(-1), { code: 'TOKEN_INVALID', reason: 'revoked' });

  t.equal((await postForm(`${local(b)}/oauth/revoke`, { token: g2.refresh }, { authorization: ALICE })).status, 200, 'refresh token revoked through B');
  t.equal(await mcpStatus(a, g2.access), 401, 'A refuses the grant\'s access token');
  const refresh = await postForm(`${local(a)}/oauth/token`, { grant_type: 'refresh_token', refresh_token: g2.refresh }, { authorization: ALICE });
  t.equal(refresh.status, 400, 'and its refresh token');
  t.match(refresh.json(), { error: 'invalid_grant' });

  const g3 = await grant(a);
  t.equal(await mcpStatus(b, g3.access), 200);
  await a.warden.store.revokePrincipal('alice', Date.now() + 1, 600_000);
  t.equal(await mcpStatus(b, g3.access), 401, 'a client cut-off written by A is honoured by B');
  t.equal(await mcpStatus(a, g3.access), 401);
});

t.test('no configured secret: one generated key, shared through Redis; tokens and sessions work on both', async (t) => {
  const { a, b } = await replicas(t, { secret: null });
  t.equal((await a.warden.store.getKeys()).length, 1, 'generated once for both (set only if none)');
  t.equal(a.warden.keyRing.signingKey().kid, b.warden.keyRing.signingKey().kid);
  t.equal(a.logs.events('keys.generated').length + b.logs.events('keys.generated').length, 0, 'no per-process key warning with Redis');
  const fromA = await grant(a);
  const fromB = await grant(b);
  t.equal(await mcpStatus(b, fromA.access), 200, 'B accepts A\'s token');
  t.equal(await mcpStatus(a, fromB.access), 200, 'A accepts B\'s token');

  // The proxy session id's tag secret is shared too (SET NX): a session made on A continues on B.
  const init = await mcpPost(`${local(a)}/mcp`, `Bearer ${fromA.access}`);
  const sessionId = init.header('mcp-session-id');
  leaks.add(sessionId);
  t.match(sessionId, /^[A-Za-z0-9_-]{40,}$/);
  const next = await rawRequest(`${local(b)}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fromA.access}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  t.equal(next.status, 202, 'the session continues on B');
});

t.test('key rotation: old tokens keep working, new tokens carry the new kid, on both replicas without restart', async (t) => {
  const { a, b, config } = await replicas(t, { secret: null });
  const before = await grant(a);
  const oldKid = kidOf(before.access);

  const { kid: newKid } = await rotateKeys(a.warden.store, config);
  t.not(newKid, oldKid);
  t.equal(await mcpStatus(a, before.access), 200, 'a token signed before the rotation still works on A');
  t.equal(await mcpStatus(b, before.access), 200, 'and on B');
  t.equal(kidOf((await grant(a)).access), oldKid, 'until it reloads, A still signs with the old key');

  await b.warden.keyRing.refresh();
  const fromB = await grant(b);
  t.equal(kidOf(fromB.access), newKid, 'B, after its periodic refresh, signs with the new key');
  t.equal(await mcpStatus(a, fromB.access), 200, 'A accepts the new kid at once (reload on an unknown kid), without a restart');
  t.equal(kidOf((await grant(a)).access), newKid, 'and from then on signs with it too');
  t.equal(await mcpStatus(a, before.access), 200, 'the old token still works on A');
  t.equal(await mcpStatus(b, before.access), 200, 'and on B');
  t.equal(claimsOf(fromB.access).iss, PUBLIC_URL);
});

t.test('logs: no token, secret or session id appears', async (t) => {
  const scan = leaks.scan();
  t.ok(scan.credentials > 10, `${scan.credentials} credentials in ${scan.lines} lines`);
  t.same(scan.leaked, []);
});
