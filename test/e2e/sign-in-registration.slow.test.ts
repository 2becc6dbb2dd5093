/**
 * How MCP clients that nobody configured get in (DESIGN §11): dynamic client registration
 * (RFC 7591) and Client ID Metadata Documents, each end to end with the MCP SDK's own OAuth client,
 * a real OpenID provider and a real upstream; and the attacks on both: redirect URIs outside the
 * operator's allow-list, registration floods, a new registration riding an old consent, and a
 * metadata URL aimed at the proxy's own network (SSRF), a redirect, a huge or a slow document.
 */
import t from 'tap';
import type { Test } from 'tap';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Browser } from '../fixtures/oidc.js';
import { APP_REDIRECT, AppProvider, signedInClient, signInStack } from '../fixtures/sign-in.js';
import { selfSigned } from '../fixtures/tls.js';

const asConsent = (body: string): boolean => body.includes('action="/oauth/consent"');
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

/** An https site serving client metadata documents (and misbehaving on purpose), counting requests per path. */
async function startDocSite(t: Test, documents: (origin: string) => Record<string, (req: IncomingMessage, res: ServerResponse) => void>) {
  const pair = selfSigned();
  t.teardown(() => pair.cleanup());
  const hits = new Map<string, number>();
  let routes: ReturnType<typeof documents> = {};
  const server = https.createServer({ key: pair.key, cert: pair.cert }, (req, res) => {
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes[path];
    if (route) route(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `https://localhost:${port}`;
  routes = documents(origin);
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { origin, port, ca: pair.cert.toString('utf8'), hits: (path: string) => hits.get(path) ?? 0 };
}

const json = (body: unknown, headers: Record<string, string> = {}) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
};

function authorizeUrl(proxyUrl: string, clientId: string, redirectUri = 'http://127.0.0.1:5555/callback'): string {
  return `${proxyUrl}/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: CHALLENGE, code_challenge_method: 'S256', state: 's' })}`;
}

const register = (proxyUrl: string, body: unknown, type = 'application/json') =>
  fetch(`${proxyUrl}/oauth/register`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });

t.test('dynamic registration: the SDK registers, signs in and calls a tool; every new registration is asked for consent again', async (t) => {
  const { proxy, upstream } = await signInStack(t, { registration: { dynamic: true } });
  const metadata = (await (await fetch(`${proxy.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
  t.equal(metadata.registration_endpoint, `${proxy.url}/oauth/register`, 'advertised because it is on');

  const app = new AppProvider({ name: 'Claude' });
  const { client, browser } = await signedInClient(t, proxy, 'alice', app);
  const id = app.information?.client_id ?? '';
  t.match(id, /^r~[A-Za-z0-9_-]{22}$/, 'a registered id cannot be a configured id or a URL');
  const consent = browser.hops.find((h) => asConsent(h.body))?.body ?? '';
  t.match(consent, /registered itself; its name is its own claim/, 'the consent page says the name is unverified');
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'hi' } })).content, [{ type: 'text', text: 'echo: hi' }]);
  t.equal(upstream.requests.at(-1)?.headers['x-mcp-client-id'], id, 'the upstream sees the registered app');
  t.match(proxy.logs.events('client.registered'), [{ clientId: id }]);
  t.ok(app.saved?.refresh_token, 'it asked for refresh_token, so it got one');

  // An attacker registers a look-alike (same name): consent given to the first does not carry over.
  const lookalike = new AppProvider({ name: 'Claude' });
  const second = await signedInClient(t, proxy, 'alice', lookalike);
  t.not(lookalike.information?.client_id, id, 'a new client id');
  t.equal(second.browser.hops.filter((h) => asConsent(h.body)).length, 1, 'and the person is asked again');
  // The first app, signing in again, is not asked (consent is remembered per person and app).
  const again = await signedInClient(t, proxy, 'alice', new AppProvider({ clientId: id }));
  t.equal(again.browser.hops.filter((h) => asConsent(h.body)).length, 0, 'remembered for the same app');
});

t.test('a confidential registration gets a secret once; the token endpoint then demands it', async (t) => {
  const { proxy } = await signInStack(t, { registration: { dynamic: true } });
  const app = new AppProvider({ name: 'Server-side app', authMethod: 'client_secret_basic' });
  await signedInClient(t, proxy, 'bob', app);
  const info = app.information as { client_id: string; client_secret?: string };
  t.match(info.client_secret, /^[A-Za-z0-9_-]{43}$/, 'a secret was issued');
  t.notOk(proxy.logs.text().includes(info.client_secret ?? 'x'), 'and never logged');
  const refresh = (secret: string) => fetch(`${proxy.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(info.client_id)}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: app.saved?.refresh_token ?? '' }),
  });
  const wrong = await refresh('not-the-secret');
  t.equal(wrong.status, 401);
  t.match(await wrong.json(), { error: 'invalid_client' });
  t.equal((await refresh(info.client_secret ?? '')).status, 200, 'the right secret refreshes');
});

t.test('registration requests that break the rules get the RFC 7591 error, and nothing is registered', async (t) => {
  const { proxy } = await signInStack(t, { registration: { dynamic: true, redirectUris: ['http://127.0.0.1/*', 'https://*', 'vscode://*'] } }, { rateLimits: { register: { points: 100, duration: '1h' }, failedAttempts: { points: 1000, duration: '1m', block: '1m' } } });
  const good = { redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none', client_name: 'x' };
  for (const [name, body, error] of [
    ['a host outside the allow-list', { ...good, redirect_uris: ['http://evil.example/cb'] }, 'invalid_redirect_uri'],
    ['a custom scheme that is not listed', { ...good, redirect_uris: ['cursor://anysphere/cb'] }, 'invalid_redirect_uri'],
    ['javascript:', { ...good, redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
    ['a fragment', { ...good, redirect_uris: ['https://app.example/cb#x'] }, 'invalid_redirect_uri'],
    ['userinfo that hides the host', { ...good, redirect_uris: ['https://app.example@evil.example/cb'] }, 'invalid_redirect_uri'],
    ['a loopback look-alike', { ...good, redirect_uris: ['http://127.0.0.1.evil.example/cb'] }, 'invalid_redirect_uri'],
    ['no redirect URI', { ...good, redirect_uris: [] }, 'invalid_redirect_uri'],
    ['client_credentials', { ...good, grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
    ['the implicit flow', { ...good, response_types: ['token'] }, 'invalid_client_metadata'],
    ['an unknown auth method', { ...good, token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
    ['a name with control characters', { ...good, client_name: 'a\u0007b' }, 'invalid_client_metadata'],
    ['not an object', [good], 'invalid_client_metadata'],
    ['not JSON', '{"redirect_uris":', 'invalid_client_metadata'],
  ] as const) {
    const res = await register(proxy.url, body);
    t.equal(res.status, 400, `${name}: 400`);
    t.match(await res.json(), { error }, `${name}: ${error}`);
  }
  t.equal((await register(proxy.url, 'redirect_uris=x', 'application/x-www-form-urlencoded')).status, 400, 'a form body');
  t.equal((await register(proxy.url, { ...good, client_name: 'x'.repeat(20_000) })).status, 400, 'a body over 16 KiB');
  t.equal(proxy.logs.events('client.registered').length, 0, 'nothing was registered');
  t.ok(proxy.logs.events('token.refused').length >= 13, 'each refusal is a security event');

  const vscode = await register(proxy.url, { ...good, redirect_uris: ['vscode://vscode.github-authentication/did-authenticate'] });
  t.equal(vscode.status, 201, 'a custom scheme the operator listed');
  const created = (await vscode.json()) as Record<string, unknown>;
  t.match(created, { token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'], client_name: 'x' });
  t.equal(created.client_secret, undefined, 'a public client has no secret');
  t.equal(vscode.headers.get('cache-control'), 'no-store');
});

t.test('open registration cannot be flooded: a per-address limit, and unused registrations expire', async (t) => {
  const { proxy } = await signInStack(t, { registration: { dynamic: true, unusedTtl: '1h' } }, { rateLimits: { register: { points: 3, duration: '1h' } } });
  const body = { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' };
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await register(proxy.url, body);
    t.equal(res.status, 201);
    ids.push(((await res.json()) as { client_id: string }).client_id);
  }
  const flood = await register(proxy.url, body);
  t.equal(flood.status, 429, 'the fourth registration of the hour is refused');
  t.ok(Number(flood.headers.get('retry-after')) > 0, 'with Retry-After');
  t.match(flood.headers.get('ratelimit-policy'), /^"register";q=3;w=3600$/);

  const page = (id: string) => fetch(authorizeUrl(proxy.url, id, 'http://127.0.0.1:4444/cb'), { redirect: 'manual' });
  t.equal((await page(ids[0] ?? '')).status, 302, 'a fresh registration can start a sign-in');
  proxy.advance(3_601_000);
  const gone = await page(ids[0] ?? '');
  t.equal(gone.status, 400, 'an hour later, never used, it is gone');
  t.match(await gone.text(), /unknown client/);
});

t.test('without dynamic registration there is no endpoint and no registered client', async (t) => {
  const { proxy } = await signInStack(t);
  t.equal((await register(proxy.url, { redirect_uris: ['http://127.0.0.1/cb'] })).status, 404);
  const res = await fetch(authorizeUrl(proxy.url, 'r~AAAAAAAAAAAAAAAAAAAAAA'), { redirect: 'manual' });
  t.equal(res.status, 400);
  t.equal(res.headers.get('location'), null, 'an unknown client gets a page, not a redirect');
});

t.test('a Client ID Metadata Document: the SDK names its app by URL; fetched once, cached as the site says', async (t) => {
  const site = await startDocSite(t, (origin) => ({
    '/app/client.json': json({ client_id: `${origin}/app/client.json`, client_name: 'Doc App', client_uri: 'https://docapp.example/', redirect_uris: [APP_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' }, { 'cache-control': 'max-age=300' }),
  }));
  const { proxy, upstream } = await signInStack(t, { registration: { allowPrivateMetadataHosts: true } }, {}, { metadataCa: site.ca });
  const metadata = (await (await fetch(`${proxy.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
  t.equal(metadata.client_id_metadata_document_supported, true);
  const url = `${site.origin}/app/client.json`;
  const app = new AppProvider({ clientMetadataUrl: url });
  const { client, browser } = await signedInClient(t, proxy, 'alice', app);
  t.equal(app.information?.client_id, url, 'the SDK used the URL as its client id');
  const consent = browser.hops.find((h) => asConsent(h.body))?.body ?? '';
  t.match(consent, /Allow Doc App to use this MCP server as you\?/);
  t.match(consent, new RegExp(`described by <strong>localhost:${site.port}</strong>`), 'the page names the site that vouches for the app');
  t.match(consent, /docapp\.example/, 'and its web page');
  t.same((await client.callTool({ name: 'echo', arguments: { message: 'doc' } })).content, [{ type: 'text', text: 'echo: doc' }]);
  t.equal(upstream.requests.at(-1)?.headers['x-mcp-client-id'], url);
  t.equal(site.hits('/app/client.json'), 1, 'authorize, callback, consent and token used one fetch (max-age=300)');
});

t.test('metadata URLs aimed at private addresses are refused before any connection (SSRF)', async (t) => {
  const site = await startDocSite(t, (origin) => ({ '/app/client.json': json({ client_id: `${origin}/app/client.json`, redirect_uris: ['http://127.0.0.1/callback'] }) }));
  const { proxy } = await signInStack(t, {}, { rateLimits: { failedAttempts: { points: 1000, duration: '1m', block: '1m' } } }, { metadataCa: site.ca });
  for (const [name, url, why] of [
    ['a DNS name that resolves to loopback', `https://localhost:${site.port}/app/client.json`, /on a host this server may not reach/],
    ['a loopback literal', `https://127.0.0.1:${site.port}/app/client.json`, /on a host this server may not reach/],
    ['an IPv4-mapped IPv6 loopback', `https://[::ffff:7f00:1]:${site.port}/app/client.json`, /on a host this server may not reach/],
    ['a private network literal', 'https://10.1.2.3/app/client.json', /on a host this server may not reach/],
    ['the cloud metadata address', 'https://169.254.169.254/latest/meta-data', /on a host this server may not reach/],
    ['plain http', `http://localhost:${site.port}/app/client.json`, /must be an https URL/],
    ['no path', 'https://app.example/', /must have a path/],
    ['dot segments', 'https://app.example/a/../client.json', /normal form|must have a path/],
    ['credentials', 'https://user:pw@app.example/client.json', /user name or password/],
    ['a fragment', 'https://app.example/client.json#x', /fragment/],
  ] as const) {
    const res = await fetch(authorizeUrl(proxy.url, url), { redirect: 'manual' });
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.headers.get('location'), null, `${name}: no redirect`);
    t.match(await res.text(), why, `${name}: says why`);
  }
  t.equal(site.hits('/app/client.json'), 0, 'the site behind the proxy was never contacted');
  t.ok(proxy.logs.events('token.refused').length >= 10, 'each refusal is a security event');
});

t.test('where private hosts are allowed, hostile documents still fail: redirects, size, time, a foreign client_id, secrets', async (t) => {
  const site = await startDocSite(t, (origin) => {
    const doc = (path: string, extra: Record<string, unknown> = {}) => ({ client_id: `${origin}${path}`, redirect_uris: ['http://127.0.0.1/callback'], ...extra });
    return {
      '/redirect': (_req, res) => void res.writeHead(302, { location: `${origin}/good` }).end(),
      '/good': json(doc('/good'), { 'cache-control': 'no-store' }),
      '/huge': json(doc('/huge', { client_name: 'x'.repeat(6_000) })),
      '/slow': () => {},
      '/foreign': json(doc('/other')),
      '/secret': json(doc('/secret', { token_endpoint_auth_method: 'client_secret_basic' })),
      '/bad-redirect': json(doc('/bad-redirect', { redirect_uris: ['http://evil.example/cb'] })),
      '/not-json': (_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>'),
      '/missing': (_req, res) => void res.writeHead(404).end(),
    };
  });
  const { proxy } = await signInStack(t, { registration: { allowPrivateMetadataHosts: true } }, { rateLimits: { failedAttempts: { points: 1000, duration: '1m', block: '1m' } } }, { metadataCa: site.ca });
  for (const [path, why] of [
    ['/redirect', /redirects \(not followed\)/],
    ['/huge', /is too large/],
    ['/foreign', /does not name its own URL as client_id/],
    ['/secret', /token_endpoint_auth_method must be one of: none/],
    ['/bad-redirect', /redirect_uris\[0\] is not allowed/],
    ['/not-json', /is not JSON/],
    ['/missing', /status other than 200/],
  ] as const) {
    const res = await fetch(authorizeUrl(proxy.url, `${site.origin}${path}`), { redirect: 'manual' });
    t.equal(res.status, 400, `${path}: 400`);
    t.match(await res.text(), why, `${path}: says why`);
  }
  t.equal(site.hits('/good'), 0, 'the redirect was not followed');

  const started = Date.now();
  const slow = await fetch(authorizeUrl(proxy.url, `${site.origin}/slow`), { redirect: 'manual' });
  t.equal(slow.status, 400, 'a document that never comes');
  t.match(await slow.text(), /took too long/);
  t.ok(Date.now() - started < 8_000, 'is given up on within its time bound');

  // no-store: every use fetches again, so a withdrawn document stops working at once.
  for (let i = 0; i < 2; i++) t.equal((await fetch(authorizeUrl(proxy.url, `${site.origin}/good`), { redirect: 'manual' })).status, 302);
  t.equal(site.hits('/good'), 2, 'Cache-Control: no-store is honoured');
});

t.test('a browser that never saw the authorize request cannot use a metadata client\'s callback', async (t) => {
  // Guard against a regression where a metadata client skipped the browser binding.
  const site = await startDocSite(t, (origin) => ({ '/c': json({ client_id: `${origin}/c`, redirect_uris: ['http://127.0.0.1/callback'] }) }));
  const { proxy } = await signInStack(t, { registration: { allowPrivateMetadataHosts: true } }, {}, { metadataCa: site.ca });
  const browser = new Browser();
  const started = await browser.request(authorizeUrl(proxy.url, `${site.origin}/c`));
  t.equal(started.status, 302);
  const state = new URL(started.location ?? '').searchParams.get('state') ?? '';
  const stranger = await new Browser().request(`${proxy.url}/oauth/callback?code=x&state=${state}`);
  t.equal(stranger.status, 400);
  t.match(stranger.body, /belongs to another browser/);
});
