/**
 * The discovery documents: RFC 8414 authorization server metadata, RFC 9728 protected resource
 * metadata naming the public MCP URL (root and path-suffixed forms), and the JWKS of asymmetric
 * proxies (public keys only, and tokens really verify with it).
 */
import t from 'tap';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { JWK } from 'jose';
import { basic, mcpPost, postForm, rawRequest } from '../fixtures/http.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await rawRequest(url);
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  return res.json();
}

async function issue(proxy: TestWarden): Promise<string> {
  const res = await postForm(`${proxy.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basic('alice', TEST_CLIENTS.alice) });
  return String(res.json().access_token);
}

t.test('RFC 8414 metadata: the issuer, its endpoints, what the SDK client insists on', async (t) => {
  const proxy = await startWarden({});
  t.teardown(() => proxy.close());
  const res = await rawRequest(`${proxy.url}/.well-known/oauth-authorization-server`);
  t.equal(res.status, 200);
  t.equal(res.header('access-control-allow-origin'), '*');
  t.match(res.header('cache-control'), /^public/);
  const as = res.json();
  t.match(as, {
    issuer: proxy.url,
    token_endpoint: `${proxy.url}/oauth/token`,
    revocation_endpoint: `${proxy.url}/oauth/revoke`,
    authorization_endpoint: `${proxy.url}/oauth/authorize`,
    response_types_supported: ['code'],
    grant_types_supported: ['client_credentials', 'refresh_token'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
  });
  t.ok((as.scopes_supported as string[]).includes('mcp'));
  t.notOk('jwks_uri' in as, 'HS256: no public keys to publish');
  t.same(await getJson(`${proxy.url}/.well-known/jwks.json`), { keys: [] });
  const authorize = await rawRequest(`${proxy.url}/oauth/authorize?response_type=code`);
  t.equal(authorize.status, 400);
  t.match(authorize.json(), { error: 'unsupported_response_type' });
});

t.test('RFC 9728 metadata: resource is the public MCP URL at both well-known locations, and in the challenge', async (t) => {
  const proxy = await startWarden({ publicUrl: 'https://mcp.example.com', mcpPath: '/tools/mcp' });
  t.teardown(() => proxy.close());
  // The listener is local; everything it publishes names the public URL.
  const local = `http://127.0.0.1:${(proxy.warden.server.address() as AddressInfo).port}`;
  t.equal(proxy.mcpUrl, 'https://mcp.example.com/tools/mcp');
  for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/tools/mcp']) {
    const prm = await getJson(`${local}${path}`);
    t.match(prm, { resource: 'https://mcp.example.com/tools/mcp', authorization_servers: ['https://mcp.example.com'], bearer_methods_supported: ['header'] }, path);
    t.ok((prm.scopes_supported as string[]).includes('mcp'));
  }
  const as = await getJson(`${local}/.well-known/oauth-authorization-server`);
  t.equal(as.issuer, 'https://mcp.example.com', 'AS metadata issuer = authorization_servers[0]');
  const challenge = await mcpPost(`${local}/tools/mcp`, undefined);
  t.equal(challenge.status, 401);
  t.match(challenge.header('www-authenticate'), /resource_metadata="https:\/\/mcp\.example\.com\/\.well-known\/oauth-protected-resource\/tools\/mcp"/);
  const upstreamDocs = await rawRequest(`${local}/.well-known/oauth-protected-resource/mcp`);
  t.equal(upstreamDocs.status, 404, 'no other resource is described (and nothing is proxied upstream)');
});

for (const algorithm of ['EdDSA', 'ES256'] as const) {
  t.test(`${algorithm}: /.well-known/jwks.json serves public keys only, and tokens verify with it`, async (t) => {
    const proxy = await startWarden({ tokens: { algorithm, secret: null } });
    t.teardown(() => proxy.close());
    const as = await getJson(`${proxy.url}/.well-known/oauth-authorization-server`);
    t.equal(as.jwks_uri, `${proxy.url}/.well-known/jwks.json`);
    const jwks = (await getJson(`${proxy.url}/.well-known/jwks.json`)) as { keys: JWK[] };
    t.equal(jwks.keys.length, 1);
    for (const key of jwks.keys) {
      t.same(PRIVATE_MEMBERS.filter((m) => m in key), [], 'no private member');
      t.match(key, { kid: String, alg: algorithm, use: 'sig', kty: algorithm === 'EdDSA' ? 'OKP' : 'EC' });
    }
    const token = await issue(proxy);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: proxy.url, audience: proxy.mcpUrl, typ: 'at+jwt', algorithms: [algorithm] });
    t.equal(payload.sub, 'alice');
    t.equal(protectedHeader.kid, jwks.keys[0]?.kid);

    await proxy.warden.keyRing.rotate();
    const rotated = (await getJson(`${proxy.url}/.well-known/jwks.json`)) as { keys: JWK[] };
    t.equal(rotated.keys.length, 2, 'after a rotation both keys are published');
    const newer = await issue(proxy);
    await t.resolves(jwtVerify(newer, createLocalJWKSet(rotated), { issuer: proxy.url, audience: proxy.mcpUrl, algorithms: [algorithm] }));
    await t.resolves(jwtVerify(token, createLocalJWKSet(rotated), { issuer: proxy.url, audience: proxy.mcpUrl, algorithms: [algorithm] }), 'the old token still verifies');
    await t.rejects(jwtVerify(newer, createLocalJWKSet(jwks), { algorithms: [algorithm] }), { code: 'ERR_JWKS_NO_MATCHING_KEY' }, 'the new key is not in the old set');
  });
}
