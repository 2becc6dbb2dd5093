import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { isOriginAllowed, isSecure, isTrustedPeer } from '../http/headers.js';
import type { TrustProxy } from '../config/fields.js';

export interface TransportDeps {
  readonly maxBodyBytes: number;
  readonly requireSecureTransport: boolean;
  readonly allowedOrigins: readonly string[];
  readonly trustProxy: TrustProxy;
}

// MCP-NOTES §1.6: browser clients must read the session id and the auth challenge, and send these.
const CORS_EXPOSE = 'Mcp-Session-Id, WWW-Authenticate, Retry-After, RateLimit, RateLimit-Policy';
const CORS_ALLOW_HEADERS = 'Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name';
// MCP 2026-07-28: tools may mirror arguments into Mcp-Param-{Name} headers, whose names only the preflight tells.
const MCP_PARAM = /^mcp-param-[a-z0-9_-]{1,64}$/i;

/** The `Mcp-Param-*` names a preflight asks for (at most 32), to allow them by name. */
function requestedParamHeaders(requested: string | undefined): string[] {
  return (requested ?? '').split(',').map((h) => h.trim()).filter((h) => MCP_PARAM.test(h)).slice(0, 32);
}

/**
 * Stage 1: refuses what must not get further (a body on GET or DELETE, an oversized declared body,
 * plain HTTP when TLS is required, a browser Origin not on the allow-list) and answers CORS
 * preflights itself.
 */
export function checkTransport(deps: TransportDeps) {
  const allowed = new Set(deps.allowedOrigins);
  return function checkTransport(ctx: RequestContext): void | 'done' {
    const { req, res } = ctx;
    if (deps.requireSecureTransport) {
      const encrypted = 'encrypted' in req.socket && req.socket.encrypted === true;
      const trusted = isTrustedPeer(req.socket.remoteAddress ?? '', deps.trustProxy);
      if (!isSecure(encrypted, req.headers['x-forwarded-proto'], trusted)) throw new WardenError('INSECURE_TRANSPORT');
    }
    const origin = req.headers.origin;
    // DNS rebinding: a page on another site must not reach a local MCP server through us (403 before auth).
    if (!isOriginAllowed(origin, allowed)) throw new WardenError('ORIGIN_NOT_ALLOWED');
    if (origin !== undefined) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-expose-headers', CORS_EXPOSE);
      res.setHeader('vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
        'access-control-allow-headers': [CORS_ALLOW_HEADERS, ...requestedParamHeaders(req.headers['access-control-request-headers'])].join(', '),
        'access-control-max-age': '600',
      });
      res.end();
      return 'done';
    }
    // Request smuggling: a GET or DELETE body would go onto the kept-alive upstream connection
    // unframed, where the upstream reads it as a second request that no stage ever checked.
    if (req.method !== 'POST' && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0)) {
      throw new WardenError('INVALID_MESSAGE', { description: `A ${req.method ?? ''} request must not carry a body` });
    }
    if (Number(req.headers['content-length'] ?? 0) > deps.maxBodyBytes) throw new WardenError('BODY_TOO_LARGE');
    return undefined;
  };
}
