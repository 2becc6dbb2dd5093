import t from 'tap';
import type { Test } from 'tap';
import { formatSessionRows, listSessionRows, revokeClientSessions, revokeSession } from '../../src/session/manage.js';
import { createSessionIds } from '../../src/session/session-id.js';
import { shortHash } from '../../src/observability/short-hash.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createSessionEnder } from '../../src/session/end-session.js';
import { createLogger } from '../../src/observability/logger.js';

const limits = (now: number) => ({ maxConcurrent: 10, onLimit: 'reject' as const, now, idleTimeoutMs: 60_000, maxLifetimeMs: 120_000 });

async function setup(t: Test) {
  const now = 1_800_000_000_000;
  const store = createMemoryStore({ maxEntries: 1000, clock: () => now });
  t.teardown(() => store.close());
  const ids = createSessionIds(new Uint8Array(32).fill(3));
  const open = async (principal: string, createdAt: number, upstream = 0) => {
    const minted = ids.mint(principal);
    await store.createSession({ key: minted.key, principal, grantId: 'g', upstream, upstreamSessionId: `up-${minted.key}`, fingerprint: '', createdAt, owner: null }, limits(createdAt));
    return minted;
  };
  const ender = createSessionEnder({ store, owner: '', endUpstream: null, clock: () => now, log: createLogger('silent') });
  return { now, store, ids, open, ender };
}

t.test('listSessionRows: short hashes of the keys, oldest first, one client or all', async (t) => {
  const { now, store, open } = await setup(t);
  const b = await open('bob', now - 2_000, 1);
  const a = await open('alice', now - 1_000);
  const rows = await listSessionRows(store, null, now);
  t.same(rows, [
    { session: shortHash(b.key), clientId: 'bob', upstream: 1, createdAt: now - 2_000, expiresAt: now - 2_000 + 60_000 },
    { session: shortHash(a.key), clientId: 'alice', upstream: 0, createdAt: now - 1_000, expiresAt: now - 1_000 + 60_000 },
  ]);
  t.same((await listSessionRows(store, 'alice', now)).map((r) => r.clientId), ['alice']);
  t.same(await listSessionRows(store, 'carol', now), []);
  t.notOk(JSON.stringify(rows).includes(a.id.slice(0, 20)), 'nothing of the id');
});

t.test('revokeSession: ended, unknown (valid but gone), invalid (not an id of this client)', async (t) => {
  const { now, store, ids, open, ender } = await setup(t);
  const a = await open('alice', now);
  t.equal(await revokeSession(store, ender, ids, 'bob', a.id, now), 'invalid');
  t.equal(await revokeSession(store, ender, ids, 'alice', 'not-a-session-id', now), 'invalid');
  t.equal(await revokeSession(store, ender, ids, 'alice', a.id, now), 'ended');
  t.same(await store.listSessions('alice', now), []);
  t.equal(await revokeSession(store, ender, ids, 'alice', a.id, now), 'unknown');
  t.equal(await revokeSession(store, ender, ids, 'alice', ids.mint('alice').id, now), 'unknown', 'minted but never stored');
});

t.test('revokeClientSessions ends every session of one client and no other', async (t) => {
  const { now, store, open, ender } = await setup(t);
  await open('alice', now);
  await open('alice', now + 1);
  await open('bob', now);
  t.equal(await revokeClientSessions(store, ender, 'alice', now), 2);
  t.equal(await revokeClientSessions(store, ender, 'alice', now), 0);
  t.same((await store.listSessions(null, now)).map((s) => s.principal), ['bob']);
  t.same(await store.loadRequestState({ principal: 'alice', jti: 'j', grantId: 'g', sessionKey: null, now, idleTimeoutMs: 1, maxLifetimeMs: 1 }), { revoked: false, clientCutoff: 0, session: null }, 'tokens are not revoked');
});

t.test('formatSessionRows: aligned columns with ISO times', async (t) => {
  const text = formatSessionRows([
    { session: 'AAAAAAAAAAAA', clientId: 'a', upstream: 0, createdAt: Date.UTC(2026, 0, 1), expiresAt: Date.UTC(2026, 0, 1, 1) },
    { session: 'BBBBBBBBBBBB', clientId: 'long-client-id', upstream: 12, createdAt: Date.UTC(2026, 0, 2), expiresAt: Date.UTC(2026, 0, 2, 1) },
  ]);
  t.equal(text, [
    'SESSION       CLIENT          UPSTREAM  CREATED                   EXPIRES',
    'AAAAAAAAAAAA  a               0         2026-01-01T00:00:00.000Z  2026-01-01T01:00:00.000Z',
    'BBBBBBBBBBBB  long-client-id  12        2026-01-02T00:00:00.000Z  2026-01-02T01:00:00.000Z',
  ].join('\n'));
  t.equal(formatSessionRows([]), 'SESSION  CLIENT  UPSTREAM  CREATED  EXPIRES');
});
