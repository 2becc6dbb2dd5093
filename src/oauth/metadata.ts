import type { RequestContext, Site } from '../context.js';
import { WardenError } from '../errors.js';
import { sendJson } from '../http/reply.js';
import type { KeyRing } from '../auth/key-ring.js';

/** Public, cacheable documents: any origin may read them (no credentials involved). */
const PUBLIC = { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' };
const PREFLIGHT = { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, OPTIONS', 'access-control-allow-headers': 'MCP-Protocol-Version', 'access-control-max-age': '600' };

/** RFC 8414 authorization server metadata. */
export interface LoginOffer {
  /** RFC 7591 registration at /oauth/register. */
  readonly dynamic: boolean;
  /** Client ID Metadata Documents (a client_id that is an https URL). */
  readonly metadataDocuments: boolean;
}

export function authorizationServerMetadata(site: Site, scopes: readonly string[], asymmetric: boolean, login: LoginOffer | null = null): Record<string, unknown> {
  if (login) {
    // What is enabled, and only that (DESIGN §11): people sign in with a code and PKCE; public apps
    // authenticate with nothing but PKCE; the code response carries `iss` (RFC 9207).
    return {
      ...authorizationServerMetadata(site, scopes, asymmetric, null),
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
      authorization_response_iss_parameter_supported: true,
      ...(login.dynamic ? { registration_endpoint: `${site.origin}/oauth/register` } : {}),
      ...(login.metadataDocuments ? { client_id_metadata_document_supported: true } : {}),
    };
  }
  return {
    issuer: site.issuer,
    token_endpoint: `${site.origin}/oauth/token`,
    revocation_endpoint: `${site.origin}/oauth/revoke`,
    // The SDK client rejects metadata without these two, even for client_credentials; the endpoint
    // answers with an RFC 6749 error until interactive login exists.
    authorization_endpoint: `${site.origin}/oauth/authorize`,
    response_types_supported: ['code'],
    grant_types_supported: ['client_credentials', 'refresh_token'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: scopes,
    ...(asymmetric ? { jwks_uri: `${site.origin}/.well-known/jwks.json` } : {}),
  };
}

/** RFC 9728 protected resource metadata: `resource` is the public MCP URL, never the upstream's. */
export function protectedResourceMetadata(site: Site, scopes: readonly string[]): Record<string, unknown> {
  return {
    resource: site.resource,
    authorization_servers: [site.issuer],
    scopes_supported: scopes,
    bearer_methods_supported: ['header'],
    resource_name: 'mcp-warden',
  };
}

export function metadataHandlers(deps: { site: Site; scopes: readonly string[]; keyRing: KeyRing; login: LoginOffer | null }) {
  const asymmetric = deps.keyRing.algorithm !== 'HS256';
  const as = authorizationServerMetadata(deps.site, deps.scopes, asymmetric, deps.login);
  const prm = protectedResourceMetadata(deps.site, deps.scopes);
  return {
    authorizationServer: (ctx: RequestContext) => sendJson(ctx.res, 200, as, PUBLIC),
    protectedResource: (ctx: RequestContext) => sendJson(ctx.res, 200, prm, PUBLIC),
    jwks: (ctx: RequestContext) => sendJson(ctx.res, 200, deps.keyRing.jwks(), { ...PUBLIC, 'cache-control': 'public, max-age=60' }),
    // Browser clients (the MCP Inspector) send MCP-Protocol-Version with discovery requests, which
    // makes the browser ask first; without an answer the SDK falls back to retrying without it.
    preflight: (ctx: RequestContext) => {
      ctx.res.writeHead(204, PREFLIGHT);
      ctx.res.end();
    },
    authorize: () => {
      throw new WardenError('OAUTH_UNSUPPORTED_RESPONSE_TYPE');
    },
  };
}
