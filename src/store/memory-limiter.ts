import { addPoints, counterRes } from './counter.js';
import type { Count } from './counter.js';
import { TtlMap } from './ttl-map.js';
import type { Limiter, LimiterOptions } from './types.js';

/**
 * A rate limiter of the memory store: counter.ts's algorithm (the twin of the Redis script) on
 * the injected clock, its counts in a bounded map. Keys come from the network (source addresses):
 * past `maxKeys` the least recently counted key is forgotten, so a flood cannot grow it.
 */
export function memoryLimiter(options: LimiterOptions, maxKeys: number, clock: () => number): Limiter {
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

  return {
    async consume(key) {
      const res = add(key, 1);
      if (res.consumedPoints > options.points) throw res;
      return res;
    },
    async get(key) {
      const now = clock();
      const count = read(key, now);
      return count ? counterRes(count, now, options.points) : null;
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
