import { RateLimiterRes } from 'rate-limiter-flexible';
import type { RequestLoad, RequestQuery, Store } from './store.js';

/**
 * {@link Store.loadRequest} as three concurrent calls, for a store (or a Redis deployment) where
 * they cannot be one. Over the limit is a result; a store failure rejects.
 */
export async function loadRequestApart(store: Store, query: RequestQuery): Promise<RequestLoad> {
  const consume = query.consume.limiter.consume(query.consume.key).then(
    (res) => ({ allowed: true, res }),
    (err: unknown) => {
      if (err instanceof RateLimiterRes) return { allowed: false, res: err };
      throw err;
    },
  );
  const [state, consumed, peeked] = await Promise.all([store.loadRequestState(query), consume, query.peek ? query.peek.limiter.get(query.peek.key) : null]);
  return { state, consumed, peeked };
}
