import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Limiter, LimiterOptions } from './types.js';

/**
 * rate-limiter-flexible's memory limiter with a bound on its keys. Its own storage keeps every key
 * until the window ends, and keys come from the network (source addresses): without a bound a
 * flood of addresses would grow it freely. Past `maxKeys` the oldest key is forgotten.
 */
export function boundedMemoryLimiter(options: LimiterOptions, maxKeys: number): Limiter {
  const limiter = new RateLimiterMemory({ keyPrefix: options.keyPrefix, points: options.points, duration: options.durationMs / 1000, blockDuration: (options.blockMs ?? 0) / 1000 });
  // Keys in first-use order, with when they can be forgotten anyway.
  const keys = new Map<string, number>();
  const lifetime = Math.max(options.durationMs, options.blockMs ?? 0);

  function track(key: string): void {
    const now = Date.now();
    keys.delete(key);
    keys.set(key, now + lifetime);
    for (const [oldest, until] of keys) {
      if (keys.size <= maxKeys && until > now) break;
      keys.delete(oldest);
      void limiter.delete(oldest);
    }
  }

  return {
    consume(key) {
      track(key);
      return limiter.consume(key);
    },
    get: (key) => limiter.get(key),
    reward: async (key) => {
      await limiter.reward(key, 1);
    },
    keys: async () => {
      const now = Date.now();
      return [...keys].filter(([, until]) => until > now).map(([key]) => key);
    },
    delete: async (key) => {
      keys.delete(key);
      await limiter.delete(key);
    },
  };
}
