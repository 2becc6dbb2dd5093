import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { readJsonBody } from '../http/jsonrpc.js';
import { sendJson } from '../http/reply.js';
import { logEvent } from '../observability/events.js';
import { parseClientMetadata } from '../login/registration.js';
import type { Registrations } from '../login/registration.js';
import type { RedirectPolicy } from '../login/redirect-uris.js';
import type { Limiters } from '../store/limiters.js';

/**
 * `POST /oauth/register`: RFC 7591 dynamic client registration, for MCP clients that register
 * themselves at first use (Claude via mcp-remote, the Inspector, VS Code). Open by design, so it
 * is bounded: a per-address limit taken before anything is read, redirect URIs only from the
 * operator's allow-list, and registrations nobody signs in through expire.
 */
export interface RegisterDeps {
  readonly registrations: Registrations;
  readonly policy: RedirectPolicy;
  readonly limiters: Limiters;
}

const MAX_BODY_BYTES = 16 * 1024;
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

export function registerEndpoint(deps: RegisterDeps) {
  return async (ctx: RequestContext): Promise<void> => {
    const limit = await deps.limiters.register(ctx.clientAddress ?? '');
    if (!limit.allowed) throw new WardenError('RATE_LIMITED', { reason: 'register', limit: limit.limit, retryAfterMs: limit.limit.resetMs });
    const raw = await readJsonBody(ctx.req, MAX_BODY_BYTES, 'REGISTRATION_INVALID');
    const parsed = parseClientMetadata(raw, deps.policy, 'client_secret_basic');
    if (!parsed.ok) throw new WardenError(parsed.error === 'invalid_redirect_uri' ? 'REDIRECT_URI_REFUSED' : 'REGISTRATION_INVALID', { description: parsed.description });
    const m = parsed.value;
    const { id, secret, issuedAt } = await deps.registrations.register(m);
    logEvent(ctx.log, 'client.registered', { clientId: id, address: ctx.clientAddress });
    sendJson(ctx.res, 201, {
      client_id: id,
      client_id_issued_at: issuedAt,
      ...(secret === null ? {} : { client_secret: secret, client_secret_expires_at: 0 }),
      redirect_uris: m.redirectUris,
      token_endpoint_auth_method: m.authMethod,
      grant_types: m.grantTypes,
      response_types: ['code'],
      ...(m.name === null ? {} : { client_name: m.name }),
      ...(m.uri === null ? {} : { client_uri: m.uri }),
    }, NO_STORE);
  };
}
