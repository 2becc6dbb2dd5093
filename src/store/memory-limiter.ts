import { addPoints, counterRes } from './counter.js';
import type { Count } from './counter.js';
import type { RateLimiterRes } from 'rate-limiter-flexible';
import { TtlMap } from './ttl-map.js';
import type { Limiter, LimiterOptions } from './types.js';

/**
 * A rate limiter of the memory store: counter.ts's algorithm (the twin of the Redis script) on
 * the injected clock, its counts in a bounded map. Keys come from the network (source addresses):
 * past `maxKeys` the least recently counted key is forgotten, so a flood cannot grow it.
 */
/** A memory limiter also answers synchronously, for the memory store's hot path. */
export interface MemoryLimiter extends Limiter {
  /** One point now: over the limit is a result, as in {@link consumeCounter}. */
  consumeNow(key: string): { readonly allowed: boolean; readonly res: RateLimiterRes };
  getNow(key: string): RateLimiterRes | null;
}

export function memoryLimiter(options: LimiterOptions, maxKeys: number, clock: () => number): MemoryLimiter {
  // Points consumed per key; the entry's expiry is the count's resetAt.
  const counts = new TtlMap<number>(maxKeys);

  const read = (key: string, now: number): Count | null => {
    const consumed = counts.get(key, now);
    const resetAt = counts.expiresAt(key, now);
    return consumed === undefined || resetAt === undefined ? null : { consumed, resetAt };
  };

  function add(key: string, change: number) {
    const now = clock();
    const count = addPoints(read(key, now), change, now, options);
    counts.set(key, count.consumed, count.resetAt);
    return counterRes(count, now, options.points, change);
  }

  function getNow(key: string): RateLimiterRes | null {
    const now = clock();
    const count = read(key, now);
    return count ? counterRes(count, now, options.points) : null;
  }

  return {
    consumeNow(key) {
      const res = add(key, 1);
      return { allowed: res.consumedPoints <= options.points, res };
    },
    getNow,
    async consume(key) {
      const res = add(key, 1);
      if (res.consumedPoints > options.points) throw res;
      return res;
    },
    async get(key) {
      return getNow(key);
    },
    async reward(key) {
      add(key, -1);
    },
    async keys() {
      return [...counts.keys('', clock())];
    },
    async delete(key) {
      counts.delete(key);
    },
  };
}
