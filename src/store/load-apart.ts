import { RateLimiterRes } from 'rate-limiter-flexible';
import type { Limiter, RequestCounters, RequestLoad, RequestStateStore, StateQuery } from './types.js';

/** One point of a counter: over the limit is a result (`allowed: false`); a store failure rejects. */
export function consumeCounter(limiter: Limiter, key: string): Promise<RequestLoad['consumed']> {
  return limiter.consume(key).then(
    (res) => ({ allowed: true, res }),
    (err: unknown) => {
      if (err instanceof RateLimiterRes) return { allowed: false, res: err };
      throw err;
    },
  );
}

/**
 * {@link Store.loadRequest} as three concurrent calls, for a store (or a Redis deployment) where
 * they cannot be one. Over the limit is a result; a store failure rejects.
 */
export async function loadRequestApart(store: Pick<RequestStateStore, 'loadRequestState'>, query: StateQuery, counters: RequestCounters): Promise<RequestLoad> {
  const [state, consumed, peeked] = await Promise.all([
    store.loadRequestState(query),
    consumeCounter(counters.consume.limiter, counters.consume.key),
    counters.peek ? counters.peek.limiter.get(counters.peek.key) : null,
  ]);
  return { state, consumed, peeked };
}
