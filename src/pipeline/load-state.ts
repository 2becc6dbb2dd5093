import type { RequestContext } from '../context.js';
import type { ClientRegistry } from '../auth/clients.js';
import type { Identity } from '../context.js';
import type { SessionIds } from '../session/session-id.js';
import type { Generation } from '../store/generation.js';
import type { Limiters, RequestLimits } from '../store/limiters.js';

export interface LoadStateDeps {
  readonly limiters: Limiters;
  readonly clients: ClientRegistry;
  readonly sessionIds: SessionIds;
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
  readonly clock: () => number;
  /** The store's life: after a reconnect nothing is read before its marker was checked. */
  readonly generation: Pick<Generation, 'pending'>;
}

/** A machine client's token: it names a client with settings of its own (a person's names a login app). */
export const isMachineToken = (identity: Identity): boolean => identity.issuer === 'self' && identity.user === null;

/**
 * Stage 5: everything the decisions after it need from the store, in one call: the address's
 * failed-attempt block, the token's revocation state, the session record (slid forward) and one
 * point of the client's rate limit. On a single Redis node that is one script, one round trip.
 * It decides nothing: the stages after it refuse on what it loaded. A caller that is not
 * authenticated only gets its address's block read (nothing of a principal is touched).
 */
export function loadState(deps: LoadStateDeps) {
  function keep(ctx: RequestContext, { state, limit, blockedMs }: RequestLimits): void {
    ctx.addressBlockedMs = blockedMs;
    ctx.state = state;
    ctx.limit = limit;
  }

  async function blockOnly(ctx: RequestContext): Promise<void> {
    ctx.addressBlockedMs = await deps.limiters.blockedFor(ctx.clientAddress);
  }

  // Not an async function: on the memory store, or a client-cache hit, the whole stage is
  // synchronous and returns no promise (runStages awaits only promises).
  return function loadState(ctx: RequestContext): Promise<void> | void {
    const identity = ctx.identity;
    if (ctx.authFailure !== null || identity === null) return blockOnly(ctx);
    // Nothing is read after a store reconnect until its marker was checked.
    const pending = deps.generation.pending();
    if (pending) return pending.then(() => withClient(ctx, identity));
    return withClient(ctx, identity);
  };

  function withClient(ctx: RequestContext, identity: Identity): Promise<void> | void {
    // Usually answered synchronously (a configured or cached client): awaited only when it is not.
    const client = isMachineToken(identity) ? deps.clients.get(identity.clientId) : null;
    if (client instanceof Promise) {
      return client.then((found) => {
        ctx.client = found;
        return load(ctx, identity);
      });
    }
    ctx.client = client;
    return load(ctx, identity);
  }

  function load(ctx: RequestContext, identity: Identity): Promise<void> | void {
    const presented = ctx.req.headers['mcp-session-id'];
    ctx.presentedSessionId = typeof presented === 'string' ? presented : presented === undefined ? null : presented.join(',');
    // A forged or foreign id has no key: it is refused in resolve-session without a lookup.
    ctx.sessionKey = ctx.presentedSessionId === null ? null : deps.sessionIds.check(ctx.presentedSessionId, identity.principal);
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
      return deps.limiters.requestState(query).then((state) => {
        ctx.state = state;
      });
    }
    const limits = deps.limiters.forRequest(query, ctx.client?.rateLimit ?? null, ctx.clientAddress);
    if (limits instanceof Promise) return limits.then((found) => keep(ctx, found));
    keep(ctx, limits);
    return undefined;
  }
}
