import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import type { Limiters } from '../store/limiters.js';

/** Stage 3: an address over its failed-attempt budget gets 429 before any other work is done. */
export function rejectBlocked(deps: { readonly limiters: Limiters }) {
  const { points, windowSeconds } = deps.limiters.failedAttemptsPolicy;
  return async function rejectBlocked(ctx: RequestContext): Promise<void> {
    const blockedMs = await deps.limiters.blockedFor(ctx.clientAddress);
    if (blockedMs > 0) {
      const limit = { points, windowSeconds, remaining: 0, resetMs: blockedMs };
      throw new WardenError('ADDRESS_BLOCKED', { reason: 'failed_attempts', limit, retryAfterMs: blockedMs });
    }
  };
}
