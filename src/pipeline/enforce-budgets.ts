import { createHash } from 'node:crypto';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { canonical } from '../audit/chain.js';
import { logEvent } from '../observability/events.js';
import { formatDuration } from '../config/duration.js';
import { compileGlob } from '../policy/glob.js';
import type { Limiter, LimitStore } from '../store/types.js';
import type { ReadMessage } from './read-message.js';

/**
 * Stage (with any budget or the loop breaker): the agent-safety limits on tool calls (DESIGN
 * §14). Counters live in the store, shared by the replicas, and a store that fails refuses the
 * call (503): a budget that cannot be checked is not granted.
 *
 * - budgets: calls per session and per principal per window, calls over a session's life, calls
 *   in flight per session, and per-tool budgets (globs; the first matching entry);
 * - the loop breaker: the same tool with the same arguments more than `maxRepeats` times within
 *   `window` in one session is refused for `coolDown`.
 *
 * Over a budget the request gets a JSON-RPC error naming the budget and when it resets.
 */
export interface BudgetDeps {
  readonly store: LimitStore;
  readonly budgets: Config['budgets'];
  readonly loopBreaker: Config['loopBreaker'];
  /** sessions.maxLifetime: the window of the session's total. */
  readonly sessionLifetimeMs: number;
  readonly readMessage: ReadMessage;
  readonly onStoreError: (err: unknown) => void;
}

interface Counter {
  readonly name: string;
  readonly limiter: Limiter;
  readonly points: number;
  readonly windowMs: number;
}

// An in-flight count whose decrement was lost (a crash) is forgotten after this long.
const IN_FLIGHT_TTL_MS = 3_600_000;

export function enforceBudgets(deps: BudgetDeps) {
  const { budgets, loopBreaker, store } = deps;
  const counter = (name: string, keyPrefix: string, points: number, windowMs: number, options: { blockMs?: number; lease?: boolean } = {}): Counter =>
    ({ name, points, windowMs, limiter: store.limiter({ keyPrefix, points, durationMs: windowMs, ...options }) });
  // Budgets only count up, so they may be taken from a lease (store.clientCache): most tool calls
  // then cost no round trip. Not the in-flight count (given back) nor the loop breaker (blocks).
  const leased = { lease: true };
  const perSession = budgets.session && counter('tool calls per session', 'b-session', budgets.session.points, budgets.session.durationMs, leased);
  const perPrincipal = budgets.principal && counter('tool calls per client', 'b-principal', budgets.principal.points, budgets.principal.durationMs, leased);
  const total = budgets.sessionTotal === null ? null : counter('tool calls over the session\'s life', 'b-total', budgets.sessionTotal, deps.sessionLifetimeMs, leased);
  const inFlight = budgets.concurrent === null ? null : counter('tool calls in flight per session', 'b-flight', budgets.concurrent, IN_FLIGHT_TTL_MS);
  const tools = budgets.tools.map((b, i) => ({ globs: b.tools.map((t) => compileGlob(t)), counter: counter(`calls of ${b.tools.join(', ')}`, `b-tool${i}`, b.points, b.duration, leased) }));
  const loop = loopBreaker.maxRepeats === null ? null : counter('the same call repeated', 'b-loop', loopBreaker.maxRepeats, loopBreaker.window, { blockMs: loopBreaker.coolDown });

  async function take(c: Counter, key: string): Promise<RateLimiterRes | null> {
    try {
      await c.limiter.consume(key);
      return null;
    } catch (err) {
      if (err instanceof RateLimiterRes) return err;
      deps.onStoreError(err);
      throw new WardenError('STORE_UNAVAILABLE', { reason: 'store', retryAfterMs: 2_000, cause: err });
    }
  }

  /** The refusal, its event (by the refusal writer) naming the budget as its rule and the tool. */
  function exceeded(c: Counter, res: RateLimiterRes, tool: string): WardenError {
    const resetS = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    return new WardenError('BUDGET_EXCEEDED', {
      reason: 'budget', denial: { method: 'tools/call', name: tool, rule: c.name }, retryAfterMs: res.msBeforeNext,
      description: `Budget exceeded: ${c.name} (${c.points} per ${formatDuration(c.windowMs)}); resets in ${resetS} s`,
    });
  }

  return async function enforceBudgets(ctx: RequestContext): Promise<void> {
    // A relayed request was counted by the replica that took it.
    if (ctx.req.method !== 'POST' || ctx.relayedFrom !== null) return;
    const calls = (await deps.readMessage(ctx)).calls.filter((c) => c.method === 'tools/call');
    if (calls.length === 0) return;
    const principal = need(ctx.identity, 'ctx.identity').principal;
    const session = `${principal}\0${ctx.session?.key ?? '-'}`;
    for (const call of calls) {
      const tool = call.target ?? '';
      if (loop) {
        const key = `${session}\0${createHash('sha256').update(tool).update('\0').update(canonical(call.arguments ?? null)).digest('base64url')}`;
        const tripped = await take(loop, key);
        if (tripped) {
          // The event names the session (short hash), the tool and how often it was called.
          logEvent(ctx.log, 'loop.broken', { sessionId: ctx.session?.key, name: tool.slice(0, 256), count: tripped.consumedPoints, principal, address: ctx.clientAddress });
          throw new WardenError('LOOP_BROKEN', { reason: 'loop', description: `The same call of ${tool.slice(0, 128)} was repeated more than ${loop.points} times in ${formatDuration(loop.windowMs)}; refused for ${formatDuration(loopBreaker.coolDown)}`, retryAfterMs: tripped.msBeforeNext });
        }
      }
      // Independent counters, taken at once (one wait, not one per counter).
      const budget = tools.find((b) => b.globs.some((g) => g.test(tool)));
      const counters = ([[perSession, session], [perPrincipal, principal], [total, session], [budget?.counter ?? null, principal]] as const).filter((e): e is readonly [Counter, string] => e[0] !== null);
      const results = await Promise.all(counters.map(([c, key]) => take(c, key)));
      const refused = results.findIndex((r) => r !== null);
      if (refused !== -1) {
        const [c] = counters[refused] as readonly [Counter, string];
        throw exceeded(c, results[refused] as RateLimiterRes, tool);
      }
      if (inFlight) {
        const over = await take(inFlight, session);
        if (over) {
          // Refused, so not in flight: the point its attempt took goes back.
          await inFlight.limiter.reward(session).catch(deps.onStoreError);
          throw exceeded(inFlight, over, tool);
        }
        // The call is over when its response is: the slot is given back then, whatever happened.
        ctx.res.once('close', () => void inFlight.limiter.reward(session).catch(deps.onStoreError));
      }
    }
  };
}
