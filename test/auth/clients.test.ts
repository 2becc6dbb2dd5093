/**
 * The client registry (config-file and store clients) and the scrypt secret hashes behind it.
 */
import t from 'tap';
import { createClientRegistry } from '../../src/auth/clients.js';
import { hashSecret, isSecretHash, verifySecret } from '../../src/auth/secret-hash.js';
import { validateConfig } from '../../src/config/validate.js';
import { createMemoryStore } from '../../src/store/memory.js';

t.test('scrypt hashes: round trip, salted, and anything malformed is false', async (t) => {
  const hash = await hashSecret('a-client-secret-0123456789');
  t.ok(isSecretHash(hash));
  t.match(hash, /^scrypt\$15\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]{43}$/);
  t.ok(await verifySecret('a-client-secret-0123456789', hash));
  t.notOk(await verifySecret('a-client-secret-012345678', hash));
  t.not(await hashSecret('a-client-secret-0123456789'), hash, 'a fresh salt each time');
  const [, n, r, p, salt, key] = hash.split('$');
  for (const bad of ['', 'plain', hash.slice(0, -1), `scrypt$${n}$${r}$${p}$${salt}$${'A'.repeat(43)}`, `scrypt$30$${r}$${p}$${salt}$${key}`, `scrypt$5$${r}$${p}$${salt}$${key}`]) {
    t.notOk(await verifySecret('a-client-secret-0123456789', bad), `refused: ${bad.slice(0, 24)}`);
  }
  t.notOk(isSecretHash(`scrypt$30$${r}$${p}$${salt}$${key}`), 'absurd cost parameters are not a hash (no scrypt DoS from config)');
});

t.test('registry: config clients (plain or hashed), store clients, unknown ids', async (t) => {
  let now = 1_700_000_000_000;
  const store = createMemoryStore({ maxEntries: 1000, clock: () => now });
  const parsed = validateConfig({
    clients: [
      { id: 'plain', secret: 'plain-secret-0123456789', scopes: ['mcp'] },
      { id: 'hashed', secretHash: await hashSecret('hashed-secret-0123456789'), scopes: ['mcp', 'x'], maxSessions: 3 },
    ],
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  await store.putClient({ id: 'stored', secretHash: await hashSecret('stored-secret-0123456789'), scopes: ['mcp'], maxSessions: null, rateLimit: null, createdAt: now });
  const registry = await createClientRegistry(parsed.config.clients, store, () => now);

  t.match(await registry.authenticate('plain', 'plain-secret-0123456789'), { id: 'plain', source: 'config' });
  t.equal(await registry.authenticate('plain', 'plain-secret-012345678'), null);
  t.match(await registry.authenticate('hashed', 'hashed-secret-0123456789'), { id: 'hashed', scopes: ['mcp', 'x'], maxSessions: 3 });
  t.equal(await registry.authenticate('hashed', 'wrong'), null);
  t.match(await registry.authenticate('stored', 'stored-secret-0123456789'), { id: 'stored', source: 'store' });
  t.equal(await registry.authenticate('stored', 'plain-secret-0123456789'), null, 'another client\'s secret');
  t.equal(await registry.authenticate('nobody', 'plain-secret-0123456789'), null);

  // A removed store client can no longer authenticate at once; its settings stay cached briefly,
  // which is why `client remove` also revokes everything the client holds.
  t.ok(await registry.get('stored'));
  await store.deleteClient('stored');
  t.ok(await registry.get('stored'), 'get() is cached');
  now += 30_001;
  t.equal(await registry.get('stored'), null, 'and forgets within 30 s');
  await store.putClient({ id: 'again', secretHash: await hashSecret('again-secret-0123456789'), scopes: ['mcp'], maxSessions: null, rateLimit: null, createdAt: now });
  t.ok(await registry.get('again'));
  await store.deleteClient('again');
  t.equal(await registry.authenticate('again', 'again-secret-0123456789'), null, 'authentication reads the store every time');
  t.equal(await registry.get('again'), null, 'and refreshes the cached entry');
});
