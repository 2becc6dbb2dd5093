import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import type { Limiters } from '../store/limiters.js';

/** The refusal of an address over its failed-attempt budget. */
export function addressBlocked(limiters: Limiters, blockedMs: number): WardenError {
  const { points, windowSeconds } = limiters.failedAttemptsPolicy;
  const limit = { points, windowSeconds, remaining: 0, resetMs: blockedMs };
  return new WardenError('ADDRESS_BLOCKED', { reason: 'failed_attempts', limit, retryAfterMs: blockedMs });
}

/**
 * Stage 3: an address over its failed-attempt budget gets 429, whatever else is wrong with the
 * request. The check is owed from here on, not run here: load-state reads the counter in its own
 * store call (on one Redis node, the same script), and whoever refuses a request before that runs
 * it first (a blocked address never learns whether its token or session id was right).
 */
export function rejectBlocked(deps: { readonly limiters: Limiters }) {
  return function rejectBlocked(ctx: RequestContext): void {
    ctx.blockCheck = deps.limiters;
  };
}

/** Runs the owed failed-attempt check, if any: throws ADDRESS_BLOCKED when the address is blocked. */
export async function settleBlockCheck(ctx: RequestContext): Promise<void> {
  const limiters = ctx.blockCheck;
  ctx.blockCheck = null;
  if (!limiters) return;
  const blockedMs = await limiters.blockedFor(ctx.clientAddress);
  if (blockedMs > 0) throw addressBlocked(limiters, blockedMs);
}
