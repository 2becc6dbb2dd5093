import type { RequestContext } from '../context.js';
import type { SessionEnder } from '../session/end-session.js';
import { WardenError } from '../errors.js';
import { logEvent } from '../observability/events.js';
import type { ClientRegistry } from '../auth/clients.js';
import type { VerifyAccessToken } from '../auth/access-token.js';
import { hashRefreshToken, isRefreshTokenShape } from '../auth/refresh-token.js';
import type { Limiters } from '../store/limiters.js';
import type { RefreshTokenStore, RevocationStore } from '../store/types.js';
import { authenticateClient, readForm } from './client-auth.js';

export interface RevokeDeps {
  readonly clients: ClientRegistry;
  readonly limiters: Limiters;
  readonly store: RefreshTokenStore & RevocationStore;
  /** Revocations end the sessions they take away (upstream too). */
  readonly ender: SessionEnder;
  readonly verify: VerifyAccessToken;
  readonly refreshTtlMs: number;
  /** tokens.clockSkew: a token verifies this long past its `exp`, so its revocation lasts as long. */
  readonly clockSkewMs: number;
  readonly clock: () => number;
}

/**
 * `POST /oauth/revoke` (RFC 7009): a client revokes one of its own tokens. A refresh token ends its
 * whole grant (§2.1: access tokens of the same grant SHOULD go too). Unknown, invalid or foreign
 * tokens still get 200, so the endpoint tells nothing about tokens it did not issue to the caller.
 */
export function revokeEndpoint(deps: RevokeDeps) {
  async function revokeRefresh(ctx: RequestContext, clientId: string, token: string): Promise<boolean> {
    if (!isRefreshTokenShape(token)) return false;
    const now = deps.clock();
    const used = await deps.store.useRefreshToken(clientId, hashRefreshToken(token), now);
    if (used.status === 'unknown') return false;
    await deps.ender.revokeGrant(clientId, used.record.grantId, deps.refreshTtlMs, now, { log: ctx.log, clientId, address: ctx.clientAddress });
    logEvent(ctx.log, 'token.revoked', { reason: 'refresh_token', clientId, grantId: used.record.grantId, address: ctx.clientAddress });
    return true;
  }

  async function revokeAccess(ctx: RequestContext, clientId: string, token: string): Promise<boolean> {
    let identity;
    try {
      identity = await deps.verify(token);
    } catch {
      return false;
    }
    if (identity.issuer !== 'self' || identity.clientId !== clientId || identity.jti === null) return false;
    // Until the token stops verifying: its `exp` plus the skew the verifier allows past it.
    await deps.store.revokeToken(identity.principal, identity.jti, identity.expiresAtMs + deps.clockSkewMs, deps.clock());
    logEvent(ctx.log, 'token.revoked', { reason: 'access_token', clientId, jti: identity.jti, address: ctx.clientAddress });
    return true;
  }

  return async function revoke(ctx: RequestContext): Promise<void> {
    const form = await readForm(ctx);
    const client = await authenticateClient(ctx, form, deps);
    const token = form.get('token');
    if (token === undefined || token === '') throw new WardenError('OAUTH_INVALID_REQUEST', { description: 'token is required' });
    // The hint only orders the attempts (RFC 7009 §2.1): when it misses, the other type is tried.
    const tries = form.get('token_type_hint') === 'access_token' ? [revokeAccess, revokeRefresh] : [revokeRefresh, revokeAccess];
    for (const attempt of tries) if (await attempt(ctx, client.id, token)) break;
    ctx.res.writeHead(200, { 'cache-control': 'no-store', 'content-length': '0' });
    ctx.res.end();
  };
}
