/**
 * Interactive sign-in (DESIGN §11) end to end: a real OpenID provider (oidc-provider), mcp-warden
 * as the authorization server MCP clients see, the MCP SDK's own OAuth client (`auth()` through
 * the Streamable HTTP transport's authProvider), a real SDK upstream. The browser steps are
 * followed with plain HTTP (cookies kept per host).
 */
import t from 'tap';
import type { Test } from 'tap';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Browser } from '../fixtures/oidc.js';
import { send } from '../fixtures/session-http.js';
import { APP_REDIRECT, AppProvider, signedInClient, signInStack as stack } from '../fixtures/sign-in.js';

t.test('a person signs in through the MCP SDK client, consents, calls a tool; the upstream sees the person apart from the app', async (t) => {
  const { proxy, upstream } = await stack(t);
  const { client, app, browser } = await signedInClient(t, proxy, 'alice');
  t.equal(browser.hops.filter((h) => h.body.includes('action="/oauth/consent"')).length, 1, 'mcp-warden asked for consent once');
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'hi' } })).content, [{ type: 'text', text: 'echo: hi' }]);
  const seen = upstream.requests.at(-1)?.headers ?? {};
  t.match(seen['x-mcp-user'], /^u~[A-Za-z0-9_-]{6}~alice$/, 'the person, issuer-qualified');
  t.equal(seen['x-mcp-client-id'], 'test-app', 'the client app, in its own header');
  t.equal(seen.authorization, undefined, 'no token upstream (neither ours nor the provider\'s)');
  t.ok(app.saved?.refresh_token, 'a public app gets a refresh token');
  t.match(proxy.logs.events('login.completed'), [{ clientId: 'test-app' }]);
  t.notOk(proxy.logs.text().includes(app.saved?.access_token ?? 'x'), 'tokens are never logged');

  // A second sign-in of the same person and app: consent is remembered.
  const again = await signedInClient(t, proxy, 'alice', new AppProvider({ clientId: 'test-app' }));
  t.equal(again.browser.hops.filter((h) => h.body.includes('action="/oauth/consent"')).length, 0, 'no consent page the second time');

  // Revoking the person (what `mcp-warden token revoke --user` does) ends both sign-ins at once.
  const person = String(seen['x-mcp-user']);
  await proxy.warden.store.revokePrincipal(person, Date.now() + 1_000, 3_600_000);
  t.equal((await send(proxy.mcpUrl, { token: app.saved?.access_token ?? '' })).status, 401, 'the first sign-in\'s token is refused');
  t.equal((await send(proxy.mcpUrl, { token: again.app.saved?.access_token ?? '' })).status, 401, 'and the second\'s');
});

t.test('refresh rotates; a reused refresh token ends the grant; a replayed code ends what it issued', async (t) => {
  const { proxy } = await stack(t);
  const { app, transport: firstTransport } = await signedInClient(t, proxy, 'alice');
  const tokenUrl = `${proxy.url}/oauth/token`;
  const refresh = async (token: string) => fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'test-app' }) });
  const first = app.saved?.refresh_token ?? '';
  const rotated = await refresh(first);
  t.equal(rotated.status, 200);
  const next = (await rotated.json()) as { access_token: string; refresh_token: string };
  t.not(next.refresh_token, first, 'rotated');
  t.equal((await send(proxy.mcpUrl, { token: next.access_token, body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } })).status, 200, 'the refreshed token works');
  const reuse = await refresh(first);
  t.equal(reuse.status, 400);
  t.match(await reuse.json(), { error: 'invalid_grant' });
  t.match(proxy.logs.events('refresh.reuse'), [{ clientId: 'test-app' }]);
  t.equal((await refresh(next.refresh_token)).status, 400, 'the whole grant ended with the reuse');
  t.equal((await send(proxy.mcpUrl, { token: next.access_token })).status, 401, 'its access tokens too');

  // A code redeemed twice: the second attempt fails and revokes the first one's grant.
  const app2 = new AppProvider({ clientId: 'test-app' });
  const browser = new Browser();
  const transport = new StreamableHTTPClientTransport(new URL(proxy.mcpUrl), { authProvider: app2 });
  await t.rejects(new Client({ name: 'app', version: '1' }).connect(transport));
  const back = await browser.signIn(app2.authorizationUrl?.href ?? '', 'alice', 'http://127.0.0.1:33418/');
  const code = new URL(back.location ?? 'http://x/').searchParams.get('code') ?? '';
  const redeem = () => fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: app2.verifier, redirect_uri: APP_REDIRECT, client_id: 'test-app' }) });
  const once = await redeem();
  t.equal(once.status, 200);
  const issued = (await once.json()) as { access_token: string };
  const twice = await redeem();
  t.equal(twice.status, 400, 'a code is good once');
  t.equal((await send(proxy.mcpUrl, { token: issued.access_token })).status, 401, 'and its replay revoked what it had issued');

  // The theft signals also ended the person's sessions in that app: signing in afresh does not reopen them.
  const fresh = await signedInClient(t, proxy, 'alice');
  t.equal((await send(proxy.mcpUrl, { token: fresh.app.saved?.access_token ?? '', sessionId: firstTransport.sessionId ?? '' })).status, 404, 'the session of the stolen grant is gone');
  t.equal((await send(proxy.mcpUrl, { token: fresh.app.saved?.access_token ?? '', sessionId: fresh.transport.sessionId ?? '' })).status, 200, 'a new one works');
});

t.test('sessions belong to the person and the app: bob, and alice in another app, get 404', async (t) => {
  const { proxy } = await stack(t);
  const alice = await signedInClient(t, proxy, 'alice');
  const sessionId = alice.transport.sessionId ?? '';
  const bob = await signedInClient(t, proxy, 'bob', new AppProvider({ clientId: 'test-app' }));
  t.equal((await send(proxy.mcpUrl, { token: bob.app.saved?.access_token ?? '', sessionId })).status, 404, 'another person of the same app');
  t.match(proxy.logs.events('session.not_found'), [{ reason: 'forged' }], 'an id minted for somebody else');
  const otherApp = await signedInClient(t, proxy, 'alice', new AppProvider({ clientId: 'test-app-other' }));
  t.equal((await send(proxy.mcpUrl, { token: otherApp.app.saved?.access_token ?? '', sessionId })).status, 404, 'the same person through another app (whose id shares a long prefix)');
  t.match(proxy.logs.events('session.not_found').at(-1), { reason: 'foreign' }, 'refused as another app\'s session');
  const again = await signedInClient(t, proxy, 'alice', new AppProvider({ clientId: 'test-app' }));
  t.equal((await send(proxy.mcpUrl, { token: again.app.saved?.access_token ?? '', sessionId })).status, 200, 'the same person and app, signed in again (as for step-up)');
  t.equal((await send(proxy.mcpUrl, { token: alice.app.saved?.access_token ?? '', sessionId })).status, 200, 'and the first sign-in');
});

t.test('scopes follow groups; asking for more than the person may have is invalid_scope', async (t) => {
  const { proxy } = await stack(t);
  // The SDK asks for the scope of the 401 challenge; a client asking for more edits its request.
  const wider = async (login: string): Promise<URL> => {
    const app = new AppProvider({ clientId: 'test-app' });
    await t.rejects(new Client({ name: 'app', version: '1' }).connect(new StreamableHTTPClientTransport(new URL(proxy.mcpUrl), { authProvider: app })));
    const url = new URL(app.authorizationUrl?.href ?? '');
    url.searchParams.set('scope', 'mcp mcp:admin');
    const back = await new Browser().signIn(url.href, login, 'http://127.0.0.1:33418/');
    return new URL(back.location ?? 'http://x/');
  };
  t.equal((await wider('bob')).searchParams.get('error'), 'invalid_scope', 'bob is not an admin');
  t.ok((await wider('alice')).searchParams.get('code'), 'alice is (the admins group maps to mcp:admin)');
});

t.test('hostile authorize requests: unknown client and foreign redirect get a page, never a redirect; PKCE is S256 only', async (t) => {
  const { proxy } = await stack(t);
  const base = `${proxy.url}/oauth/authorize`;
  const good = { response_type: 'code', client_id: 'test-app', redirect_uri: 'http://127.0.0.1:5555/callback', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 's1' };
  const get = (over: Record<string, string>) => fetch(`${base}?${new URLSearchParams({ ...good, ...over })}`, { redirect: 'manual' });
  for (const [name, over] of [
    ['unknown client', { client_id: 'nobody' }],
    ['other host', { redirect_uri: 'http://evil.example/callback' }],
    ['path suffix', { redirect_uri: 'http://127.0.0.1:5555/callback/../x' }],
    ['userinfo', { redirect_uri: 'http://user@127.0.0.1:5555/callback' }],
    ['fragment', { redirect_uri: 'http://127.0.0.1:5555/callback#x' }],
    ['https instead of http', { redirect_uri: 'https://127.0.0.1:5555/callback' }],
    ['localhost for 127.0.0.1', { redirect_uri: 'http://localhost:5555/callback' }],
  ] as const) {
    const res = await get(over);
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.headers.get('location'), null, `${name}: no redirect`);
    t.match(res.headers.get('content-type'), /text\/html/, `${name}: an error page`);
    t.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  }
  const plain = await get({ code_challenge_method: 'plain' });
  t.equal(plain.status, 302, 'a PKCE downgrade goes back to the (verified) client');
  t.equal(new URL(plain.headers.get('location') ?? '').searchParams.get('error'), 'invalid_request');
  const wrongResource = await get({ resource: 'https://other.example/mcp' });
  t.equal(new URL(wrongResource.headers.get('location') ?? '').searchParams.get('error'), 'invalid_target');
  const anyPort = await get({ redirect_uri: 'http://127.0.0.1:61000/callback' });
  t.equal(anyPort.status, 302, 'RFC 8252: a loopback redirect on any port');
  t.match(anyPort.headers.get('location'), /^http:\/\/127\.0\.0\.1:\d+\/auth\?/, 'to the identity provider');
});

t.test('the consent form needs this browser\'s login and its token; a denial goes back as access_denied', async (t) => {
  const { proxy } = await stack(t);
  const app = new AppProvider({ clientId: 'test-app' });
  const transport = new StreamableHTTPClientTransport(new URL(proxy.mcpUrl), { authProvider: app });
  await t.rejects(new Client({ name: 'app', version: '1' }).connect(transport));
  const browser = new Browser();
  // Up to mcp-warden's consent page, then stop.
  let hop = await browser.follow(app.authorizationUrl?.href ?? '');
  for (let i = 0; i < 4 && !hop.body.includes('action="/oauth/consent"'); i++) {
    const prompt = /name="prompt" value="(\w+)"/.exec(hop.body)?.[1] ?? '';
    const next = await browser.request(hop.url, { method: 'POST', form: prompt === 'login' ? { prompt, login: 'alice', password: 'x' } : { prompt } });
    hop = await browser.follow(next.location ?? '');
  }
  t.match(hop.body, /Allow Test App to use this MCP server as you\?/);
  const csrf = /name="csrf" value="([^"]+)"/.exec(hop.body)?.[1] ?? '';
  const consent = `${proxy.url}/oauth/consent`;
  const stranger = new Browser();
  t.equal((await stranger.request(consent, { method: 'POST', form: { csrf, decision: 'allow' } })).status, 400, 'another browser (no login cookie) gets nothing');
  t.equal((await browser.request(consent, { method: 'POST', form: { csrf: 'forged', decision: 'allow' } })).status, 403, 'a cross-site form without the token');
  t.equal((await browser.request(consent, { method: 'POST', form: { csrf, decision: 'allow' }, headers: { origin: 'https://evil.example' } })).status, 403, 'a form from another origin');
  const denied = await browser.request(consent, { method: 'POST', form: { csrf, decision: 'deny' } });
  t.equal(denied.status, 302);
  const to = new URL(denied.location ?? '');
  t.same([to.origin + to.pathname, to.searchParams.get('error'), to.searchParams.get('iss')], ['http://127.0.0.1:33418/callback', 'access_denied', proxy.url]);
  t.match(proxy.logs.events('login.denied'), [{ clientId: 'test-app' }]);
});

t.test('metadata says what is enabled', async (t) => {
  const { proxy } = await stack(t);
  const metadata = (await (await fetch(`${proxy.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
  t.match(metadata, { authorization_endpoint: `${proxy.url}/oauth/authorize`, code_challenge_methods_supported: ['S256'], authorization_response_iss_parameter_supported: true });
  t.ok((metadata.grant_types_supported as string[]).includes('authorization_code'));
  t.ok((metadata.token_endpoint_auth_methods_supported as string[]).includes('none'));
  t.equal(metadata.registration_endpoint, undefined, 'no dynamic registration offered');
});

t.test('step-up: a tool that needs a wider scope answers insufficient_scope; the SDK signs in again for it and the call goes through', async (t) => {
  const { proxy } = await stack(t, { registration: { dynamic: true } }, {
    policy: { default: 'allow', rules: [{ id: 'admin-add', effect: 'deny', unlessScopes: ['mcp:admin'], tools: ['add'] }] },
  });
  // No refresh token (it registers for authorization_code only): the SDK's upscoping refreshes
  // first when it can, and a refresh keeps the scope it had (RFC 6749 §6), so it would not widen.
  const app = new AppProvider({ name: 'Stepper', grantTypes: ['authorization_code'] });
  const { client, transport } = await signedInClient(t, proxy, 'alice', app);
  t.equal(app.saved?.refresh_token, undefined, 'no refresh token for an authorization_code-only registration');
  t.equal(app.saved?.scope, 'mcp', 'signed in with the default scope');
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).content, [{ type: 'text', text: 'echo: x' }], 'an ordinary tool works');

  app.authorizationUrl = null;
  await t.rejects(client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }), /Unauthorized/, 'the SDK met 403 insufficient_scope and went to sign in again');
  t.match(proxy.logs.events('policy.denied'), [{ rule: 'admin-add' }]);
  const url = app.authorizationUrl as URL | null;
  t.equal(url?.searchParams.get('scope'), 'mcp mcp:admin', 'for exactly the scope the challenge named');
  const browser = new Browser();
  const back = await browser.signIn(url?.href ?? '', 'alice', 'http://127.0.0.1:33418/');
  t.equal(browser.hops.filter((h) => h.body.includes('action="/oauth/consent"')).length, 1, 'the wider scope is a new consent');
  await transport.finishAuth(new URL(back.location ?? 'http://x/').searchParams.get('code') ?? '');
  t.equal(app.saved?.scope, 'mcp mcp:admin');
  t.same((await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).content, [{ type: 'text', text: '3' }], 'the call goes through, in the same session');

  // Somebody whose groups do not allow the wider scope cannot step up.
  const bobApp = new AppProvider({ name: 'Stepper', grantTypes: ['authorization_code'] });
  const bob = await signedInClient(t, proxy, 'bob', bobApp);
  bobApp.authorizationUrl = null;
  await t.rejects(bob.client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }), /Unauthorized/);
  const refused = await new Browser().signIn((bobApp.authorizationUrl as URL | null)?.href ?? '', 'bob', 'http://127.0.0.1:33418/');
  t.equal(new URL(refused.location ?? 'http://x/').searchParams.get('error'), 'invalid_scope', 'bob may not have mcp:admin');
});
