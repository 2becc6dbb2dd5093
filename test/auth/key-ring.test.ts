/**
 * The key ring over a shared store: the configured secret's key, generation once, rotation, and
 * how a replica finds a key another one made (reload on an unknown kid, rate-limited per miss).
 */
import t from 'tap';
import { createKeyRing } from '../../src/auth/key-ring.js';
import type { KeyRingOptions } from '../../src/auth/key-ring.js';
import { createMemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';

function harness() {
  let now = 1_700_000_000_000;
  const inner = createMemoryStore({ maxEntries: 1000, clock: () => now });
  let loads = 0;
  // Counts key loads: every reload of the ring is one getKeys.
  const store: Store = { ...inner, getKeys: async () => (loads++, inner.getKeys()) };
  const ring = (extra: Partial<KeyRingOptions> = {}) =>
    createKeyRing({ store, algorithm: 'HS256', configuredSecret: null, clock: () => now, refreshIntervalMs: 0, ...extra });
  return { store, ring, loads: () => loads, advance: (ms: number) => void (now += ms) };
}

t.test('a configured secret is one key with a stable kid that does not reveal it', async (t) => {
  const { ring } = harness();
  const secret = 'configured-signing-secret-0123456789';
  const a = await ring({ configuredSecret: secret });
  const b = await ring({ configuredSecret: secret });
  t.equal(a.signingKey().kid, b.signingKey().kid);
  t.match(a.signingKey().kid, /^cfg-[A-Za-z0-9_-]{12}$/);
  t.notMatch(a.signingKey().kid, /configured/);
  t.same(a.jwks(), { keys: [] }, 'HS256 publishes nothing');
  const other = await ring({ configuredSecret: 'another-signing-secret-0123456789ab' });
  t.not(other.signingKey().kid, a.signingKey().kid);
});

t.test('without a secret the first ring generates the key and the next one loads it', async (t) => {
  const { ring, store } = harness();
  const generated: string[] = [];
  const a = await ring({ onGenerated: (kid) => generated.push(kid) });
  const b = await ring({ onGenerated: (kid) => generated.push(kid) });
  t.equal(generated.length, 1, 'generated once');
  t.equal(a.signingKey().kid, b.signingKey().kid);
  t.equal((await store.getKeys()).length, 1);
});

t.test('rotation: the new key signs, the old one keeps verifying, another ring finds it at once', async (t) => {
  const { ring, advance } = harness();
  const a = await ring();
  const b = await ring();
  const old = a.signingKey();
  advance(10);
  const fresh = await a.rotate();
  t.not(fresh.kid, old.kid);
  t.equal(a.signingKey().kid, fresh.kid);
  t.equal((await a.verificationKey(old.kid))?.kid, old.kid, 'old key still verifies');
  t.equal(b.signingKey().kid, old.kid, 'B has not reloaded');
  const [x, y, z] = await Promise.all([b.verificationKey(fresh.kid), b.verificationKey(fresh.kid), b.verificationKey(fresh.kid)]);
  t.same([x?.kid, y?.kid, z?.kid], [fresh.kid, fresh.kid, fresh.kid], 'concurrent requests with the new kid all find it (one reload)');
  t.equal(b.signingKey().kid, fresh.kid, 'and B signs with it from then on');

  // A periodic refresh right before does not delay the pickup of the next rotation.
  advance(5_000);
  await b.refresh();
  advance(10);
  const third = await a.rotate();
  t.equal((await b.verificationKey(third.kid))?.kid, third.kid, 'found right after a refresh');
});

t.test('unknown kids reload the ring at most once per cooldown', async (t) => {
  const { ring, loads, advance } = harness();
  const a = await ring();
  const start = loads();
  const misses = await Promise.all(Array.from({ length: 50 }, (_, i) => a.verificationKey(`junk-${i}`)));
  t.ok(misses.every((k) => k === null));
  for (let i = 0; i < 50; i++) t.equal(await a.verificationKey(`more-junk-${i}`), null);
  t.equal(loads() - start, 1, '100 unknown kids, one store read');
  advance(5_000);
  t.equal(await a.verificationKey('junk-after-cooldown'), null);
  t.equal(loads() - start, 2, 'one more after the cooldown');
});

for (const algorithm of ['EdDSA', 'ES256'] as const) {
  t.test(`${algorithm}: the JWKS holds public keys only, one per key`, async (t) => {
    const { ring, advance } = harness();
    const a = await ring({ algorithm });
    advance(1);
    await a.rotate();
    const { keys } = a.jwks();
    t.equal(keys.length, 2);
    for (const key of keys) {
      t.notOk('d' in key, 'no private part');
      t.match(key, { alg: algorithm, use: 'sig', kid: String });
    }
    t.equal(a.algorithm, algorithm);
  });
}

t.test('a replica reports when it starts signing with a rotated key (keys.rotated)', async (t) => {
  const { ring, advance } = harness();
  const seenA: string[] = [];
  const seenB: string[] = [];
  const a = await ring({ onRotated: (kid) => seenA.push(kid) });
  const b = await ring({ onRotated: (kid) => seenB.push(kid) });
  t.same([seenA, seenB], [[], []], 'first load is not a rotation');
  advance(10);
  const fresh = await a.rotate();
  t.same(seenA, [fresh.kid], 'the rotating replica');
  await b.refresh();
  t.same(seenB, [fresh.kid], 'and the other one on its next load');
  await b.refresh();
  t.same(seenB, [fresh.kid], 'once');
});
