import type { RequestContext } from '../context.js';
import { countsAsFailedAttempt, ERROR_CATALOG } from '../errors.js';
import type { WardenError } from '../errors.js';
import { logEvent } from '../observability/events.js';
import type { Metrics } from '../observability/metrics.js';
import type { UpstreamPicker } from '../session/upstreams.js';
import type { Limiters } from '../store/limiters.js';

/** Bookkeeping run, in order, on every refusal before it is written (the router runs the list). */
export type RefusalHook = (ctx: RequestContext, err: WardenError) => Promise<void> | void;

export interface RefusalDeps {
  readonly metrics: Metrics;
  readonly limiters: Pick<Limiters, 'failedAttempt'>;
  readonly upstreams: Pick<UpstreamPicker, 'markDown'>;
  /** rateLimits.failedAttempts.points: logged when an address reaches it. */
  readonly failedAttemptPoints: number;
  /** How metrics name the upstream a request went to. */
  readonly upstreamLabel: (ctx: RequestContext) => string;
}

/** The caller's client id when known: a verified token (MCP path) or an authenticated client (OAuth endpoints). */
export const clientIdOf = (ctx: RequestContext): string | null => ctx.identity?.clientId ?? ctx.client?.id ?? null;

/** Each refusal is a security event of its catalog entry (a policy denial says which rule and tool). */
function logRefusal(): RefusalHook {
  return function logRefusal(ctx, err) {
    const entry = ERROR_CATALOG[err.code];
    const { reason, denial } = err.detail;
    const base = { reason, address: ctx.clientAddress, route: ctx.route, code: err.code, clientId: clientIdOf(ctx) };
    if (denial) logEvent(ctx.log, entry.event, { ...base, principal: ctx.identity?.principal, sessionId: ctx.session?.key, method: denial.method, name: denial.name?.slice(0, 256), rule: denial.rule });
    else logEvent(ctx.log, entry.event, base);
  };
}

const LIMITER_OF: Readonly<Record<string, string>> = { ADDRESS_BLOCKED: 'failed_attempts', SESSION_LIMIT: 'sessions', STREAM_LIMIT: 'streams' };

/** Refusals, authentication failures, limits hit and upstream failures, as metrics. */
function countRefusal(deps: Pick<RefusalDeps, 'metrics' | 'upstreamLabel'>): RefusalHook {
  return function countRefusal(ctx, err) {
    const { reason } = err.detail;
    deps.metrics.refusal(err.code, reason);
    if (ERROR_CATALOG[err.code].event === 'auth.failed') deps.metrics.authFailure(reason ?? 'unknown');
    const limiter = err.code === 'RATE_LIMITED' ? (reason ?? 'client') : LIMITER_OF[err.code];
    if (limiter) deps.metrics.rateLimited(limiter);
    if (err.code.startsWith('UPSTREAM_') && ctx.upstreamIndex !== null) deps.metrics.upstreamError(deps.upstreamLabel(ctx), reason ?? err.code.slice('UPSTREAM_'.length).toLowerCase());
  };
}

/** An upstream that refused the connection is skipped by new sessions for a while. */
function markUpstreamDown(deps: Pick<RefusalDeps, 'upstreams'>): RefusalHook {
  return function markUpstreamDown(ctx, err) {
    // A refused relay says the owner replica is down, not this replica's upstream.
    if (err.code === 'UPSTREAM_UNAVAILABLE' && err.detail.reason === 'refused' && ctx.upstreamIndex !== null && ctx.relayTo === null) deps.upstreams.markDown(ctx.upstreamIndex);
  };
}

/** Guessing (bad tokens, forged session ids, bad client secrets) spends the address's failed-attempt budget. */
function countFailedAttempt(deps: Pick<RefusalDeps, 'limiters' | 'failedAttemptPoints'>): RefusalHook {
  return async function countFailedAttempt(ctx, err) {
    if (!countsAsFailedAttempt(err) || !ctx.clientAddress) return;
    if (await deps.limiters.failedAttempt(ctx.clientAddress)) {
      // The moment the budget is spent, not only later refusals: the block starts with this request.
      logEvent(ctx.log, 'address.blocked', { reason: 'threshold', count: deps.failedAttemptPoints, address: ctx.clientAddress, route: ctx.route, clientId: clientIdOf(ctx) });
    }
  };
}

/** The refusal bookkeeping, in the order it runs: the event first, so it is logged even if the store is down. */
export function buildRefusalHooks(deps: RefusalDeps): RefusalHook[] {
  return [logRefusal(), countRefusal(deps), markUpstreamDown(deps), countFailedAttempt(deps)];
}
