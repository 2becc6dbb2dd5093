import { RateLimiterRes } from 'rate-limiter-flexible';
import type { RequestCounters, RequestLoad, StateQuery, Store } from './store.js';

/**
 * {@link Store.loadRequest} as three concurrent calls, for a store (or a Redis deployment) where
 * they cannot be one. Over the limit is a result; a store failure rejects.
 */
export async function loadRequestApart(store: Store, query: StateQuery, counters: RequestCounters): Promise<RequestLoad> {
  const consume = counters.consume.limiter.consume(counters.consume.key).then(
    (res) => ({ allowed: true, res }),
    (err: unknown) => {
      if (err instanceof RateLimiterRes) return { allowed: false, res: err };
      throw err;
    },
  );
  const [state, consumed, peeked] = await Promise.all([store.loadRequestState(query), consume, counters.peek ? counters.peek.limiter.get(counters.peek.key) : null]);
  return { state, consumed, peeked };
}
