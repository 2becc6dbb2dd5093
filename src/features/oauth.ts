import type { Config } from '../config/schema.js';
import type { Site } from '../context.js';
import type { SignAccessToken } from '../auth/access-token.js';
import type { KeyRing } from '../auth/key-ring.js';
import { handlerOf } from '../http/routes.js';
import type { Feature, RouteTable } from '../http/routes.js';
import type { Handler } from '../http/server.js';
import { createLoginClients } from '../login/clients.js';
import { createMetadataDocuments } from '../login/metadata-document.js';
import { createOidcLogin } from '../login/oidc.js';
import { compileRedirectPolicy } from '../login/redirect-uris.js';
import { createRegistrations } from '../login/registration.js';
import { authorizeEndpoints } from '../oauth/authorize.js';
import { peopleGrants } from '../oauth/code-grant.js';
import { metadataHandlers } from '../oauth/metadata.js';
import { registerEndpoint } from '../oauth/register.js';
import { revokeEndpoint } from '../oauth/revoke.js';
import { tokenEndpoint } from '../oauth/token.js';
import { buildEntryStages } from '../pipeline/index.js';
import type { StageDeps } from '../pipeline/index.js';

export interface OAuthDeps extends Pick<StageDeps, 'store' | 'limiters' | 'clients' | 'verify' | 'ender' | 'clock'> {
  readonly site: Site;
  readonly keyRing: KeyRing;
  readonly sign: SignAccessToken;
  /** Extra CA certificates trusted when fetching client metadata documents (tests). */
  readonly metadataCa?: string;
}

/**
 * The authorization server (DESIGN §5, §11): the token and revocation endpoints, the discovery
 * documents and the JWKS, and, with `login.oidc.issuer`, people's sign-in (authorize, the
 * provider's callback, consent) with dynamic registration and client metadata documents.
 */
export function oauthFeature(config: Config, deps: OAuthDeps): Feature {
  const { store, limiters, clients, ender, clock, site } = deps;
  const { tokens, login } = config;
  const signInOn = login.oidc.issuer !== null;
  const { registration } = login;
  const redirectPolicy = compileRedirectPolicy(registration.redirectUris);
  const registrations = signInOn && registration.dynamic ? createRegistrations({ store, unusedTtlMs: registration.unusedTtl, ttlMs: registration.ttl, clock }) : null;
  const metadataDocuments = signInOn && registration.metadataDocuments
    ? createMetadataDocuments({ policy: redirectPolicy, store, allowPrivate: registration.allowPrivateMetadataHosts, ...(deps.metadataCa ? { ca: deps.metadataCa } : {}) })
    : null;
  const loginClients = createLoginClients(login.clients, { registrations, metadataDocuments });
  const entry = buildEntryStages(config, deps);
  // Sign-in pages are the proxy's own: the only Origin a browser may send them is the proxy's (the
  // consent form posting back), so a form on another site is refused before anything is read.
  const pageEntry = buildEntryStages({ ...config, security: { ...config.security, allowedOrigins: [site.origin] } }, deps);
  const signIn = !signInOn ? null : authorizeEndpoints({
    login, clients: loginClients, oidc: createOidcLogin(login.oidc), store, resource: site.resource, origin: site.origin, issuer: site.issuer,
  });
  const people = signIn === null ? null : peopleGrants({ clients: loginClients, store, ender, sign: deps.sign, resource: site.resource, refreshTtlMs: tokens.refreshTtl, clock });
  const scopes = [...new Set([...(tokens.requiredScope ? [tokens.requiredScope] : []), ...config.clients.flatMap((c) => c.scopes), ...(signIn ? login.scopes : [])])];
  const metadata = metadataHandlers({ site, scopes, keyRing: deps.keyRing, login: signInOn ? { dynamic: registrations !== null, metadataDocuments: metadataDocuments !== null } : null });
  const token = handlerOf([...entry, tokenEndpoint({ people, clients, limiters, store, ender, sign: deps.sign, resource: site.resource, accessTtlMs: tokens.accessTtl, refreshTtlMs: tokens.refreshTtl, issueRefreshTokens: tokens.issueRefreshTokens, clock })]);
  const revoke = handlerOf([...entry, revokeEndpoint({ clients, limiters, store, ender, verify: deps.verify, refreshTtlMs: tokens.refreshTtl, clockSkewMs: tokens.clockSkew, clock })]);
  const authorize: Handler = signIn ? handlerOf([...pageEntry, signIn.authorize]) : metadata.authorize;
  const document = (path: string, template: string, get: Handler): RouteTable[number] => ({ path, template, kind: 'plain', methods: { GET: get, OPTIONS: metadata.preflight } });
  const routes: RouteTable = [
    { path: '/oauth/token', template: '/oauth/token', kind: 'oauth', methods: { POST: token, OPTIONS: token } },
    { path: '/oauth/revoke', template: '/oauth/revoke', kind: 'oauth', methods: { POST: revoke, OPTIONS: revoke } },
    // With sign-in on, a person's browser is on the other end: refusals are pages, never redirects.
    { path: '/oauth/authorize', template: '/oauth/authorize', kind: signIn ? 'page' : 'oauth', methods: { GET: authorize, POST: authorize } },
    document('/.well-known/oauth-authorization-server', '/.well-known/oauth-authorization-server', metadata.authorizationServer),
    document('/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource', metadata.protectedResource),
    document(`/.well-known/oauth-protected-resource${config.mcpPath}`, '/.well-known/oauth-protected-resource{mcpPath}', metadata.protectedResource),
    document('/.well-known/jwks.json', '/.well-known/jwks.json', metadata.jwks),
  ];
  // RFC 8414 §3.1: an issuer with a path has its metadata under the path-suffixed well-known URL.
  const issuerPath = new URL(site.issuer).pathname.replace(/\/$/, '');
  if (issuerPath) routes.push(document(`/.well-known/oauth-authorization-server${issuerPath}`, '/.well-known/oauth-authorization-server{issuerPath}', metadata.authorizationServer));
  if (signIn) {
    routes.push({ path: '/oauth/callback', template: '/oauth/callback', kind: 'page', methods: { GET: handlerOf([...pageEntry, signIn.callback]) } });
    routes.push({ path: '/oauth/consent', template: '/oauth/consent', kind: 'page', methods: { POST: handlerOf([...pageEntry, signIn.consent]) } });
  }
  if (registrations) {
    const register = handlerOf([...entry, registerEndpoint({ registrations, policy: redirectPolicy, limiters })]);
    routes.push({ path: '/oauth/register', template: '/oauth/register', kind: 'oauth', methods: { POST: register, OPTIONS: register } });
  }
  return { name: 'oauth', routes, close: () => metadataDocuments?.close() };
}
