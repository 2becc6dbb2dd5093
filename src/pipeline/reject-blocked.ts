import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import type { Limiters } from '../store/limiters.js';

/** Stage 3: an address over its failed-attempt budget gets 429 before any other work is done. */
export function rejectBlocked(deps: { readonly limiters: Limiters }) {
  return async function rejectBlocked(ctx: RequestContext): Promise<void> {
    const blockedMs = await deps.limiters.blockedFor(ctx.clientAddress);
    if (blockedMs > 0) throw new WardenError('ADDRESS_BLOCKED', { retryAfterMs: blockedMs });
  };
}
