/**
 * Memory stays bounded: everything keyed by request data is flooded with far more distinct keys
 * than its bound, and what it retains is measured (heap after a forced GC) against a control that
 * keeps the same keys unbounded, so each check can tell a bound from a leak.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { createTokenSigner, createTokenVerifier } from '../../src/auth/access-token.js';
import { createClientRegistry } from '../../src/auth/clients.js';
import { createKeyRing } from '../../src/auth/key-ring.js';
import { createStreamGauge } from '../../src/session/streams.js';
import { createLimiters } from '../../src/store/limiters.js';
import { createMemoryStore, TtlMap } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const FLOOD = 200_000;
/** The limiter path is the slowest per key (address parsing, a timer per key): 100x its bound is enough. */
const LIMITER_FLOOD = 100_000;
const BOUND = 1_000;
const MB = 1024 * 1024;

/** Heap retained by what `build` returns (kept alive across the second measurement). */
async function retained<T>(build: () => Promise<T> | T): Promise<{ bytes: number; kept: T }> {
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = await build();
  gc();
  gc();
  return { bytes: process.memoryUsage().heapUsed - before, kept };
}

/** The address of flood entry i: 10.x.y.z, all distinct. */
const address = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

const limits = {
  client: { points: 600, durationMs: 60_000, blockMs: 0 },
  sessionCreate: { points: 10, durationMs: 60_000, blockMs: 0 },
  failedAttempts: { points: 5, durationMs: 60_000, blockMs: 300_000 },
  tokenEndpoint: { points: 30, durationMs: 60_000, blockMs: 0 },
  register: { points: 10, durationMs: 3_600_000, blockMs: 0 },
};

t.test('failed-attempts limiter (memory store): 100k source addresses, at most maxEntries kept', async (t) => {
  // Control: rate-limiter-flexible's own memory limiter keeps every key until its window ends
  // (a quarter of the flood is enough to price a key; the comparison below scales it up).
  const control = await retained(async () => {
    const limiter = new RateLimiterMemory({ points: 4, duration: 60, blockDuration: 300 });
    for (let i = 0; i < LIMITER_FLOOD / 4; i++) await limiter.consume(address(i)).catch(() => {});
    return limiter;
  });
  const store = createMemoryStore({ maxEntries: BOUND, clock: Date.now });
  t.teardown(() => store.close());
  const limiters = createLimiters(store, limits);
  for (let i = 0; i < limits.failedAttempts.points; i++) await limiters.failedAttempt('192.0.2.1');
  t.ok((await limiters.blockedFor('192.0.2.1')) > 0, 'an address over its budget is blocked');

  const bounded = await retained(async () => {
    for (let i = 0; i < LIMITER_FLOOD; i++) await limiters.failedAttempt(address(i));
    return limiters;
  });
  t.ok(control.bytes > 3 * MB, `control: the unbounded limiter retains ${(control.bytes / MB).toFixed(1)} MB for ${LIMITER_FLOOD / 4} keys`);
  // Against ~4x the control for the whole flood: a leak would be 100+ MB, the bound is well under 1.
  t.ok(bounded.bytes < control.bytes / 2, `the bounded one retains ${(bounded.bytes / MB).toFixed(2)} MB for ${LIMITER_FLOOD} keys (unbounded: ~${((control.bytes * 4) / MB).toFixed(0)} MB)`);
  for (let i = 0; i < limits.failedAttempts.points - 1; i++) await limiters.failedAttempt(address(LIMITER_FLOOD - 1));
  t.ok((await limiters.blockedFor(address(LIMITER_FLOOD - 1))) > 0, 'recent addresses are still counted (the newest key survived)');
  t.equal(await limiters.blockedFor(address(0)), 0, 'the oldest flood keys were dropped to stay within the bound');
  // The price of the bound (see docs/operations.md): a flood of more than maxEntries distinct
  // addresses within the block window also drops an older block.
  t.equal(await limiters.blockedFor('192.0.2.1'), 0, 'an older block is forgotten under such a flood');
});

t.test('memory store: 200k traffic-derived keys, at most maxEntries kept', async (t) => {
  const control = await retained(() => {
    const map = new TtlMap(Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < FLOOD; i++) map.set(`rt:{p${i % 100}}:jti-${i}`, '1', Number.MAX_SAFE_INTEGER);
    return map;
  });
  const direct = new TtlMap(BOUND);
  for (let i = 0; i < FLOOD; i++) direct.set(`k${i}`, 'v', Number.MAX_SAFE_INTEGER);
  t.equal(direct.size, BOUND, 'TtlMap never holds more than its bound');

  const now = 1_700_000_000_000;
  const store = createMemoryStore({ maxEntries: BOUND, clock: () => now });
  t.teardown(() => store.close());
  const bounded = await retained(async () => {
    // Refresh tokens: traffic, bounded oldest-out (revocations are never dropped: see below).
    for (let i = 0; i < FLOOD; i++) await store.putRefreshToken(`p${i % 100}`, `h${i}`, { grantId: 'g', issuedAt: now, scope: 'mcp', audience: 'a', expiresAt: now + 3_600_000 }, now);
    return store;
  });
  t.ok(control.bytes > 10 * MB, `control: an unbounded map retains ${(control.bytes / MB).toFixed(1)} MB`);
  t.ok(bounded.bytes < control.bytes / 8, `the store retains ${(bounded.bytes / MB).toFixed(2)} MB`);
  const use = (i: number) => store.useRefreshToken(`p${i % 100}`, `h${i}`, now);
  t.equal((await use(FLOOD - 1)).status, 'ok', 'the newest entries are kept');
  t.equal((await use(FLOOD - BOUND - 1)).status, 'unknown', 'everything older than the last maxEntries is gone');
});

t.test('verified-token cache: bounded by cacheSize, oldest out first; failures are never cached', async (t) => {
  const store = createMemoryStore({ maxEntries: 10_000, clock: Date.now });
  t.teardown(() => store.close());
  const ring = await createKeyRing({ store, algorithm: 'HS256', configuredSecret: 'bounds-test-secret-0123456789abcdef', clock: Date.now, refreshIntervalMs: 0 });
  let lookups = 0;
  const counted = { ...ring, verificationKey: (kid: string) => ((lookups += 1), ring.verificationKey(kid)) };
  const site = { issuer: 'http://127.0.0.1:1', audience: 'http://127.0.0.1:1/mcp' };
  const sign = createTokenSigner({ keyRing: ring, ...site, accessTtlMs: 3_600_000, clock: Date.now });
  const cacheSize = 500;
  const verify = createTokenVerifier({ keyRing: counted, ...site, clockSkewMs: 0, clock: Date.now, external: null, cacheSize });
  const tokens: string[] = [];
  for (let i = 0; i < cacheSize + 50; i++) tokens.push((await sign({ clientId: 'alice', scope: 'mcp', grantId: `g${i}` })).token);
  for (const token of tokens) await verify(token);
  t.equal(lookups, cacheSize + 50, 'each new token was verified once');

  const hit = async (token: string): Promise<boolean> => {
    const before = lookups;
    await verify(token);
    return lookups === before;
  };
  t.ok(await hit(tokens.at(-1) ?? ''), 'the newest token is served from the cache');
  t.ok(await hit(tokens[50] ?? ''), `the oldest of the last ${cacheSize} is still cached`);
  const valid = tokens.at(-2) ?? '';
  // Bad-signature tokens for a known kid go all the way to a signature check: none may take a slot.
  const forged = (i: number) => `${valid.slice(0, valid.lastIndexOf('.'))}.${Buffer.from(`forged-${i}`).toString('base64url')}`;
  let rejected = 0;
  for (let i = 0; i < cacheSize * 2; i++) await Promise.resolve().then(() => verify(forged(i))).catch((err: { code?: string }) => (rejected += err.code === 'TOKEN_INVALID' ? 1 : 0));
  t.equal(rejected, cacheSize * 2, 'every forged token was rejected');
  t.ok(await hit(valid), 'a flood of rejected tokens evicted nothing');
  t.notOk(await hit(tokens[49] ?? ''), 'the token just past the bound had been evicted (so the cache holds at most cacheSize)');
});

t.test('client cache: unknown ids do not grow it past its bound', async (t) => {
  const base = createMemoryStore({ maxEntries: 10_000, clock: Date.now });
  t.teardown(() => base.close());
  let reads = 0;
  const store: Store = { ...base, getClient: (id) => ((reads += 1), base.getClient(id)) };
  await base.putClient({ id: 'stored-1', secretHash: 'x', scopes: ['mcp'], maxSessions: null, rateLimit: null, createdAt: 0 });
  const registry = await createClientRegistry([], store, Date.now);
  await registry.get('stored-1');
  await registry.get('stored-1');
  t.equal(reads, 1, 'a store-managed client is cached');
  const ids = 60_000;
  const unknown = (i: number): string => `unknown-${i}-${'x'.repeat(40)}`;
  // Control: what the cache would hold if it kept every id it was asked about.
  const control = await retained(() => new Map(Array.from({ length: ids }, (_, i) => [unknown(i), { client: null, hash: null, at: Date.now() }] as const)));
  const flood = await retained(async () => {
    for (let i = 0; i < ids; i++) await registry.get(unknown(i));
    return registry;
  });
  t.ok(flood.bytes < control.bytes / 3, `${ids} unknown ids retain ${(flood.bytes / MB).toFixed(2)} MB; keeping them all would take ${(control.bytes / MB).toFixed(2)} MB`);
  const before = reads;
  await registry.get('stored-1');
  t.equal(reads, before + 1, 'the cache was reset at its bound (the stored client is read again)');
});

t.test('stream gauge: 200k principals opening and closing streams leave nothing behind', async (t) => {
  const control = await retained(() => new Map(Array.from({ length: FLOOD }, (_, i) => [`principal-${i}`, 1] as const)));
  const gauge = createStreamGauge(2);
  const after = await retained(() => {
    for (let i = 0; i < FLOOD; i++) {
      const res = new EventEmitter();
      gauge.admit(`principal-${i}`, res as unknown as ServerResponse);
      res.emit('close');
    }
    return gauge;
  });
  t.equal(gauge.total(), 0, 'every stream was counted out');
  t.ok(control.bytes > 8 * MB, `control: keeping the principals would retain ${(control.bytes / MB).toFixed(1)} MB`);
  t.ok(after.bytes < control.bytes / 10, `the gauge retains ${(after.bytes / MB).toFixed(2)} MB`);
  const open = new EventEmitter() as unknown as ServerResponse;
  t.ok(gauge.admit('p', open) && gauge.admit('p', open), 'the per-principal cap still admits up to 2');
  t.notOk(gauge.admit('p', open), 'and refuses the third');
});

t.test('memory store: a revocation is never dropped to make room; a full table refuses new ones (fail closed)', async (t) => {
  let now = 1_000_000;
  const store = createMemoryStore({ maxEntries: 1000, clock: () => now });
  t.teardown(() => store.close());
  for (let i = 0; i < 1000; i++) await store.revokeToken('victim', `jti-${i}`, now + 3_600_000, now);
  await t.rejects(store.revokeGrant('victim', 'grant-x', 3_600_000, now), { code: 'STORE_UNAVAILABLE' }, 'the 1001st revocation is refused, loudly');
  const state = (jti: string) => store.loadRequestState({ principal: 'victim', jti, grantId: null, sessionKey: null, now, idleTimeoutMs: 1, maxLifetimeMs: 1 });
  t.equal((await state('jti-0')).revoked, true, 'the oldest revocation still holds (it used to be evicted first)');
  // Traffic (refresh tokens, sessions) lives apart and cannot push one out either.
  for (let i = 0; i < 2_000; i++) await store.putRefreshToken('attacker', `h${i}`, { grantId: 'g', issuedAt: now, scope: 'mcp', audience: 'a', expiresAt: now + 60_000 }, now);
  t.equal((await state('jti-0')).revoked, true);
  now += 3_600_001;
  await store.revokeGrant('victim', 'grant-y', 60_000, now);
  t.pass('once the old ones expired, new revocations are recorded again');
});
