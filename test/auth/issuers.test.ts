/**
 * External issuers (`tokens.trustedIssuers`): a local identity provider publishes a JWK set over
 * HTTP; its tokens are accepted on the MCP path with `sub` as the identity, and everything that
 * does not match the configured issuer, audience, lifetime, key or algorithm is refused.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { mcpPost } from '../fixtures/http.js';
import { leakGuard } from '../fixtures/leaks.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { forge, startIdentityProvider } from '../fixtures/tokens.js';
import type { IdentityProvider } from '../fixtures/tokens.js';
import { startWarden } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const AUDIENCE = 'mcp-warden-test';
const upstream = await startDemoServer();
const leaks = leakGuard();
t.teardown(() => upstream.close());

async function setup(t: Test, alg: 'RS256' | 'ES256', issuer: { types?: string[]; scopes?: string[] } = {}): Promise<{ idp: IdentityProvider; proxy: TestWarden }> {
  const idp = await startIdentityProvider({ alg });
  const proxy = await startWarden({
    upstreams: [upstream.url],
    tokens: { trustedIssuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, audience: AUDIENCE, types: ['jwt'], scopes: ['mcp'], ...issuer }] },
    rateLimits: { failedAttempts: { points: 100_000, duration: '1m', block: '1s' } },
  });
  leaks.watch(proxy.logs);
  t.teardown(async () => {
    await proxy.close();
    await idp.close();
  });
  return { idp, proxy };
}

const now = (): number => Math.floor(Date.now() / 1000);

async function expectRefused(t: Test, proxy: TestWarden, token: string, reason: string): Promise<void> {
  leaks.add(token);
  const seen = upstream.requests.length;
  const res = await mcpPost(proxy.mcpUrl, `Bearer ${token}`);
  t.equal(res.status, 401, `${reason}: 401`);
  t.match(res.header('www-authenticate'), /^Bearer error="invalid_token"/);
  t.match(proxy.logs.events('auth.failed').at(-1), { code: 'TOKEN_INVALID', reason }, `reason ${reason}`);
  t.equal(upstream.requests.length, seen, 'the upstream saw nothing');
}

for (const alg of ['RS256', 'ES256'] as const) {
  t.test(`${alg}: a valid token is accepted and the upstream sees the issuer-qualified sub as X-MCP-Client-Id`, async (t) => {
    const { idp, proxy } = await setup(t, alg);
    const token = await idp.sign({ sub: 'user-42@idp', aud: AUDIENCE, iat: now(), exp: now() + 300, jti: 'idp-token-1' });
    leaks.add(token);
    const { client, close } = await connectClient(proxy.mcpUrl, { token });
    t.teardown(close);
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const text = (result.content as { type: string; text: string }[])[0]?.text ?? '{}';
    t.same(JSON.parse(text), { clientId: 'idp0~user-42@idp', scopes: 'mcp', authorization: null }, 'sub (issuer-qualified) and the issuer\'s default scopes reach the upstream; the token does not');
    t.equal(idp.fetches(), 1, 'the JWKS was fetched once and cached');
  });
}

t.test('an external subject named like a local client, or spelling another subject\'s hash, is neither', async (t) => {
  const { idp, proxy } = await setup(t, 'ES256');
  const base = { aud: AUDIENCE, iat: now(), exp: now() + 300 };
  const alice = await idp.sign({ ...base, sub: 'alice' });
  leaks.add(alice);
  const whoami = async (token: string): Promise<string> => {
    const { client, close } = await connectClient(proxy.mcpUrl, { token });
    t.teardown(close);
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    return (JSON.parse((result.content as { text: string }[])[0]?.text ?? '{}') as { clientId: string }).clientId;
  };
  t.equal(await whoami(alice), 'idp0~alice', 'the IdP\'s "alice" is not the local client alice upstream');
  t.not(await whoami(await proxy.token('alice')), 'idp0~alice');

  // A subject outside the safe set is kept as a hash; a subject that spells that hash is someone else.
  const odd = await idp.sign({ ...base, sub: 'odd|subject/with:chars' });
  leaks.add(odd);
  const hashed = await whoami(odd);
  t.match(hashed, /^idp0~#[A-Za-z0-9_-]{22}$/);
  const spelled = await idp.sign({ ...base, sub: hashed.slice('idp0~#'.length) });
  leaks.add(spelled);
  t.not(await whoami(spelled), hashed, 'the spelled hash is another identity');
  const { transport } = await connectClient(proxy.mcpUrl, { token: odd });
  const reply = await mcpPost(proxy.mcpUrl, `Bearer ${spelled}`, { 'mcp-session-id': transport.sessionId ?? '' });
  t.equal(reply.status, 404, 'and does not get its sessions');
});

t.test('refused: wrong audience, wrong issuer, expired, unknown kid, missing sub, HS256 claiming the issuer', async (t) => {
  const { idp, proxy } = await setup(t, 'ES256');
  const base = { sub: 'user-1', aud: AUDIENCE, iat: now(), exp: now() + 300 };
  await expectRefused(t, proxy, await idp.sign({ ...base, aud: 'someone-else' }), 'audience');
  await expectRefused(t, proxy, await idp.sign({ ...base, aud: proxy.mcpUrl }), 'audience');
  await expectRefused(t, proxy, await idp.sign({ ...base, iss: 'https://evil.example' }), 'issuer');
  await expectRefused(t, proxy, await idp.sign({ ...base, iat: now() - 7200, exp: now() - 3600 }), 'expired');
  await expectRefused(t, proxy, await idp.sign({ ...base, nbf: now() + 3600 }), 'not_yet_valid');
  await expectRefused(t, proxy, await idp.sign(base, { kid: 'rotated-away' }), 'unknown_key');
  const { sub: _sub, ...anonymous } = base;
  await expectRefused(t, proxy, await idp.sign(anonymous), 'claims');
  await expectRefused(t, proxy, await idp.sign({ ...base, sub: 'evil\r\nX-Injected: 1' }), 'claims');

  // Algorithm confusion: an HMAC "signed" with the provider's public key material.
  const publicJwk = JSON.stringify(idp.publicJwk);
  const confused = await forge({ key: new TextEncoder().encode(publicJwk), alg: 'HS256', header: { kid: idp.kid, typ: 'JWT' }, claims: { ...base, iss: idp.issuer } });
  await expectRefused(t, proxy, confused, 'algorithm');
  await expectRefused(t, proxy, await forge({ alg: 'none', header: { kid: idp.kid }, claims: { ...base, iss: idp.issuer } }), 'algorithm');

  const good = await idp.sign(base);
  leaks.add(good);
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${good}`)).status, 200, 'control: the same claims, correctly signed, are accepted');
});

t.test('an external token without the required scope gets 403 insufficient_scope', async (t) => {
  const { idp, proxy } = await setup(t, 'RS256');
  const token = await idp.sign({ sub: 'user-2', aud: AUDIENCE, exp: now() + 300, scope: 'profile email' });
  leaks.add(token);
  const res = await mcpPost(proxy.mcpUrl, `Bearer ${token}`);
  t.equal(res.status, 403);
  t.match(res.header('www-authenticate'), /^Bearer error="insufficient_scope", scope="mcp"/);
  const scoped = await idp.sign({ sub: 'user-2', aud: AUDIENCE, exp: now() + 300, scope: 'profile mcp' });
  leaks.add(scoped);
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${scoped}`)).status, 200, 'the token\'s own scope claim decides');
  const injected = await idp.sign({ sub: 'user-2', aud: AUDIENCE, exp: now() + 300, scope: 'mcp\r\nX-Evil: 1' });
  leaks.add(injected);
  const refused = await mcpPost(proxy.mcpUrl, `Bearer ${injected}`);
  t.equal(refused.status, 401, 'a scope claim that is not scope tokens is refused, not forwarded into a header');
  t.match(refused.header('www-authenticate'), /error="invalid_token"/);
});

t.test('an external subject named like a local client does not share its identity in the store', async (t) => {
  const { idp, proxy } = await setup(t, 'ES256');
  const token = await idp.sign({ sub: 'alice', aud: AUDIENCE, exp: now() + 300 });
  leaks.add(token);
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${token}`)).status, 200);
  // Issued before the revocation: one issued after it may carry the next second's iat, which
  // the cutoff rightly lets through.
  const local = await proxy.token('alice');
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${local}`)).status, 200, 'the local client works before');
  // Revoking the local client "alice" must not touch the IdP's "alice", and the reverse.
  await proxy.warden.store.revokePrincipal('alice', Date.now() + 1, 600_000);
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${token}`)).status, 200, 'the IdP subject is a different principal');
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${local}`)).status, 401, 'the local client is cut off');
});

t.test('logs: no external token appears', async (t) => {
  const scan = leaks.scan();
  t.ok(scan.credentials > 10);
  t.same(scan.leaked, []);
});

t.test('an issuer\'s token types and default scopes are explicit: an ID token is not an access token', async (t) => {
  const { idp, proxy } = await setup(t, 'ES256', { types: ['at+jwt'], scopes: [] });
  const claims = { sub: 'user-7', aud: AUDIENCE, iat: now(), exp: now() + 300 };
  // What an OpenID provider's ID token looks like: typ JWT, the right audience, a nonce.
  await expectRefused(t, proxy, await idp.sign({ ...claims, nonce: 'n-1', scope: 'mcp' }), 'type');
  await expectRefused(t, proxy, await idp.sign({ ...claims, scope: 'mcp' }, { typ: 'id_token+jwt' }), 'type');
  const access = await idp.sign({ ...claims, scope: 'mcp' }, { typ: 'at+jwt' });
  leaks.add(access);
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${access}`)).status, 200, 'an RFC 9068 access token is accepted');
  const spelled = await idp.sign({ ...claims, scope: 'mcp' }, { typ: 'application/AT+JWT' });
  leaks.add(spelled);
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${spelled}`)).status, 200, 'typ compared case-insensitively, application/ optional (RFC 8725)');
  const scp = await idp.sign({ ...claims, scp: ['mcp'] }, { typ: 'at+jwt' });
  leaks.add(scp);
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${scp}`)).status, 200, 'an scp array claim counts as the scope');
  const bare = await idp.sign(claims, { typ: 'at+jwt' });
  leaks.add(bare);
  const res = await mcpPost(proxy.mcpUrl, `Bearer ${bare}`);
  t.equal(res.status, 403, 'no scope claim and scopes [] means no scope: nothing is granted by default');
  t.match(res.header('www-authenticate'), /error="insufficient_scope"/);
});
