import t from 'tap';
import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { connectRedis, createRedisStore, waitReady } from '../../src/store/redis.js';
import { validateConfig } from '../../src/config/validate.js';
import { storeContract } from '../fixtures/store-contract.js';
import type { Store } from '../../src/store/types.js';
import { startRedis } from '../fixtures/redis.js';

const redis = await startRedis();
t.teardown(() => redis.stop());

function storeConfig() {
  const result = validateConfig({ store: { type: 'redis', url: redis.url, keyPrefix: `t${randomBytes(3).toString('hex')}:` } });
  if (!result.ok) throw new Error('bad config');
  return result.config.store;
}

t.test('redis store contract', async (t) => {
  storeContract(t, async () => {
    const config = storeConfig();
    const client = connectRedis(config);
    await waitReady(client, 5_000);
    // Records end on this clock; Redis only collects their keys a grace later, by its own clock.
    // Keys carry the end as their expiry, so the fake clock starts at Redis's time and only moves ahead.
    let now = Date.now();
    const store = createRedisStore(client, { keyPrefix: config.keyPrefix, clock: () => now });
    return { store, now: () => now, elapse: async (ms) => (now += ms), close: () => store.close() };
  });
});

/** A store on the shared redis-server under a fresh prefix, and a plain client beside it; both closed with `t`. */
async function openStore(t: Test) {
  const config = storeConfig();
  const client = connectRedis(config);
  await waitReady(client, 5_000);
  const store = createRedisStore(client, { keyPrefix: config.keyPrefix, clock: Date.now });
  t.teardown(() => store.close());
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  return { store, raw, keyPrefix: config.keyPrefix };
}

/** Session `k1` of alice, created now. */
function createAliceSession(store: Store, now: number) {
  return store.createSession({ key: 'k1', principal: 'alice', grantId: 'g', upstream: 0, upstreamSessionId: 'u', fingerprint: '', createdAt: now, owner: null }, { maxConcurrent: 5, onLimit: 'reject', now, idleTimeoutMs: 60_000, maxLifetimeMs: 120_000 });
}

t.test('every traffic key carries a TTL and the {principal} hash tag', async (t) => {
  const { store, raw, keyPrefix } = await openStore(t);
  const now = Date.now();
  await createAliceSession(store, now);
  await store.revokeToken('alice', 'j', now + 60_000, now);
  await store.revokeGrant('alice', 'g2', 60_000, now);
  await store.revokePrincipal('bob', now, 60_000);
  await store.putRefreshToken('alice', 'h', { grantId: 'g', issuedAt: now, scope: 'mcp', audience: 'a', expiresAt: now + 60_000 }, now);
  const keys = await raw.keys(`${keyPrefix}*`);
  t.ok(keys.length >= 5);
  for (const key of keys) {
    t.match(key, /^t[0-9a-f]{6}:\{(alice|bob)\}:/, `${key} is tagged`);
    t.ok((await raw.pttl(key)) > 0, `${key} expires`);
  }
});

t.test('an unreadable session record is no session, and using it does not keep it alive', async (t) => {
  const { store, raw, keyPrefix } = await openStore(t);
  const now = Date.now();
  await createAliceSession(store, now);
  const [key] = await raw.keys(`${keyPrefix}{alice}:s:*`);
  if (!key) throw new Error('no session key');
  await raw.set(key, 'not a record', 'PX', 5_000);
  const state = await store.loadRequestState({ principal: 'alice', jti: 'j', grantId: 'g', sessionKey: 'k1', now, idleTimeoutMs: 60_000, maxLifetimeMs: 120_000 });
  t.equal(state.session, null, 'no session');
  t.equal(await raw.exists(key), 0, 'removed rather than given a fresh idle expiry');
});

t.test('a dead Redis fails fast with STORE_UNAVAILABLE, and the store recovers by itself', async (t) => {
  const own = await startRedis();
  t.teardown(() => own.stop());
  const result = validateConfig({ store: { type: 'redis', url: own.url } });
  if (!result.ok) throw new Error('bad config');
  const client = connectRedis(result.config.store);
  client.on('error', () => {});
  await waitReady(client, 5_000);
  const store = createRedisStore(client, { keyPrefix: 'x:', clock: Date.now });
  t.teardown(() => store.close());
  await store.ping();
  await own.stop();
  const started = Date.now();
  await t.rejects(store.loadRequestState({ principal: 'a', jti: null, grantId: null, sessionKey: null, now: started, idleTimeoutMs: 1, maxLifetimeMs: 1 }), { code: 'STORE_UNAVAILABLE' });
  t.ok(Date.now() - started < 1_500, `failed within ${Date.now() - started} ms`);
  await own.start();
  await waitReady(client, 10_000);
  await store.ping();
  t.pass('service resumed without a new client');
});
