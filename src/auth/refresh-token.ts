import { createHash, randomBytes } from 'node:crypto';
import type { SessionEnder } from '../session/end-session.js';
import { appSessionGrant, isUserPrincipal } from '../login/principal.js';
import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { logEvent } from '../observability/events.js';
import type { RefreshRecord, RefreshTokenStore, RequestStateStore, RevocationStore } from '../store/types.js';

/** What a refresh-token rotation reads and writes. */
export type RefreshStores = RefreshTokenStore & RevocationStore & Pick<RequestStateStore, 'loadRequestState'>;

const SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** A new opaque refresh token (256 random bits) and the SHA-256 the store keeps instead of it. */
export function mintRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** True when a presented value could be one of our refresh tokens (anything else is not looked up). */
export function isRefreshTokenShape(value: string): boolean {
  return SHAPE.test(value);
}

/**
 * Redeems a refresh token of `principal` once (OAuth 2.1 §4.3.1): the record of a valid one; a
 * reused one (stolen or replayed) ends its whole grant and is refused, as is one whose grant or
 * principal was revoked since. Shared by machine clients' and people's refresh grants.
 */
export async function redeemRefreshToken(
  ctx: RequestContext,
  deps: { readonly store: RefreshStores; readonly ender: Pick<SessionEnder, 'revokeGrant'>; readonly refreshTtlMs: number; readonly clock: () => number },
  principal: string,
  hash: string,
  clientId: string,
): Promise<RefreshRecord> {
  const now = deps.clock();
  const used = await deps.store.useRefreshToken(principal, hash, now);
  if (used.status === 'unknown') throw new WardenError('OAUTH_INVALID_GRANT');
  if (used.status === 'reused') {
    const by = { log: ctx.log, clientId, address: ctx.clientAddress };
    await deps.ender.revokeGrant(principal, used.record.grantId, deps.refreshTtlMs, now, by);
    // A person's sessions are the app's, not the grant's: a theft signal ends them too.
    if (isUserPrincipal(principal)) await deps.ender.revokeGrant(principal, appSessionGrant(clientId), deps.refreshTtlMs, now, by);
    logEvent(ctx.log, 'refresh.reuse', { clientId, grantId: used.record.grantId, address: ctx.clientAddress });
    throw new WardenError('OAUTH_INVALID_GRANT', { reason: 'reuse' });
  }
  const state = await deps.store.loadRequestState({ principal, jti: null, grantId: used.record.grantId, sessionKey: null, now, idleTimeoutMs: 1, maxLifetimeMs: 1 });
  if (state.revoked || used.record.issuedAt < state.clientCutoff) throw new WardenError('OAUTH_INVALID_GRANT', { reason: 'revoked' });
  return used.record;
}
