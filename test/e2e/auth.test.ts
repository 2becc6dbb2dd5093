/**
 * The authentication stage end to end: every way a bearer token can be wrong gets exactly one
 * Bearer challenge, the right status and JSON-RPC body, one `auth.failed` event with its reason,
 * and never reaches the upstream. Then what the upstream does see for a valid token.
 */
import t from 'tap';
import type { Test } from 'tap';
import { exportJWK, generateKeyPair } from 'jose';
import { startDemoServer } from '../../demo/mcp-server.js';
import { mcpPost } from '../fixtures/http.js';
import type { RawResponse } from '../fixtures/http.js';
import { leakGuard } from '../fixtures/leaks.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { accessClaims, claimsOf, forge, kidOf } from '../fixtures/tokens.js';
import { startWarden } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const SECRET = 'attack-table-signing-secret-0123456789';
const HS_KEY = new TextEncoder().encode(SECRET);
// Many refusals from one address in a row: keep the failed-attempt block out of the way.
const LENIENT = { failedAttempts: { points: 100_000, duration: '1m', block: '1s' } };

const upstream = await startDemoServer();
const proxy = await startWarden({ upstreams: [upstream.url], tokens: { secret: SECRET }, rateLimits: LENIENT, upstreamHeaders: { 'X-Upstream-Key': 'upstream-credential-0123456789' } });
const eddsa = await startWarden({ upstreams: [upstream.url], tokens: { algorithm: 'EdDSA', secret: null }, rateLimits: LENIENT });
const leaks = leakGuard();
leaks.watch(proxy.logs);
leaks.watch(eddsa.logs);
t.teardown(async () => {
  await proxy.close();
  await eddsa.close();
  await upstream.close();
});

const kid = kidOf(await proxy.token());

/** `name="value"` parameters of a challenge. */
function challengeParams(value: string): Record<string, string> {
  return Object.fromEntries([...value.matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

interface Expected {
  readonly status: 401 | 403;
  readonly code: 'TOKEN_MISSING' | 'TOKEN_INVALID' | 'INSUFFICIENT_SCOPE';
  readonly reason: string | undefined;
  readonly error: 'invalid_token' | 'insufficient_scope' | null;
}

const INVALID = (reason: string): Expected => ({ status: 401, code: 'TOKEN_INVALID', reason, error: 'invalid_token' });

/** Sends one request and checks everything a refusal on the MCP path must be. */
async function expectRefusal(t: Test, target: TestWarden, authorization: string | undefined, want: Expected): Promise<RawResponse> {
  const seenUpstream = upstream.requests.length;
  const eventsBefore = target.logs.events('auth.failed').length;
  const res = await mcpPost(target.mcpUrl, authorization);
  t.equal(res.status, want.status, 'status');
  const challenges = res.all('www-authenticate');
  t.equal(challenges.length, 1, 'exactly one WWW-Authenticate header');
  const challenge = challenges[0] ?? '';
  t.match(challenge, /^Bearer /, 'the challenge starts with Bearer');
  const params = challengeParams(challenge);
  t.equal(params.resource_metadata, `${target.url}/.well-known/oauth-protected-resource/mcp`, 'absolute resource_metadata URL');
  t.ok(URL.canParse(params.resource_metadata ?? ''), 'resource_metadata parses as an absolute URL');
  t.equal(params.scope, 'mcp', 'the required scope is announced');
  t.equal(params.error, want.error ?? undefined, `error=${String(want.error)}`);
  t.equal(res.header('cache-control'), 'no-store');
  t.match(res.json(), { jsonrpc: '2.0', error: { code: -32000, message: String }, id: null }, 'JSON-RPC error body');
  const events = target.logs.events('auth.failed').slice(eventsBefore);
  t.equal(events.length, 1, 'one auth.failed event');
  t.match(events[0], { event: 'auth.failed', code: want.code, route: 'mcp' });
  t.equal(events[0]?.reason, want.reason, `reason ${String(want.reason)}`);
  t.equal(upstream.requests.length, seenUpstream, 'the upstream saw nothing');
  return res;
}

async function expectAccepted(t: Test, target: TestWarden, token: string): Promise<void> {
  const seenUpstream = upstream.requests.length;
  const res = await mcpPost(target.mcpUrl, `Bearer ${token}`);
  t.equal(res.status, 200, 'accepted');
  leaks.add(res.header('mcp-session-id'));
  t.equal(upstream.requests.length, seenUpstream + 1, 'forwarded once');
}

t.test('control: a token forged with the real key and claims is accepted (so each refusal below is for its stated reason)', async (t) => {
  const token = await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: accessClaims(proxy) });
  leaks.add(token);
  await expectAccepted(t, proxy, token);
  await expectAccepted(t, eddsa, await eddsa.token());
});

t.test('missing token: 401 with a challenge without error=', async (t) => {
  const res = await expectRefusal(t, proxy, undefined, { status: 401, code: 'TOKEN_MISSING', reason: 'missing', error: null });
  t.notMatch(res.header('www-authenticate'), /error=/);
});

t.test('the attack table: 401 invalid_token with the reason of each attack', async (t) => {
  const es = await generateKeyPair('ES256');
  const rs = await generateKeyPair('RS256');
  const now = Math.floor(Date.now() / 1000);
  const valid = (overrides: Record<string, unknown> = {}) => accessClaims(proxy, overrides);
  const { sub: _sub, ...withoutSub } = valid();
  const { gid: _gid, ...withoutGid } = valid();
  const rows: [string, () => Promise<string>, string][] = [
    ['malformed header: Basic scheme', async () => 'Basic YWxpY2U6c2VjcmV0LXNlY3JldA==', 'malformed'],
    ['malformed header: two tokens', async () => 'Bearer abc def', 'malformed'],
    ['malformed header: characters outside b64token', async () => 'Bearer abc$def', 'malformed'],
    ['malformed header: scheme only', async () => 'Bearer', 'malformed'],
    ['not a JWT', async () => 'Bearer abc.def.ghi', 'malformed'],
    ['bad signature (another secret)', async () => `Bearer ${await forge({ key: new TextEncoder().encode('not-the-proxy-secret-0123456789abcdef'), alg: 'HS256', header: { kid }, claims: valid() })}`, 'bad_signature'],
    ['bad signature (payload edited after signing)', async () => {
      const [h, , s] = (await proxy.token()).split('.');
      return `Bearer ${h}.${Buffer.from(JSON.stringify(valid({ scope: 'mcp extra admin' }))).toString('base64url')}.${s}`;
    }, 'bad_signature'],
    ['alg: none', async () => `Bearer ${await forge({ alg: 'none', header: { kid }, claims: valid() })}`, 'algorithm'],
    ['alg: NONE (case games)', async () => `Bearer ${await forge({ alg: 'NONE', header: { kid }, claims: valid() })}`, 'algorithm'],
    ['ES256 token against the HS256 proxy', async () => `Bearer ${await forge({ key: es.privateKey, alg: 'ES256', header: { kid }, claims: valid() })}`, 'algorithm'],
    ['RS256 token against the HS256 proxy', async () => `Bearer ${await forge({ key: rs.privateKey, alg: 'RS256', header: { kid }, claims: valid() })}`, 'algorithm'],
    ['wrong typ (JWT)', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid, typ: 'JWT' }, claims: valid() })}`, 'type'],
    ['no typ', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid, typ: undefined }, claims: valid() })}`, 'type'],
    ['expired', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: valid({ iat: now - 7200, exp: now - 3600 }) })}`, 'expired'],
    ['not yet valid: nbf beyond the skew', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: valid({ nbf: now + 3600 }) })}`, 'not_yet_valid'],
    ['not yet valid: iat beyond the skew', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: valid({ iat: now + 3600, exp: now + 7200 }) })}`, 'not_yet_valid'],
    ['wrong iss', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: valid({ iss: 'https://evil.example' }) })}`, 'issuer'],
    ['wrong aud (another resource)', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: valid({ aud: 'https://other.example/mcp' }) })}`, 'audience'],
    ['wrong aud (the upstream URL)', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: valid({ aud: upstream.url }) })}`, 'audience'],
    ['unknown kid', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid: 'no-such-key' }, claims: valid() })}`, 'unknown_key'],
    ['no kid', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', claims: valid() })}`, 'unknown_key'],
    ['missing sub', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: withoutSub })}`, 'claims'],
    ['missing gid', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: withoutGid })}`, 'claims'],
    ['sub differs from client_id', async () => `Bearer ${await forge({ key: HS_KEY, alg: 'HS256', header: { kid }, claims: valid({ sub: 'bob' }) })}`, 'claims'],
  ];
  for (const [name, authorization, reason] of rows) {
    const header = await authorization();
    leaks.add(header.replace(/^Bearer /, ''));
    await t.test(name, (t) => expectRefusal(t, proxy, header, INVALID(reason)));
  }
});

t.test('algorithm confusion on an EdDSA proxy: HS256 keyed with its public JWK is refused', async (t) => {
  const jwk = eddsa.warden.keyRing.jwks().keys[0];
  if (!jwk?.x || !jwk.kid) throw new Error('the EdDSA proxy publishes no key');
  const claims = accessClaims(eddsa);
  for (const [name, secret] of [['JWK JSON', JSON.stringify(jwk)], ['raw x coordinate', Buffer.from(jwk.x, 'base64url')]] as const) {
    const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : new Uint8Array(secret);
    const token = await forge({ key, alg: 'HS256', header: { kid: jwk.kid }, claims });
    await t.test(name, (t) => expectRefusal(t, eddsa, `Bearer ${token}`, INVALID('algorithm')));
  }
  const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  t.ok((await exportJWK(other.publicKey)).x, 'a foreign Ed25519 key');
  const foreign = await forge({ key: other.privateKey, alg: 'EdDSA', header: { kid: jwk.kid }, claims });
  await t.test('EdDSA token signed by another key', (t) => expectRefusal(t, eddsa, `Bearer ${foreign}`, INVALID('bad_signature')));
});

t.test('revoked tokens: by jti, by grant, by client cut-off', async (t) => {
  const { store } = proxy.warden;
  const now = Date.now();
  const byJti = await proxy.token();
  await expectAccepted(t, proxy, byJti);
  await store.revokeToken('alice', String(claimsOf(byJti).jti), now + 600_000, now);
  await t.test('jti', (t) => expectRefusal(t, proxy, `Bearer ${byJti}`, INVALID('revoked')));

  const byGrant = await proxy.token();
  await store.revokeGrant('alice', String(claimsOf(byGrant).gid), 600_000, now);
  await t.test('grant', (t) => expectRefusal(t, proxy, `Bearer ${byGrant}`, INVALID('revoked')));

  const bobs = await proxy.token('bob');
  await expectAccepted(t, proxy, bobs);
  await store.revokePrincipal('bob', Date.now() + 1, 600_000);
  await t.test('client cut-off', (t) => expectRefusal(t, proxy, `Bearer ${bobs}`, INVALID('revoked')));
  leaks.add(byJti, byGrant, bobs);
  await expectAccepted(t, proxy, await proxy.token('alice'));
});

t.test('a valid token without tokens.requiredScope: 403 insufficient_scope with scope and resource_metadata', async (t) => {
  const token = await proxy.token('alice', 'extra');
  leaks.add(token);
  const res = await expectRefusal(t, proxy, `Bearer ${token}`, { status: 403, code: 'INSUFFICIENT_SCOPE', reason: undefined, error: 'insufficient_scope' });
  t.match(res.header('www-authenticate'), /^Bearer error="insufficient_scope", scope="mcp", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/);
});

t.test('upstream side: no Authorization, upstreamHeaders added, identity headers set by the proxy only', async (t) => {
  const token = await proxy.token('alice', 'mcp extra');
  leaks.add(token);
  const from = upstream.requests.length;
  const { client, transport, close } = await connectClient(proxy.mcpUrl, {
    token,
    headers: { 'X-MCP-Client-Id': 'mallory', 'x-mcp-scopes': 'admin', 'X-Upstream-Key': 'client-chosen' },
  });
  t.teardown(close);
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  const content = result.content as { type: string; text: string }[];
  t.same(JSON.parse(content[0]?.text ?? '{}'), { clientId: 'alice', scopes: 'mcp extra', authorization: null }, 'whoami: the proxy\'s identity, no token');
  // A differently-cased copy sent raw (fetch would merge it) is removed too.
  const raw = await mcpPost(proxy.mcpUrl, `Bearer ${token}`, { 'X-Mcp-CLIENT-id': 'eve', 'X-MCP-SCOPES': 'root' });
  t.equal(raw.status, 200);
  leaks.add(raw.header('mcp-session-id'), transport.sessionId);
  const seen = upstream.requests.slice(from);
  t.ok(seen.length >= 3, 'initialize, tools/call and the raw request reached the upstream');
  for (const r of seen) {
    t.equal(r.headers.authorization, undefined, `${r.method}: no Authorization`);
    t.equal(r.headers['x-mcp-client-id'], 'alice', `${r.method}: client id set by the proxy`);
    t.equal(r.headers['x-mcp-scopes'], 'mcp extra', `${r.method}: scopes set by the proxy`);
    t.equal(r.headers['x-upstream-key'], 'upstream-credential-0123456789', `${r.method}: configured upstream header`);
  }
});

t.test('logs: no token, signature, secret or full session id appears in any line', async (t) => {
  leaks.add(SECRET, 'upstream-credential-0123456789', ...upstream.sessionIds());
  const scan = leaks.scan();
  t.ok(scan.lines > 40, `searched ${scan.lines} lines`);
  t.ok(scan.credentials > 40, `for ${scan.credentials} credentials`);
  t.same(scan.leaked, []);
  t.ok(proxy.logs.events('auth.failed').length > 25, 'the refusals were logged (without their tokens)');

  // Control: the guard does find a credential that was logged, whole or as a bare signature.
  const planted = await proxy.token();
  const probe = leakGuard();
  probe.add(planted);
  probe.watch({ lines: [], events: () => [], text: () => `{"msg":"oops","sig":"${planted.split('.')[2] ?? ''}"}` });
  t.equal(probe.scan().leaked.length, 1, 'a planted signature is detected');
});
