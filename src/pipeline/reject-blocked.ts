import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import type { Limiters } from '../store/limiters.js';

/**
 * Stage 3: an address over its failed-attempt budget gets 429, whatever else is wrong with the
 * request. The check starts here and is settled with the state in stage 5, so on Redis it rides in
 * the same round trip instead of costing one of its own; nothing is forwarded before it passed,
 * and the request handler awaits it before any other refusal is sent (a blocked address never
 * learns whether its token or session id was right).
 */
export function rejectBlocked(deps: { readonly limiters: Limiters }) {
  const { points, windowSeconds } = deps.limiters.failedAttemptsPolicy;
  return function rejectBlocked(ctx: RequestContext): void {
    const check = deps.limiters.blockedFor(ctx.clientAddress).then((blockedMs) => {
      if (blockedMs > 0) {
        const limit = { points, windowSeconds, remaining: 0, resetMs: blockedMs };
        throw new WardenError('ADDRESS_BLOCKED', { reason: 'failed_attempts', limit, retryAfterMs: blockedMs });
      }
    });
    // Observed later (stage 5 or the request handler); never an unhandled rejection meanwhile.
    check.catch(() => {});
    ctx.blockCheck = check;
  };
}

/** Waits for the pending failed-attempt check, throwing ADDRESS_BLOCKED when the address is blocked. */
export async function settleBlockCheck(ctx: RequestContext): Promise<void> {
  const check = ctx.blockCheck;
  ctx.blockCheck = null;
  if (check) await check;
}
