import t from 'tap';
import { createMemoryStore, TtlMap } from '../../src/store/memory.js';
import { storeContract } from '../fixtures/store-contract.js';

t.test('memory store contract', async (t) => {
  storeContract(t, async () => {
    let now = 1_700_000_000_000;
    const store = createMemoryStore({ maxEntries: 10_000, clock: () => now });
    return {
      store,
      now: () => now,
      elapse: async (ms) => (now += ms),
      close: () => store.close(),
    };
  });
});

t.test('the hot path answers synchronously, with the counters as the async path counts them', async (t) => {
  let now = 1_000_000;
  const store = createMemoryStore({ maxEntries: 100, clock: () => now });
  const consume = store.limiter({ keyPrefix: 'client', points: 2, durationMs: 60_000, perPrincipal: true });
  const failed = store.limiter({ keyPrefix: 'failed', points: 5, durationMs: 60_000 });
  await failed.consume('10.0.0.1');
  const query = { principal: 'alice', jti: 'j', grantId: 'g', sessionKey: null, now, idleTimeoutMs: 60_000, maxLifetimeMs: 600_000 };
  const counters = { consume: { limiter: consume, key: 'alice' }, peek: { limiter: failed, key: '10.0.0.1' } };
  const first = store.loadRequest(query, counters);
  t.notOk(first instanceof Promise, 'no promise: nothing to wait for');
  const [a, b, c] = [first, store.loadRequest(query, counters), store.loadRequest(query, counters)] as const;
  t.same([a, b, c].map((r) => !(r instanceof Promise) && r.consumed.allowed), [true, true, false], 'two points, then refused');
  t.equal(!(a instanceof Promise) && a.peeked?.consumedPoints, 1, 'the address counter is read, not consumed');
  t.equal((await consume.get('alice'))?.consumedPoints, 3, 'the async view counts what the sync path took');
  now += 60_001;
  const later = store.loadRequest({ ...query, now }, counters);
  t.equal(!(later instanceof Promise) && later.consumed.allowed, true, 'a new window');
});

t.test('the memory store stays bounded under a flood', async (t) => {
  const map = new TtlMap(1_000);
  for (let i = 0; i < 50_000; i++) map.set(`k${i}`, 'v', Number.MAX_SAFE_INTEGER);
  t.equal(map.size, 1_000, 'never more than maxEntries');
  t.equal(map.get('k0', 0), undefined, 'the oldest went first');
  t.equal(map.get('k49999', 0), 'v');

  const store = createMemoryStore({ maxEntries: 1_000, clock: () => 0 });
  t.teardown(() => store.close());
  let refused = 0;
  for (let i = 0; i < 5_000; i++) {
    await store.revokeToken(`p${i}`, `j${i}`, 10_000, 0).catch(() => refused++);
  }
  const first = await store.loadRequestState({ principal: 'p0', jti: 'j0', grantId: null, sessionKey: null, now: 0, idleTimeoutMs: 1, maxLifetimeMs: 1 });
  t.equal(first.revoked, true, 'a revocation is never evicted to make room');
  t.equal(refused, 4_000, 'past the bound, new revocations are refused instead (503 to the caller)');
});

t.test('expired entries are swept', async (t) => {
  const map = new TtlMap(100);
  map.set('a', '1', 10);
  map.set('b', '1', 100);
  map.sweep(50);
  t.equal(map.size, 1);
  t.equal(map.get('b', 99), '1');
  t.equal(map.get('b', 100), undefined, 'expiry is exclusive');
});

t.test('traffic never pushes a revocation out of the bound', async (t) => {
  const store = createMemoryStore({ maxEntries: 1_000, clock: () => 0 });
  t.teardown(() => store.close());
  await store.revokeToken('victim', 'stolen-jti', 60_000, 0);
  await store.revokeGrant('victim', 'stolen-grant', 60_000, 0);
  for (let i = 0; i < 5_000; i++) {
    await store.putRefreshToken('attacker', `h${i}`, { grantId: 'g', issuedAt: 0, scope: 'mcp', audience: 'a', expiresAt: 60_000 }, 0);
    await store.createSession({ key: `k${i}`, principal: `p${i}`, grantId: 'g', upstream: 0, upstreamSessionId: 'u', fingerprint: '', createdAt: 0, owner: null }, { maxConcurrent: 5, onLimit: 'reject', now: 0, idleTimeoutMs: 60_000, maxLifetimeMs: 60_000 });
  }
  const state = (jti: string | null, grantId: string | null) => store.loadRequestState({ principal: 'victim', jti, grantId, sessionKey: null, now: 1, idleTimeoutMs: 1, maxLifetimeMs: 1 });
  t.equal((await state('stolen-jti', null)).revoked, true, 'the revoked token stays revoked');
  t.equal((await state(null, 'stolen-grant')).revoked, true, 'the revoked grant stays revoked');
});
