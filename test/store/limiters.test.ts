/**
 * The limiters module on both stores: each limit at its exact threshold, the failed-attempt block
 * (when it starts, how long it holds, which addresses share it) and failing closed.
 */
import t from 'tap';
import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { validateConfig } from '../../src/config/validate.js';
import type { Config } from '../../src/config/schema.js';
import { WardenError } from '../../src/errors.js';
import { createLimiters } from '../../src/store/limiters.js';
import type { Limiters, LimitResult } from '../../src/store/limiters.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { connectRedis, createRedisStore, waitReady } from '../../src/store/redis.js';
import type { Store } from '../../src/store/types.js';
import { Redis } from 'ioredis';
import { startRedis } from '../fixtures/redis.js';

const redis = await startRedis();
t.teardown(() => redis.stop());

// Both stores count on this clock (a count ends on it; Redis only collects the key a grace
// later): a block runs out by moving it, not by sleeping. It starts at Redis's time and only moves ahead.
let now = Date.now();
const clock = (): number => now;

function config(raw: Record<string, unknown>): Config {
  const result = validateConfig(raw);
  if (!result.ok) throw new Error(`bad config: ${JSON.stringify(result.problems)}`);
  return result.config;
}

async function redisStore(url: string, onError?: (err: unknown) => void): Promise<Store> {
  const store = config({ store: { type: 'redis', url, keyPrefix: `lt${randomBytes(3).toString('hex')}:` } }).store;
  const client = connectRedis(store);
  await waitReady(client, 5_000);
  return createRedisStore(client, { keyPrefix: store.keyPrefix, clock, ...(onError ? { onError } : {}) });
}

const STORES: Record<string, () => Promise<Store>> = {
  memory: async () => createMemoryStore({ maxEntries: 10_000, clock }),
  redis: () => redisStore(redis.url),
};

/** One MCP request's limiter work (no token state of interest): the client's consume, optionally the address check. */
function forRequest(limiters: Limiters, principal: string, override: { points: number; durationMs: number } | null = null, address: string | null = null) {
  return limiters.forRequest({ principal, jti: 'j', grantId: 'g', sessionKey: null, now: clock(), idleTimeoutMs: 1_000, maxLifetimeMs: 1_000 }, override, address);
}
const client = async (limiters: Limiters, principal: string, override: { points: number; durationMs: number } | null = null) => (await forRequest(limiters, principal, override)).limit;

const allowed = (results: LimitResult[]) => results.map((r) => r.allowed);
const remaining = (results: LimitResult[]) => results.map((r) => r.limit.remaining);
async function times(n: number, work: () => Promise<LimitResult>): Promise<LimitResult[]> {
  const out: LimitResult[] = [];
  for (let i = 0; i < n; i++) out.push(await work());
  return out;
}

for (const [kind, makeStore] of Object.entries(STORES)) {
  t.test(`${kind} store`, async (t) => {
    const limitersFor = async (t: Test, rateLimits: Record<string, unknown>) => {
      const store = await makeStore();
      t.teardown(() => store.close());
      return createLimiters(store, config({ rateLimits }).rateLimits);
    };

    t.test('client: N allowed counting down, N+1 refused; principals and overrides count apart', async (t) => {
      const limiters = await limitersFor(t, { client: { points: 3, duration: '1m' } });
      const results = await times(5, () => client(limiters, 'alice'));
      t.same(allowed(results), [true, true, true, false, false]);
      t.same(remaining(results), [2, 1, 0, 0, 0]);
      for (const r of results) {
        t.same([r.limit.points, r.limit.windowSeconds], [3, 60]);
        t.ok(r.limit.resetMs > 0 && r.limit.resetMs <= 60_000, `resetMs ${r.limit.resetMs}`);
      }
      t.equal((await client(limiters, 'bob')).limit.remaining, 2, 'another principal has its own counter');
      const override = await times(3, () => client(limiters, 'carol', { points: 2, durationMs: 10_000 }));
      t.same(allowed(override), [true, true, false], 'an override has its own points');
      t.same(override[0]?.limit.windowSeconds, 10);
      t.equal((await client(limiters, 'carol')).limit.remaining, 2, 'and its own counter');
    });

    t.test('forRequest reads the address block with the state, and only when asked', async (t) => {
      const limiters = await limitersFor(t, { failedAttempts: { points: 2, duration: '1m', block: '2m' } });
      t.equal((await forRequest(limiters, 'erin', null, '192.0.2.40')).blockedMs, 0, 'no failures: not blocked');
      await limiters.failedAttempt('192.0.2.40');
      t.equal((await forRequest(limiters, 'erin', null, '192.0.2.40')).blockedMs, 0, 'N-1 failures: not blocked');
      await limiters.failedAttempt('192.0.2.40');
      const blocked = await forRequest(limiters, 'erin', null, '192.0.2.40');
      t.ok(blocked.blockedMs > 115_000 && blocked.blockedMs <= 120_000, `blocked for the block duration (${blocked.blockedMs} ms)`);
      t.equal(blocked.state.revoked, false, 'the state came back with it');
      t.equal((await forRequest(limiters, 'erin', null, null)).blockedMs, 0, 'not asked: not read');
      t.equal((await forRequest(limiters, 'erin', null, '192.0.2.41')).blockedMs, 0, 'another address is not blocked');
    });

    t.test('sessionCreate: N allowed, N+1 refused', async (t) => {
      const limiters = await limitersFor(t, { sessionCreate: { points: 2, duration: '30s' } });
      const results = await times(3, () => limiters.sessionCreate('alice'));
      t.same(allowed(results), [true, true, false]);
      t.same(results[2]?.limit, { points: 2, windowSeconds: 30, remaining: 0, resetMs: results[2]?.limit.resetMs });
      t.ok(await limiters.sessionCreate('bob').then((r) => r.allowed));
    });

    t.test('tokenEndpoint per address, tokenClient per client, counted apart', async (t) => {
      const limiters = await limitersFor(t, { tokenEndpoint: { points: 2, duration: '1m' } });
      t.same(allowed([await limiters.tokenEndpoint('10.0.0.9'), await limiters.tokenEndpoint('10.0.0.9'), await limiters.tokenEndpoint('10.0.0.9')]), [true, true, false], 'per address');
      t.ok((await limiters.tokenEndpoint('10.0.0.10')).allowed, 'another address has its own budget');
      t.same(allowed([await limiters.tokenClient('a'), await limiters.tokenClient('a'), await limiters.tokenClient('a')]), [true, true, false], 'per client');
      t.same([(await limiters.tokenClient('b')).limit.remaining], [1], 'another client has its own budget');
    });

    t.test('failedAttempt: the Nth failure starts the block, once; blockedFor reports it', async (t) => {
      const limiters = await limitersFor(t, { failedAttempts: { points: 3, duration: '1m', block: '2m' } });
      t.same(limiters.failedAttemptsPolicy, { points: 3, windowSeconds: 60 });
      t.equal(await limiters.blockedFor('192.0.2.1'), 0);
      const starts = [await limiters.failedAttempt('192.0.2.1'), await limiters.failedAttempt('192.0.2.1')];
      t.same(starts, [false, false]);
      t.equal(await limiters.blockedFor('192.0.2.1'), 0, 'N-1 failures do not block');
      t.equal(await limiters.failedAttempt('192.0.2.1'), true, 'the Nth failure starts the block');
      const ms = await limiters.blockedFor('192.0.2.1');
      t.ok(ms > 115_000 && ms <= 120_000, `blocked for the block duration (${ms} ms), not the window`);
      t.equal(await limiters.failedAttempt('192.0.2.1'), false, 'a late failure does not start it again');
      t.equal(await limiters.blockedFor('192.0.2.2'), 0, 'other addresses are not blocked');
    });

    t.test('failedAttempt with points 1: the first failure blocks', async (t) => {
      const limiters = await limitersFor(t, { failedAttempts: { points: 1, duration: '1m', block: '1m' } });
      t.equal(await limiters.failedAttempt('192.0.2.7'), true);
      t.ok((await limiters.blockedFor('192.0.2.7')) > 0);
    });

    t.test('addresses: an IPv6 /64 is one address; IPv4-mapped IPv6 is the IPv4 address', async (t) => {
      const limiters = await limitersFor(t, { failedAttempts: { points: 2, duration: '1m', block: '1m' } });
      await limiters.failedAttempt('2001:db8:1:2::1');
      t.equal(await limiters.failedAttempt('2001:db8:1:2:ffff::9'), true, 'a second address of the /64 completes the budget');
      t.ok((await limiters.blockedFor('2001:db8:1:2::42')) > 0, 'the whole /64 is blocked');
      t.equal(await limiters.blockedFor('2001:db8:1:3::1'), 0, 'the next /64 is not');
      await limiters.failedAttempt('::ffff:198.51.100.5');
      await limiters.failedAttempt('198.51.100.5');
      t.ok((await limiters.blockedFor('198.51.100.5')) > 0);
      t.equal(await limiters.blockedFor('198.51.100.6'), 0, 'IPv4 is counted per address');
    });

    t.test('a short block expires, and the next block starts afresh', async (t) => {
      const limiters = await limitersFor(t, { failedAttempts: { points: 1, duration: '1m', block: 1000 } });
      t.equal(await limiters.failedAttempt('203.0.113.3'), true);
      t.equal(await limiters.blockedFor('203.0.113.3'), 1_000, 'blocked for the block duration');
      now += 999;
      t.equal(await limiters.blockedFor('203.0.113.3'), 1, 'blocked until its last millisecond');
      now += 1;
      t.equal(await limiters.blockedFor('203.0.113.3'), 0, 'the block has expired');
      t.equal(await limiters.failedAttempt('203.0.113.3'), true, 'a new block starts (and is reported) again');
    });
  });
}

t.test('redis: one MCP request is one command on one node (state, client limit and block check in one script)', async (t) => {
  const store = await redisStore(redis.url);
  t.teardown(() => store.close());
  const limiters = createLimiters(store, config({ rateLimits: { client: { points: 2, duration: '1m' }, failedAttempts: { points: 1, duration: '1m', block: '1m' } } }).rateLimits);
  await forRequest(limiters, 'grace', null, '192.0.2.60'); // loads the script (EVALSHA, then EVAL on NOSCRIPT)
  t.equal(await limiters.failedAttempt('192.0.2.60'), true, 'the address is now blocked');
  const monitor = new Redis(redis.url);
  t.teardown(() => monitor.disconnect());
  const seen: string[] = [];
  const feed = await monitor.monitor();
  // Commands a client sent, not the ones a script ran (those come from "lua").
  feed.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') seen.push(String(args[0]).toLowerCase());
  });
  const second = await forRequest(limiters, 'grace', null, '192.0.2.60');
  const third = await forRequest(limiters, 'grace', null, '192.0.2.60');
  await new Promise((resolve) => setTimeout(resolve, 100));
  feed.disconnect();
  t.same(seen, ['evalsha', 'evalsha'], 'one script per request');
  t.same([second.limit.allowed, second.limit.limit.remaining], [true, 0]);
  t.equal(third.limit.allowed, false, 'the third request is over the client limit');
  for (const r of [second, third]) t.ok(r.blockedMs > 55_000, `and the address is blocked (${r.blockedMs} ms)`);
});

t.test('a store failure is STORE_UNAVAILABLE for every limiter, and is reported', async (t) => {
  const memory = createMemoryStore({ maxEntries: 100, clock });
  t.teardown(() => memory.close());
  const boom = () => Promise.reject(new Error('store down'));
  const broken: Store = { ...memory, limiter: () => ({ consume: boom, get: boom, keys: boom, delete: boom, reward: boom }) };
  const errors: unknown[] = [];
  const limiters = createLimiters(broken, config({}).rateLimits, { onStoreError: (err) => errors.push(err) });
  const calls: [string, () => Promise<unknown>][] = [
    ['client', () => client(limiters, 'alice')],
    ['override', () => client(limiters, 'alice', { points: 5, durationMs: 1_000 })],
    ['sessionCreate', () => limiters.sessionCreate('alice')],
    ['tokenEndpoint', () => limiters.tokenEndpoint('192.0.2.1')],
    ['tokenClient', () => limiters.tokenClient('alice')],
    ['blockedFor', () => limiters.blockedFor('192.0.2.1')],
    ['failedAttempt', () => limiters.failedAttempt('192.0.2.1')],
  ];
  for (const [name, call] of calls) {
    const err = await call().then(() => null, (e: unknown) => e);
    t.ok(err instanceof WardenError, `${name} rejects with a refusal`);
    t.match(err, { code: 'STORE_UNAVAILABLE', detail: { reason: 'store', retryAfterMs: 2_000 } }, name);
  }
  t.equal(errors.length, calls.length, 'each failure reported once');
  t.ok(errors.every((e) => e instanceof Error && e.message === 'store down'));
});

t.test('a dead Redis: every limiter call fails fast', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.stop());
  let reported = 0;
  // The MCP request's limit rides in the store's own script, so the store reports that failure.
  const store = await redisStore(own.url, () => reported++);
  t.teardown(() => store.close());
  const limiters = createLimiters(store, config({}).rateLimits, { onStoreError: () => reported++ });
  t.ok((await client(limiters, 'alice')).allowed, 'works while Redis is up');
  await own.stop();
  const calls: [string, () => Promise<unknown>][] = [
    ['blockedFor', () => limiters.blockedFor('192.0.2.1')],
    ['client', () => client(limiters, 'alice')],
    ['failedAttempt', () => limiters.failedAttempt('192.0.2.1')],
  ];
  for (const [name, call] of calls) {
    const started = performance.now();
    await t.rejects(call(), { code: 'STORE_UNAVAILABLE' }, name);
    const ms = performance.now() - started;
    t.ok(ms < 500, `${name} failed in ${ms.toFixed(1)} ms (the command timeout is 1 s)`);
  }
  t.equal(reported, 3);
});
