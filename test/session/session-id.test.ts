import t from 'tap';
import { createSessionIds, sessionIdSecret } from '../../src/session/session-id.js';
import { createMemoryStore } from '../../src/store/memory.js';

const secret = new Uint8Array(32).fill(7);

t.test('a minted id is 59 visible ASCII characters and checks back to its key for its principal only', async (t) => {
  const ids = createSessionIds(secret);
  const { id, key } = ids.mint('alice');
  t.match(id, /^[A-Za-z0-9_-]{59}$/);
  t.ok([...id].every((c) => c.charCodeAt(0) >= 0x21 && c.charCodeAt(0) <= 0x7e));
  t.match(key, /^[A-Za-z0-9_-]{16}$/, 'the key: 96 bits of the random part');
  t.equal(ids.check(id, 'alice'), key);
  t.equal(ids.check(id, 'bob'), null, 'the tag covers the principal: another client\'s id fails before any lookup');
  t.equal(createSessionIds(new Uint8Array(32).fill(8)).check(id, 'alice'), null, 'another secret (another deployment) rejects it');
  const again = ids.mint('alice');
  t.not(again.id, id);
  t.not(again.key, key);
});

t.test('anything but an untouched minted id is refused', async (t) => {
  const ids = createSessionIds(secret);
  const { id } = ids.mint('alice');
  const flip = (s: string, i: number) => `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
  const hostile = [
    '', 'x', id.slice(0, 58), `${id}A`, flip(id, 0), flip(id, 30), flip(id, 58), id.replace(/^./, '+'), `${id.slice(0, 58)}=`,
    id.toUpperCase() === id ? id.toLowerCase() : id.toUpperCase(), 'a'.repeat(59), '0123e4567-e89b-12d3-a456-426614174000', ' '.repeat(59), `${id.slice(0, 29)}\u00e9${id.slice(30)}`,
  ];
  for (const candidate of hostile) t.equal(ids.check(candidate, 'alice'), null, JSON.stringify(candidate.slice(0, 20)));
});

t.test('only the canonical base64url spelling is accepted: one session, one id', async (t) => {
  const ids = createSessionIds(secret);
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let i = 0; i < 50; i++) {
    const { id, key } = ids.mint(`p${i}`);
    t.equal(ids.check(id, `p${i}`), key);
    const last = B64.indexOf(id.at(-1) ?? '');
    t.equal(last % 4, 0, 'a minted id ends in a character whose 2 unused bits are zero');
    // Same 352 bits, another spelling: the 2 padding bits of the last character set.
    for (const pad of [1, 2, 3]) t.equal(ids.check(`${id.slice(0, 58)}${B64[last + pad]}`, `p${i}`), null);
  }
});

t.test('sessionIdSecret: derived from tokens.secret, else shared through the store', async (t) => {
  const store = createMemoryStore({ maxEntries: 1000, clock: Date.now });
  const other = createMemoryStore({ maxEntries: 1000, clock: Date.now });
  t.teardown(async () => {
    await store.close();
    await other.close();
  });
  const configured = (s: string | null) => ({ tokens: { secret: s } }) as Parameters<typeof sessionIdSecret>[0];
  const a = await sessionIdSecret(configured('a-signing-secret-of-at-least-32-bytes!'), store);
  t.equal(a.length, 32);
  t.same(await sessionIdSecret(configured('a-signing-secret-of-at-least-32-bytes!'), other), a, 'the same secret gives the same tag key on every replica');
  t.notSame(await sessionIdSecret(configured('another-signing-secret-of-32-bytes-x!'), store), a);
  t.notSame(Buffer.from(a).toString('utf8'), 'a-signing-secret-of-at-least-32-bytes!', 'derived (HKDF), not the signing secret itself');

  const shared = await sessionIdSecret(configured(null), store);
  t.equal(shared.length, 32);
  t.same(await sessionIdSecret(configured(null), store), shared, 'the first value stored wins');
  t.notSame(await sessionIdSecret(configured(null), other), shared, 'another store, another secret');
  const minted = createSessionIds(shared).mint('alice');
  t.equal(createSessionIds(await sessionIdSecret(configured(null), store)).check(minted.id, 'alice'), minted.key);
});
