import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { addressBlocked } from './reject-blocked.js';
import type { ClientRegistry } from '../auth/clients.js';
import type { SessionIds } from '../session/session-id.js';
import type { Generation } from '../store/generation.js';
import type { Limiters } from '../store/limiters.js';

export interface LoadStateDeps {
  readonly limiters: Limiters;
  readonly clients: ClientRegistry;
  readonly sessionIds: SessionIds;
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
  readonly clock: () => number;
  /** The store's life: tokens this proxy issued in an earlier one (lost with its data) are refused. */
  readonly generation: Pick<Generation, 'epochMs' | 'pending'>;
  /** tokens.clockSkew: replicas' clocks may differ by this much. */
  readonly skewMs: number;
}

/**
 * Stage 5: one store call for the token's revocation state, the session record (slid forward),
 * the client's rate-limit consume and the owed failed-attempt check; on a single Redis node that is
 * one script, one round trip. A blocked address ends here with 429, a revoked token, grant or
 * client with 401, and so does a token issued before the store lost its data.
 */
export function loadState(deps: LoadStateDeps) {
  return async function loadState(ctx: RequestContext): Promise<void> {
    const identity = need(ctx.identity, 'ctx.identity');
    // After a reconnect, nothing is served before the store's marker was checked.
    const pending = deps.generation.pending();
    if (pending) await pending;
    // A token from before the store lost its data may have been revoked since: the store no longer knows.
    if (identity.issuer === 'self' && identity.issuedAtMs + deps.skewMs < deps.generation.epochMs()) throw new WardenError('TOKEN_INVALID', { reason: 'revoked' });
    const presented = ctx.req.headers['mcp-session-id'];
    ctx.presentedSessionId = typeof presented === 'string' ? presented : presented === undefined ? null : presented.join(',');
    // A forged or foreign id has no key: it is refused in resolve-session without a lookup.
    ctx.sessionKey = ctx.presentedSessionId === null ? null : deps.sessionIds.check(ctx.presentedSessionId, identity.principal);
    // A person's token names a login client app, not a machine client with settings of its own.
    const machine = identity.issuer === 'self' && identity.user === null;
    const client = machine ? await deps.clients.get(identity.clientId) : null;
    ctx.client = client;
    const blockCheckOwed = ctx.blockCheck !== null;
    ctx.blockCheck = null;
    const query = {
      principal: identity.principal,
      jti: identity.jti,
      grantId: identity.grantId,
      sessionKey: ctx.sessionKey,
      now: deps.clock(),
      idleTimeoutMs: deps.idleTimeoutMs,
      maxLifetimeMs: deps.maxLifetimeMs,
    };
    if (ctx.relayedFrom !== null) {
      // The relaying replica already took this request's point and checked the address's block:
      // counting it again here would halve the client's limit for relayed sessions.
      ctx.state = await deps.limiters.requestState(query);
    } else {
      const { state, limit, blockedMs } = await deps.limiters.forRequest(query, client?.rateLimit ?? null, blockCheckOwed ? ctx.clientAddress : null);
      if (blockedMs > 0) throw addressBlocked(deps.limiters, blockedMs);
      ctx.state = state;
      ctx.limit = limit;
    }
    const { state } = ctx;
    // A token of a client that no longer exists is as good as revoked.
    const removed = machine && client === null;
    if (removed || state.revoked || identity.issuedAtMs < state.clientCutoff) throw new WardenError('TOKEN_INVALID', { reason: 'revoked' });
  };
}
