import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { rateLimitHeaders } from '../http/reply.js';

/** Stage 6: the client's request limit: 429 with Retry-After when spent; RateLimit headers always. */
export function enforceRateLimit() {
  return function enforceRateLimit(ctx: RequestContext): void {
    // A relayed request was limited (and answers with its headers) on the replica that relayed it.
    if (ctx.relayedFrom !== null) return;
    const { allowed, limit } = need(ctx.limit, 'ctx.limit');
    if (!allowed) throw new WardenError('RATE_LIMITED', { reason: 'client', limit, retryAfterMs: limit.resetMs });
    ctx.responseHeaders = rateLimitHeaders('client', limit);
  };
}
