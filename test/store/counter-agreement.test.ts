/**
 * The stores count with their own algorithm (store/counter.ts and its Lua twin) so that counts
 * live on the injected clock. This holds it to rate-limiter-flexible's semantics: identical
 * consume/get/reward/delete/elapse sequences run against the library's limiters and ours, and
 * every result must agree (allowed, consumed, remaining, msBeforeNext).
 * - On a fake clock: RateLimiterMemory (the reference) against the memory store, the Redis store's
 *   limiter and the Redis hot path (loadRequest), exactly, windows and blocks running out included.
 * - On real time: RateLimiterRedis against the Redis store and its hot path, within a tolerance
 *   for the milliseconds between calls (no window runs out here: that needs no sleeping above).
 */
import t from 'tap';
import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { Redis } from 'ioredis';
import { createMemoryStore } from '../../src/store/memory.js';
import { connectRedis, createRedisStore, waitReady } from '../../src/store/redis.js';
import type { Limiter, LimiterOptions, Store } from '../../src/store/types.js';
import { validateConfig } from '../../src/config/validate.js';
import { startRedis } from '../fixtures/redis.js';

const redis = await startRedis();
t.teardown(() => redis.stop());

type Op = 'consume' | 'get' | 'reward' | 'delete' | { elapse: number };

/** What one step observed; null for a counter that is absent (or whose window is over). */
type Seen = { allowed?: boolean; consumed: number; remaining: number; ms: number } | null;

/** One limiter under test: each step of a sequence, on one key. */
interface Subject {
  readonly name: string;
  consume(): Promise<Seen>;
  get(): Promise<Seen>;
  reward(): Promise<void>;
  delete(): Promise<void>;
}

const seen = (res: RateLimiterRes | null, allowed?: boolean): Seen =>
  // The library's memory store drops a count by timer: until that timer fires (never, on a fake
  // clock), `get` returns it with msBeforeNext <= 0. Either way the window is over: absent.
  res === null || res.msBeforeNext <= 0 ? null : { ...(allowed === undefined ? {} : { allowed }), consumed: res.consumedPoints, remaining: res.remainingPoints, ms: res.msBeforeNext };

async function consumed(work: () => Promise<RateLimiterRes>): Promise<Seen> {
  try {
    return seen(await work(), true);
  } catch (err) {
    if (err instanceof RateLimiterRes) return seen(err, false);
    throw err;
  }
}

function ours(name: string, limiter: Limiter, key: string): Subject {
  return {
    name,
    consume: () => consumed(() => limiter.consume(key)),
    get: async () => seen(await limiter.get(key)),
    reward: () => limiter.reward(key),
    delete: () => limiter.delete(key),
  };
}

/** Our Redis counter driven through the hot-path script: consume and peek inside loadRequest. */
function hotPath(name: string, store: Store, limiter: Limiter, scratch: Limiter, key: string, now: () => number): Subject {
  const query = () => ({ principal: key, jti: null, grantId: null, sessionKey: null, now: now(), idleTimeoutMs: 1_000, maxLifetimeMs: 1_000 });
  return {
    name,
    async consume() {
      const load = await store.loadRequest(query(), { consume: { limiter, key }, peek: null });
      return seen(load.consumed.res, load.consumed.allowed);
    },
    // A read rides as the peeked counter of a request that consumes another one.
    async get() {
      return seen((await store.loadRequest(query(), { consume: { limiter: scratch, key }, peek: { limiter, key } })).peeked);
    },
    reward: () => limiter.reward(key),
    delete: () => limiter.delete(key),
  };
}

/** Runs the library's memory limiter with `Date.now` reading the fake clock, for its calls only. */
function library(limiter: RateLimiterMemory | RateLimiterRedis, key: string, fakeNow: (() => number) | null): Subject {
  const at = <T>(call: () => Promise<T>): Promise<T> => {
    if (!fakeNow) return call();
    const real = Date.now;
    Date.now = fakeNow;
    try {
      // RateLimiterMemory reads the clock synchronously, inside the call.
      return call();
    } finally {
      Date.now = real;
    }
  };
  return {
    name: 'rate-limiter-flexible',
    consume: () => consumed(() => at(() => limiter.consume(key))),
    get: async () => seen(await at(() => limiter.get(key))),
    reward: async () => void (await at(() => limiter.reward(key))),
    delete: async () => void (await at(() => limiter.delete(key))),
  };
}

const POLICIES: Record<string, LimiterOptions> = {
  'a window': { keyPrefix: 'w', points: 3, durationMs: 10_000, blockMs: 0 },
  'a window and a block': { keyPrefix: 'b', points: 3, durationMs: 10_000, blockMs: 30_000 },
  'one point and a block': { keyPrefix: 'o', points: 1, durationMs: 60_000, blockMs: 120_000 },
};

const SEQUENCES: Record<string, Op[]> = {
  'over the limit and a new window': ['get', 'consume', 'consume', 'get', 'consume', 'consume', 'consume', 'get', { elapse: 9_999 }, 'consume', 'get', { elapse: 1 }, 'get', 'consume', 'get', { elapse: 25_000 }, 'consume', { elapse: 5_000 }, 'get', 'consume'],
  'rewards give points back, and can open a window': ['reward', 'get', 'consume', 'consume', 'reward', 'get', 'consume', 'consume', 'consume', 'consume', 'reward', 'reward', 'get', 'consume', { elapse: 10_000 }, 'reward', 'get'],
  'delete forgets the count (and a block)': ['consume', 'consume', 'consume', 'consume', 'consume', 'get', 'delete', 'get', 'consume', 'get', 'delete', 'delete', 'consume'],
  'refused requests keep counting, the block starts once': ['consume', 'consume', 'consume', 'consume', { elapse: 1_000 }, 'consume', 'get', { elapse: 28_999 }, 'consume', 'get', { elapse: 2 }, 'get', 'consume', 'consume'],
};

function redisConfig() {
  const result = validateConfig({ store: { type: 'redis', url: redis.url, keyPrefix: `ca${randomBytes(3).toString('hex')}:` } });
  if (!result.ok) throw new Error('bad config');
  return result.config.store;
}

async function redisStore(clock: () => number): Promise<Store> {
  const config = redisConfig();
  const client = connectRedis(config);
  await waitReady(client, 5_000);
  return createRedisStore(client, { keyPrefix: config.keyPrefix, clock });
}

const withoutElapse = (ops: Op[]): Op[] => {
  const cut = ops.findIndex((op) => typeof op === 'object');
  return cut < 0 ? ops : ops.slice(0, cut);
};

/** Runs `ops` on every subject in lockstep; each result must match the reference's (`close` compares ms). */
async function agree(t: Test, reference: Subject, subjects: Subject[], ops: Op[], elapse: (ms: number) => void, msTolerance: number): Promise<void> {
  for (const [i, op] of ops.entries()) {
    if (typeof op === 'object') {
      elapse(op.elapse);
      continue;
    }
    const expected = await run(reference, op);
    for (const subject of subjects) {
      const actual = await run(subject, op);
      const label = `step ${i} (${op}): ${subject.name}`;
      if (expected === null || actual === null || msTolerance === 0) {
        t.same(actual, expected, label);
      } else {
        const { ms, ...rest } = actual;
        const { ms: expectedMs, ...expectedRest } = expected;
        t.same(rest, expectedRest, label);
        t.ok(Math.abs(ms - expectedMs) <= msTolerance, `${label}: msBeforeNext ${ms} within ${msTolerance} ms of ${expectedMs}`);
      }
    }
  }
}

async function run(subject: Subject, op: Exclude<Op, { elapse: number }>): Promise<Seen> {
  if (op === 'consume') return subject.consume();
  if (op === 'get') return subject.get();
  await subject[op]();
  // A reward or delete is observed by the next step.
  return null;
}

for (const [policyName, policy] of Object.entries(POLICIES)) {
  const libOptions = { points: policy.points, duration: policy.durationMs / 1000, blockDuration: (policy.blockMs ?? 0) / 1000 };

  t.test(`fake clock, ${policyName}: the library's memory limiter, the memory store, the Redis store and its hot path agree exactly`, async (t) => {
    for (const [sequenceName, ops] of Object.entries(SEQUENCES)) {
      await t.test(sequenceName, async (t) => {
        let now = Date.now();
        const clock = () => now;
        const key = `p${randomBytes(4).toString('hex')}`;
        const memory = createMemoryStore({ maxEntries: 1_000, clock });
        t.teardown(() => memory.close());
        const shared = await redisStore(clock);
        t.teardown(() => shared.close());
        const perPrincipal = { ...policy, perPrincipal: true };
        const subjects = [
          ours('memory store', memory.limiter(policy), key),
          ours('redis store', shared.limiter(policy), key),
          hotPath('redis hot path', shared, shared.limiter({ ...perPrincipal, keyPrefix: 'hot' }), shared.limiter({ ...perPrincipal, keyPrefix: 'scratch', points: 1e9 }), key, clock),
        ];
        await agree(t, library(new RateLimiterMemory(libOptions), key, clock), subjects, ops, (ms) => (now += ms), 0);
      });
    }
  });

  t.test(`real time, ${policyName}: RateLimiterRedis, the Redis store and its hot path agree`, async (t) => {
    const client = new Redis(redis.url);
    t.teardown(() => client.disconnect());
    for (const [sequenceName, ops] of Object.entries(SEQUENCES)) {
      await t.test(sequenceName, async (t) => {
        const key = `p${randomBytes(4).toString('hex')}`;
        const shared = await redisStore(Date.now);
        t.teardown(() => shared.close());
        const reference = library(new RateLimiterRedis({ storeClient: client, keyPrefix: `lib${randomBytes(3).toString('hex')}`, ...libOptions }), key, null);
        const perPrincipal = { ...policy, perPrincipal: true };
        const subjects = [
          ours('redis store', shared.limiter(policy), key),
          hotPath('redis hot path', shared, shared.limiter({ ...perPrincipal, keyPrefix: 'hot' }), shared.limiter({ ...perPrincipal, keyPrefix: 'scratch', points: 1e9 }), key, Date.now),
        ];
        await agree(t, reference, subjects, withoutElapse(ops), () => {}, 250);
      });
    }
  });
}
