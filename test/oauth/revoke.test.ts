/**
 * POST /oauth/revoke per RFC 7009: client-authenticated; 200 for anything it cannot or may not
 * revoke (garbage, unknown, another client's token); an access token stops working on the MCP
 * path, a refresh token ends its whole grant.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { basic, mcpPost, postForm } from '../fixtures/http.js';
import type { RawResponse } from '../fixtures/http.js';
import { leakGuard } from '../fixtures/leaks.js';
import { accessClaims, forge } from '../fixtures/tokens.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';

const LIMITS = { tokenEndpoint: { points: 100_000, duration: '1m' }, failedAttempts: { points: 100_000, duration: '1m', block: '1s' } };
const upstream = await startDemoServer();
const proxy = await startWarden({ upstreams: [upstream.url], rateLimits: LIMITS, tokens: { issueRefreshTokens: true } });
const leaks = leakGuard();
leaks.watch(proxy.logs);
leaks.add(...Object.values(TEST_CLIENTS));
t.teardown(async () => {
  await proxy.close();
  await upstream.close();
});

const ALICE = basic('alice', TEST_CLIENTS.alice);
const BOB = basic('bob', TEST_CLIENTS.bob);

async function grant(authorization = ALICE): Promise<{ access: string; refresh: string }> {
  const res = await postForm(`${proxy.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization });
  const body = res.json();
  const tokens = { access: String(body.access_token), refresh: String(body.refresh_token) };
  leaks.add(tokens.access, tokens.refresh);
  return tokens;
}

async function revoke(form: Record<string, string>, authorization: string | null = ALICE): Promise<RawResponse> {
  return postForm(`${proxy.url}/oauth/revoke`, form, authorization === null ? {} : { authorization });
}

function expectOk(t: Test, res: RawResponse): void {
  t.equal(res.status, 200);
  t.equal(res.text, '', 'empty body');
  t.equal(res.header('cache-control'), 'no-store');
}

const mcpStatus = async (access: string): Promise<number> => (await mcpPost(proxy.mcpUrl, `Bearer ${access}`)).status;
const refreshStatus = async (refresh: string, authorization = ALICE): Promise<number> =>
  (await postForm(`${proxy.url}/oauth/token`, { grant_type: 'refresh_token', refresh_token: refresh }, { authorization })).status;

t.test('the client must authenticate: 401 invalid_client with a Basic challenge', async (t) => {
  const { access } = await grant();
  for (const [name, authorization] of [['none', null], ['wrong secret', basic('alice', 'wrong-secret-0123456789')]] as const) {
    const res = await revoke({ token: access }, authorization);
    t.equal(res.status, 401, name);
    t.match(res.json(), { error: 'invalid_client' });
    t.match(res.header('www-authenticate'), /^Basic /);
  }
  t.equal(await mcpStatus(access), 200, 'nothing was revoked');
  const missing = await revoke({});
  t.equal(missing.status, 400);
  t.match(missing.json(), { error: 'invalid_request' });
});

t.test('garbage and unknown tokens get 200 and change nothing', async (t) => {
  const before = proxy.logs.events('token.revoked').length;
  const forged = await forge({ key: new TextEncoder().encode('not-the-proxy-secret-0123456789abcdef'), alg: 'HS256', header: { kid: 'x' }, claims: accessClaims(proxy) });
  for (const token of ['garbage', 'A'.repeat(43), forged, 'x'.repeat(4000)]) expectOk(t, await revoke({ token }));
  expectOk(t, await revoke({ token: 'garbage', token_type_hint: 'something_else' }));
  t.equal(proxy.logs.events('token.revoked').length, before, 'no revocation event');
});

t.test('revoking an access token: the MCP path refuses it from then on', async (t) => {
  const { access } = await grant();
  const sibling = await grant();
  t.equal(await mcpStatus(access), 200);
  expectOk(t, await revoke({ token: access, token_type_hint: 'access_token' }));
  t.equal(await mcpStatus(access), 401);
  t.match(proxy.logs.events('auth.failed').at(-1), { code: 'TOKEN_INVALID', reason: 'revoked' });
  t.match(proxy.logs.events('token.revoked').at(-1), { reason: 'access_token', clientId: 'alice', jti: String });
  t.equal(await mcpStatus(sibling.access), 200, 'another grant of the same client still works');

  // The hint only orders the lookups (RFC 7009 §2.1): a wrong hint still revokes.
  const other = await grant();
  expectOk(t, await revoke({ token: other.access, token_type_hint: 'refresh_token' }));
  t.equal(await mcpStatus(other.access), 401);
  // And the other way round: a refresh token revoked with the access_token hint (it used to be ignored).
  const third = await grant();
  expectOk(t, await revoke({ token: third.refresh, token_type_hint: 'access_token' }));
  t.equal(await refreshStatus(third.refresh), 400, 'the refresh token is dead');
  t.equal(await mcpStatus(third.access), 401, 'and so is its grant');
});

t.test('revoking a refresh token ends the grant: no refresh, no access token of the grant', async (t) => {
  const { access, refresh } = await grant();
  expectOk(t, await revoke({ token: refresh }));
  t.match(proxy.logs.events('token.revoked').at(-1), { reason: 'refresh_token', clientId: 'alice', grant: String });
  t.equal(await refreshStatus(refresh), 400, 'the refresh token is dead');
  t.equal(await mcpStatus(access), 401, 'the grant\'s access token is dead');
  t.match(proxy.logs.events('auth.failed').at(-1), { reason: 'revoked' });
});

t.test('a client cannot revoke another client\'s tokens', async (t) => {
  const alices = await grant();
  const before = proxy.logs.events('token.revoked').length;
  expectOk(t, await revoke({ token: alices.access }, BOB));
  expectOk(t, await revoke({ token: alices.refresh }, BOB));
  expectOk(t, await revoke({ token: alices.refresh, token_type_hint: 'refresh_token' }, BOB));
  t.equal(proxy.logs.events('token.revoked').length, before, 'nothing revoked');
  t.equal(await mcpStatus(alices.access), 200, 'alice\'s access token still works');
  t.equal(await refreshStatus(alices.refresh), 200, 'alice\'s refresh token still works');

  const bobs = await grant(BOB);
  expectOk(t, await revoke({ token: bobs.access }, BOB));
  t.equal(await mcpStatus(bobs.access), 401, 'bob can revoke his own');
});

t.test('logs: no token or secret appears', async (t) => {
  const scan = leaks.scan();
  t.ok(scan.credentials >= 16, `${scan.credentials} credentials in ${scan.lines} lines`);
  t.same(scan.leaked, []);
});

t.test('a revoked access token stays refused while it would still verify (its exp plus tokens.clockSkew)', async (t) => {
  const own = await startWarden({ upstreams: [upstream.url], rateLimits: LIMITS, tokens: { accessTtl: '2m', clockSkew: '30s' } });
  t.teardown(() => own.close());
  const res = await postForm(`${own.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: ALICE });
  const access = String(res.json().access_token);
  leaks.add(access);
  expectOk(t, await postForm(`${own.url}/oauth/revoke`, { token: access }, { authorization: ALICE }));
  // Past exp, inside the skew: the signature and the times still verify; only the revocation refuses it.
  own.advance(120_000 + 20_000);
  const refused = await mcpPost(own.mcpUrl, `Bearer ${access}`);
  t.equal(refused.status, 401);
  t.match(own.logs.events('auth.failed').at(-1), { reason: 'revoked' }, 'refused as revoked, not as expired');
});
