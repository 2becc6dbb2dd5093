/**
 * POST /oauth/token per RFC 6749: client authentication (basic or post, never both), scope and
 * RFC 8707 resource checks, the error codes of §5.2, no-store everywhere, and refresh tokens
 * (only when enabled) with rotation and reuse detection that ends the whole grant.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { basic, mcpPost, postForm } from '../fixtures/http.js';
import type { RawResponse } from '../fixtures/http.js';
import { leakGuard } from '../fixtures/leaks.js';
import { claimsOf } from '../fixtures/tokens.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';
import { decodeProtectedHeader } from 'jose';

const LIMITS = { tokenEndpoint: { points: 100_000, duration: '1m' }, failedAttempts: { points: 100_000, duration: '1m', block: '1s' } };
const upstream = await startDemoServer();
const proxy = await startWarden({ upstreams: [upstream.url], rateLimits: LIMITS });
const refreshing = await startWarden({ upstreams: [upstream.url], rateLimits: LIMITS, tokens: { issueRefreshTokens: true } });
const leaks = leakGuard();
leaks.watch(proxy.logs);
leaks.watch(refreshing.logs);
leaks.add(...Object.values(TEST_CLIENTS));
t.teardown(async () => {
  await proxy.close();
  await refreshing.close();
  await upstream.close();
});

const ALICE = basic('alice', TEST_CLIENTS.alice);
const responses: RawResponse[] = [];

async function token(target: TestWarden, form: Record<string, string> | string, headers: Record<string, string> = { authorization: ALICE }): Promise<RawResponse> {
  const res = await postForm(`${target.url}/oauth/token`, form, headers);
  responses.push(res);
  const body = res.status === 200 ? res.json() : {};
  leaks.add(String(body.access_token ?? ''), String(body.refresh_token ?? ''));
  return res;
}

function expectError(t: Test, res: RawResponse, status: number, error: string): void {
  t.equal(res.status, status, `status ${status}`);
  t.match(res.json(), { error, error_description: String }, `error ${error}`);
  t.notOk('access_token' in res.json(), 'no token');
}


async function mcpStatus(target: TestWarden, accessToken: string): Promise<number> {
  return (await mcpPost(target.mcpUrl, `Bearer ${accessToken}`)).status;
}

t.test('client_credentials with client_secret_basic: an RFC 9068 token for the MCP URL, no refresh token by default', async (t) => {
  const res = await token(proxy, { grant_type: 'client_credentials' });
  t.equal(res.status, 200);
  t.equal(res.header('content-type'), 'application/json');
  t.equal(res.header('pragma'), 'no-cache');
  const body = res.json();
  t.match(body, { token_type: 'Bearer', scope: 'mcp extra', access_token: String });
  t.ok(Number(body.expires_in) > 3590 && Number(body.expires_in) <= 3600, 'expires_in is the access TTL');
  t.notOk('refresh_token' in body, 'RFC 6749 §4.4.3: no refresh token unless tokens.issueRefreshTokens');
  const access = String(body.access_token);
  t.match(decodeProtectedHeader(access), { alg: 'HS256', typ: 'at+jwt', kid: String });
  t.match(claimsOf(access), { iss: proxy.url, aud: proxy.mcpUrl, sub: 'alice', client_id: 'alice', scope: 'mcp extra', gid: String, jti: String });
  t.equal(await mcpStatus(proxy, access), 200, 'accepted on the MCP path');
  t.match(proxy.logs.events('token.issued').at(-1), { clientId: 'alice', jti: String, grant: String });
});

t.test('client_secret_post works; both methods at once are invalid_request', async (t) => {
  const post = await token(proxy, { grant_type: 'client_credentials', client_id: 'bob', client_secret: TEST_CLIENTS.bob }, {});
  t.equal(post.status, 200);
  t.equal(claimsOf(String(post.json().access_token)).sub, 'bob');
  expectError(t, await token(proxy, { grant_type: 'client_credentials', client_id: 'alice', client_secret: TEST_CLIENTS.alice }), 400, 'invalid_request');
  expectError(t, await token(proxy, { grant_type: 'client_credentials', client_id: 'bob' }), 400, 'invalid_request');
  const sameId = await token(proxy, { grant_type: 'client_credentials', client_id: 'alice' });
  t.equal(sameId.status, 200, 'a client_id that repeats the Basic id is allowed (RFC 6749 §2.3.1)');
});

t.test('scope: a subset is granted, anything else is invalid_scope', async (t) => {
  const narrow = await token(proxy, { grant_type: 'client_credentials', scope: 'extra' });
  t.equal(narrow.json().scope, 'extra');
  t.equal(claimsOf(String(narrow.json().access_token)).scope, 'extra');
  expectError(t, await token(proxy, { grant_type: 'client_credentials', scope: 'mcp admin' }), 400, 'invalid_scope');
  expectError(t, await token(proxy, { grant_type: 'client_credentials', scope: ' ' }), 400, 'invalid_scope');
  t.match(proxy.logs.events('token.refused').at(-1), { code: 'OAUTH_INVALID_SCOPE' });
});

t.test('resource (RFC 8707): the MCP URL becomes aud; any other resource is invalid_target', async (t) => {
  for (const resource of [proxy.mcpUrl, `${proxy.mcpUrl}/`]) {
    const res = await token(proxy, { grant_type: 'client_credentials', resource });
    t.equal(res.status, 200, resource);
    t.equal(claimsOf(String(res.json().access_token)).aud, proxy.mcpUrl);
  }
  for (const resource of ['https://other.example/mcp', upstream.url, proxy.url, `${proxy.mcpUrl}x`]) {
    expectError(t, await token(proxy, { grant_type: 'client_credentials', resource }), 400, 'invalid_target');
  }
});

t.test('malformed requests: grant type, missing or repeated parameters, content type', async (t) => {
  expectError(t, await token(proxy, { grant_type: 'password', username: 'a', password: 'b' }), 400, 'unsupported_grant_type');
  expectError(t, await token(proxy, { grant_type: 'authorization_code', code: 'x' }), 400, 'unsupported_grant_type');
  expectError(t, await token(proxy, { scope: 'mcp' }), 400, 'invalid_request');
  expectError(t, await token(proxy, 'grant_type=client_credentials&grant_type=client_credentials'), 400, 'invalid_request');
  expectError(t, await token(proxy, 'grant_type=client_credentials&scope=mcp&scope=extra'), 400, 'invalid_request');
  const json = await postForm(`${proxy.url}/oauth/token`, 'grant_type=client_credentials', { 'content-type': 'application/json', authorization: ALICE });
  responses.push(json);
  expectError(t, json, 400, 'invalid_request');
  const none = await postForm(`${proxy.url}/oauth/token`, 'grant_type=client_credentials', { 'content-type': '', authorization: ALICE });
  responses.push(none);
  expectError(t, none, 400, 'invalid_request');
  const big = await token(proxy, `grant_type=client_credentials&pad=${'x'.repeat(20_000)}`);
  expectError(t, big, 400, 'invalid_request');
});

t.test('invalid_client is 401 with WWW-Authenticate: Basic, and an auth.failed event', async (t) => {
  const cases: [string, Record<string, string>, Record<string, string>, string][] = [
    ['wrong secret (basic)', { grant_type: 'client_credentials' }, { authorization: basic('alice', 'wrong-secret-0123456789') }, 'client'],
    ['wrong secret (post)', { grant_type: 'client_credentials', client_id: 'alice', client_secret: 'wrong-secret-0123456789' }, {}, 'client'],
    ['unknown client', { grant_type: 'client_credentials' }, { authorization: basic('mallory', 'whatever-0123456789') }, 'client'],
    ['another client\'s secret', { grant_type: 'client_credentials' }, { authorization: basic('bob', TEST_CLIENTS.alice) }, 'client'],
    ['no credentials', { grant_type: 'client_credentials' }, {}, 'missing'],
    ['malformed Basic header', { grant_type: 'client_credentials' }, { authorization: 'Basic !!!' }, 'malformed'],
    ['Bearer instead of Basic', { grant_type: 'client_credentials' }, { authorization: 'Bearer abc' }, 'malformed'],
  ];
  for (const [name, form, headers, reason] of cases) {
    const before = proxy.logs.events('auth.failed').length;
    const res = await token(proxy, form, headers);
    expectError(t, res, 401, 'invalid_client');
    t.equal(res.all('www-authenticate').length, 1, `${name}: one challenge`);
    t.match(res.header('www-authenticate'), /^Basic realm="mcp-warden"/, `${name}: Basic challenge`);
    const events = proxy.logs.events('auth.failed').slice(before);
    t.equal(events.length, 1, `${name}: one event`);
    t.match(events[0], { code: 'OAUTH_INVALID_CLIENT', reason, route: '/oauth/token' }, `${name}: reason ${reason}`);
  }
});

t.test('refresh tokens are refused when tokens.issueRefreshTokens is off', async (t) => {
  expectError(t, await token(proxy, { grant_type: 'refresh_token', refresh_token: 'A'.repeat(43) }), 400, 'invalid_grant');
  expectError(t, await token(proxy, { grant_type: 'refresh_token' }), 400, 'invalid_request');
});

t.test('refresh tokens: rotation, scope narrowing, and reuse revoking the whole grant', async (t) => {
  const first = await token(refreshing, { grant_type: 'client_credentials' });
  t.equal(first.status, 200);
  const a1 = String(first.json().access_token);
  const r1 = String(first.json().refresh_token);
  t.match(r1, /^[A-Za-z0-9_-]{43}$/, 'an opaque 256-bit refresh token');
  const grant = claimsOf(a1).gid;

  const second = await token(refreshing, { grant_type: 'refresh_token', refresh_token: r1 });
  t.equal(second.status, 200, 'r1 → a2 + r2');
  const a2 = String(second.json().access_token);
  const r2 = String(second.json().refresh_token);
  t.not(r2, r1, 'the refresh token rotated');
  t.equal(claimsOf(a2).gid, grant, 'same grant');
  t.not(claimsOf(a2).jti, claimsOf(a1).jti);
  t.match(refreshing.logs.events('token.refreshed').at(-1), { clientId: 'alice' });

  expectError(t, await token(refreshing, { grant_type: 'refresh_token', refresh_token: r2 }, { authorization: basic('bob', TEST_CLIENTS.bob) }), 400, 'invalid_grant');
  expectError(t, await token(refreshing, { grant_type: 'refresh_token', refresh_token: r2, scope: 'mcp admin' }), 400, 'invalid_scope');
  const third = await token(refreshing, { grant_type: 'refresh_token', refresh_token: r2, scope: 'mcp' });
  t.equal(third.status, 200, 'bob\'s attempt and the refused scope did not consume r2');
  t.equal(third.json().scope, 'mcp', 'a refresh may narrow the scope');
  const a3 = String(third.json().access_token);
  const r3 = String(third.json().refresh_token);
  for (const access of [a1, a2, a3]) t.equal(await mcpStatus(refreshing, access), 200, 'every access token of the grant works before the reuse');

  const reuse = await token(refreshing, { grant_type: 'refresh_token', refresh_token: r1 });
  expectError(t, reuse, 400, 'invalid_grant');
  t.match(refreshing.logs.events('refresh.reuse').at(-1), { event: 'refresh.reuse', clientId: 'alice', grant: String });
  t.equal(refreshing.logs.events('refresh.reuse').length, 1);
  expectError(t, await token(refreshing, { grant_type: 'refresh_token', refresh_token: r3 }), 400, 'invalid_grant');
  for (const access of [a1, a2, a3]) {
    const res = await mcpPost(refreshing.mcpUrl, `Bearer ${access}`);
    t.equal(res.status, 401, 'the grant\'s access tokens stop working');
  }
  t.match(refreshing.logs.events('auth.failed').at(-1), { reason: 'revoked' });
  const fresh = await token(refreshing, { grant_type: 'client_credentials' });
  t.equal(await mcpStatus(refreshing, String(fresh.json().access_token)), 200, 'a new grant of the same client is unaffected');
});

t.test('every token endpoint response carries Cache-Control: no-store', async (t) => {
  t.ok(responses.length > 30, `${responses.length} responses`);
  t.same(responses.filter((r) => r.header('cache-control') !== 'no-store').map((r) => r.status), []);
  t.ok(responses.some((r) => r.status === 200) && responses.some((r) => r.status === 401) && responses.some((r) => r.status === 400));
});

t.test('logs: no access token, refresh token or client secret appears', async (t) => {
  const scan = leaks.scan();
  t.ok(scan.credentials > 20, `${scan.credentials} credentials searched in ${scan.lines} lines`);
  t.same(scan.leaked, []);
});

t.test('an unknown client id and a known one with a wrong secret take the same time (no enumeration by timing)', async (t) => {
  const time = async (authorization: string): Promise<number> => {
    const started = performance.now();
    const res = await postForm(`${proxy.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization });
    t.equal(res.status, 401);
    return performance.now() - started;
  };
  const unknown: number[] = [];
  const wrong: number[] = [];
  // Alternating rounds, medians: machine load hits both sides alike.
  for (let i = 0; i < 7; i++) {
    unknown.push(await time(basic('nobody-here', 'wrong-secret-0123456789')));
    wrong.push(await time(basic('alice', 'wrong-secret-0123456789')));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[3] ?? 0;
  const ratio = median(unknown) / median(wrong);
  // Before: ~70 ms against ~1.5 ms (a ratio near 50). Both now pay one scrypt.
  t.ok(ratio > 0.4 && ratio < 2.5, `unknown ${median(unknown).toFixed(1)} ms vs wrong secret ${median(wrong).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`);
});
