import type { Handler, Route } from './server.js';

/** The handlers behind DESIGN §3's endpoints, built by the composition root. */
export interface RouteHandlers {
  readonly mcp: Handler;
  readonly token: Handler;
  readonly revoke: Handler;
  readonly authorize: Handler;
  readonly authorizationServer: Handler;
  readonly protectedResource: Handler;
  readonly jwks: Handler;
  /** CORS preflight of the public documents above. */
  readonly metadataPreflight: Handler;
  readonly healthz: Handler;
  readonly readyz: Handler;
  /** Null when metrics are served on the admin listener instead. */
  readonly metrics: Handler | null;
  /** Interactive sign-in (DESIGN §11): the provider's return and the consent form; null when login is off. */
  readonly login: { readonly callback: Handler; readonly consent: Handler } | null;
  /** RFC 7591 dynamic client registration; null unless login.registration.dynamic. */
  readonly register: Handler | null;
  /** Legacy HTTP+SSE clients (DESIGN §16): null unless `legacySse.upstream` is set. */
  readonly legacy: { readonly ssePath: string; readonly messagePath: string; readonly stream: Handler; readonly message: Handler } | null;
}

export type RouteTable = (Route & { readonly path: string })[];

/** The route table of the main listener (DESIGN §3). Route templates are the metrics labels. */
export function mainRoutes(paths: { mcpPath: string; issuerPath: string }, h: RouteHandlers): RouteTable {
  const routes: RouteTable = [
    { path: paths.mcpPath, template: 'mcp', kind: 'mcp', methods: { POST: h.mcp, GET: h.mcp, DELETE: h.mcp, OPTIONS: h.mcp } },
    { path: '/oauth/token', template: '/oauth/token', kind: 'oauth', methods: { POST: h.token, OPTIONS: h.token } },
    { path: '/oauth/revoke', template: '/oauth/revoke', kind: 'oauth', methods: { POST: h.revoke, OPTIONS: h.revoke } },
    // With sign-in on, a person's browser is on the other end: refusals are pages, never redirects.
    { path: '/oauth/authorize', template: '/oauth/authorize', kind: h.login ? 'page' : 'oauth', methods: { GET: h.authorize, POST: h.authorize } },
    { path: '/.well-known/oauth-authorization-server', template: '/.well-known/oauth-authorization-server', kind: 'plain', methods: { GET: h.authorizationServer, OPTIONS: h.metadataPreflight } },
    { path: '/.well-known/oauth-protected-resource', template: '/.well-known/oauth-protected-resource', kind: 'plain', methods: { GET: h.protectedResource, OPTIONS: h.metadataPreflight } },
    { path: `/.well-known/oauth-protected-resource${paths.mcpPath}`, template: '/.well-known/oauth-protected-resource{mcpPath}', kind: 'plain', methods: { GET: h.protectedResource, OPTIONS: h.metadataPreflight } },
    { path: '/.well-known/jwks.json', template: '/.well-known/jwks.json', kind: 'plain', methods: { GET: h.jwks, OPTIONS: h.metadataPreflight } },
    ...healthRoutes(h),
  ];
  // RFC 8414 §3.1: an issuer with a path has its metadata under the path-suffixed well-known URL.
  if (paths.issuerPath) routes.push({ path: `/.well-known/oauth-authorization-server${paths.issuerPath}`, template: '/.well-known/oauth-authorization-server{issuerPath}', kind: 'plain', methods: { GET: h.authorizationServer, OPTIONS: h.metadataPreflight } });
  if (h.login) {
    routes.push({ path: '/oauth/callback', template: '/oauth/callback', kind: 'page', methods: { GET: h.login.callback } });
    routes.push({ path: '/oauth/consent', template: '/oauth/consent', kind: 'page', methods: { POST: h.login.consent } });
  }
  if (h.register) routes.push({ path: '/oauth/register', template: '/oauth/register', kind: 'oauth', methods: { POST: h.register, OPTIONS: h.register } });
  if (h.metrics) routes.push({ path: '/metrics', template: '/metrics', kind: 'plain', methods: { GET: h.metrics } });
  if (h.legacy) {
    // Refusals on both are JSON-RPC bodies, as on the MCP path: legacy clients speak JSON-RPC too.
    routes.push({ path: h.legacy.ssePath, template: 'legacy-sse', kind: 'mcp', methods: { GET: h.legacy.stream } });
    routes.push({ path: h.legacy.messagePath, template: 'legacy-message', kind: 'mcp', methods: { POST: h.legacy.message } });
  }
  return routes;
}

/** Health endpoints: unauthenticated, cheap, outside every limit. */
export function healthRoutes(h: Pick<RouteHandlers, 'healthz' | 'readyz'>): RouteTable {
  return [
    { path: '/healthz', template: '/healthz', kind: 'plain', methods: { GET: h.healthz } },
    { path: '/readyz', template: '/readyz', kind: 'plain', methods: { GET: h.readyz } },
  ];
}

/** The admin API's handlers (DESIGN §13). */
export interface AdminHandlers {
  readonly openapi: Handler;
  readonly auditKey: Handler;
  readonly revoke: Handler;
  readonly listSessions: Handler;
  readonly endSession: Handler;
  readonly listBlocks: Handler;
  readonly liftBlock: Handler;
  readonly rotateKeys: Handler;
  readonly retireKey: Handler;
  readonly reload: Handler;
}

/** The admin listener (`admin.listen`): metrics, health and the admin API. Never the public one. */
export function adminRoutes(h: Pick<RouteHandlers, 'healthz' | 'readyz'> & { metrics: Handler; admin: AdminHandlers }): RouteTable {
  const api = (path: string, methods: Record<string, Handler>): RouteTable[number] => ({ path: `/admin/v1${path}`, template: `/admin/v1${path}`, kind: 'admin', methods });
  return [
    ...healthRoutes(h),
    { path: '/metrics', template: '/metrics', kind: 'plain', methods: { GET: h.metrics } },
    api('/openapi.json', { GET: h.admin.openapi }),
    api('/audit-key', { GET: h.admin.auditKey }),
    api('/revoke', { POST: h.admin.revoke }),
    api('/sessions', { GET: h.admin.listSessions, DELETE: h.admin.endSession }),
    api('/blocks', { GET: h.admin.listBlocks, DELETE: h.admin.liftBlock }),
    api('/keys/rotate', { POST: h.admin.rotateKeys }),
    api('/keys/retire', { POST: h.admin.retireKey }),
    api('/reload', { POST: h.admin.reload }),
  ];
}

