import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import type { Limiters } from '../store/limiters.js';

/**
 * Reads the address's failed-attempt block on routes without a state load (the OAuth endpoints,
 * the sign-in pages): one store call. The MCP path reads it inside load-state's round trip.
 */
export function loadAddressBlock(deps: { readonly limiters: Pick<Limiters, 'blockedFor'> }) {
  return async function loadAddressBlock(ctx: RequestContext): Promise<void> {
    ctx.addressBlockedMs = await deps.limiters.blockedFor(ctx.clientAddress);
  };
}

/**
 * Stage 3: an address over its failed-attempt budget gets 429, whatever else is wrong with the
 * request (a blocked address never learns whether its token or session id was right): it runs
 * right after the block was read, before any other refusal decided so far is sent.
 */
export function rejectBlocked(deps: { readonly limiters: Pick<Limiters, 'failedAttemptsPolicy'> }) {
  return function rejectBlocked(ctx: RequestContext): void {
    const blockedMs = ctx.addressBlockedMs;
    if (blockedMs <= 0) return;
    const { points, windowSeconds } = deps.limiters.failedAttemptsPolicy;
    const limit = { points, windowSeconds, remaining: 0, resetMs: blockedMs };
    throw new WardenError('ADDRESS_BLOCKED', { reason: 'failed_attempts', limit, retryAfterMs: blockedMs });
  };
}
