import type { Config } from '../config/schema.js';
import { createMemoryStore } from './memory.js';
import { connectRedis, createRedisStore, waitReady } from './redis.js';
import type { Store } from './types.js';

/** Builds the configured store; for Redis, waits until it answers (startup fails clearly if not). */
export async function createStore(config: Config['store'], deps: { clock: () => number; onError?: (err: unknown) => void }): Promise<Store> {
  switch (config.type) {
    case 'memory':
      return createMemoryStore({ maxEntries: config.maxEntries, clock: deps.clock });
    case 'redis': {
      const client = connectRedis(config);
      // Connection errors are retried in the background; each one is surfaced as a store error.
      client.on('error', (err: unknown) => deps.onError?.(err));
      try {
        await waitReady(client, 10_000);
      } catch (err) {
        client.disconnect();
        throw err;
      }
      return createRedisStore(client, { keyPrefix: config.keyPrefix, clock: deps.clock, onError: deps.onError, clientCache: config.clientCache });
    }
    default: {
      const never: never = config.type;
      throw new Error(`unknown store ${String(never)}`);
    }
  }
}
