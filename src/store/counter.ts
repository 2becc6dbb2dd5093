import { RateLimiterRes } from 'rate-limiter-flexible';
import type { LimiterOptions } from './types.js';

/**
 * The rate-limit counter, as one algorithm for both stores: this function on the memory store,
 * its Lua twin (redis-scripts.ts, COUNTER) on Redis. Its semantics are rate-limiter-flexible's
 * fixed window with a block (test/store/counter-agreement.test.ts runs both against the library):
 * - the first point of a key opens a window of `durationMs`; points within it add up;
 * - once more than `points` are consumed, the request is refused; the point that first goes over
 *   starts a block of `blockMs` (when set), which replaces the window's end;
 * - a reward is a negative point, counted the same way (it can open a window too).
 * Unlike the library, a count's end (`resetAt`) is on the injected clock and decided against it:
 * on Redis the key expires a grace after that end (only collecting it), so time can be a fake clock.
 */
export interface Count {
  readonly consumed: number;
  /** When the window (or the block) ends: epoch ms of the injected clock. */
  readonly resetAt: number;
}

/** A count read at `now`: null once its window has ended. */
export function liveCount(count: Count | null | undefined, now: number): Count | null {
  return count && count.resetAt > now ? count : null;
}

/** Adds `change` points (negative: a reward) to a live count, or opens a window. */
export function addPoints(count: Count | null, change: number, now: number, options: Pick<LimiterOptions, 'points' | 'durationMs' | 'blockMs'>): Count {
  const live = liveCount(count, now);
  const consumed = (live?.consumed ?? 0) + change;
  const blockMs = options.blockMs ?? 0;
  // Block once: on the point that crosses the limit, not on the ones refused after it.
  if (change > 0 && blockMs > 0 && consumed > options.points && consumed <= options.points + change) return { consumed, resetAt: now + blockMs };
  return { consumed, resetAt: live?.resetAt ?? now + options.durationMs };
}

/** A count as rate-limiter-flexible reports it. */
export function counterRes(count: Count, now: number, points: number, change = 0): RateLimiterRes {
  return new RateLimiterRes(Math.max(points - count.consumed, 0), count.resetAt - now, count.consumed, change !== 0 && count.consumed === change);
}
