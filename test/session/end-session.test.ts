/**
 * The one way a session ends (session/end-session.ts), on the real memory and Redis stores, with
 * a real HTTP upstream receiving the DELETEs through the upstream pool: the record goes, the
 * upstream session is ended once (never for reasons where the upstream already knows), and
 * `session.ended` is logged once with the reason, even when two replicas race.
 */
import t from 'tap';
import type { Test } from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../src/observability/logger.js';
import { createUpstreamAgent, deleteUpstreamSession } from '../../src/pipeline/forward.js';
import { createSessionEnder } from '../../src/session/end-session.js';
import type { SessionEnder } from '../../src/session/end-session.js';
import { createUpstreamSweeper } from '../../src/session/sweep-upstreams.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { connectRedis, createRedisStore, waitReady } from '../../src/store/redis.js';
import { validateConfig } from '../../src/config/validate.js';
import { randomBytes } from 'node:crypto';
import type { SessionRecord, Store } from '../../src/store/types.js';
import { logSink } from '../fixtures/warden.js';

const NOW = 1_800_000_000_000;
const LIMITS = { maxConcurrent: 10, onLimit: 'reject' as const, now: NOW, idleTimeoutMs: 60_000, maxLifetimeMs: 120_000 };

/** A real upstream that records the session ids it was asked to DELETE. */
async function upstream(t: Test): Promise<{ url: string; deleted: string[] }> {
  const deleted: string[] = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'DELETE') deleted.push(String(req.headers['mcp-session-id']));
    res.writeHead(200).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, deleted };
}

type Harness = Awaited<ReturnType<typeof harness>>;

async function harness(t: Test, store: Store) {
  const up = await upstream(t);
  const agent = createUpstreamAgent(2_000);
  t.teardown(() => agent.close());
  const { sink, stream } = logSink();
  // The ender fires its DELETEs without waiting (off the request path); the test waits for them.
  const pending: Promise<void>[] = [];
  const make = (): SessionEnder => createSessionEnder({
    store, owner: '', clock: () => NOW, log: createLogger('info', stream),
    endUpstream: (index, sessionId) => {
      if (index === 0) pending.push(deleteUpstreamSession(agent, up.url, {}, sessionId, 2_000));
    },
  });
  let n = 0;
  /** A live session as the response stage makes it: noted upstream first, then the record. */
  const open = async (principal = 'alice', grantId = 'g1'): Promise<SessionRecord> => {
    n++;
    const record: SessionRecord = { key: `k${n}-${principal}`, principal, grantId, upstream: 0, upstreamSessionId: `up-${n}`, fingerprint: '', createdAt: NOW, owner: null };
    await store.trackUpstream('', { principal, key: record.key, index: 0, sessionId: record.upstreamSessionId });
    await store.createSession(record, LIMITS);
    return record;
  };
  const settle = async (): Promise<void> => {
    await Promise.all(pending);
  };
  return { store, ender: make(), second: make(), up, open, sink, settle };
}

function suite(name: string, makeStore: (t: Test) => Promise<Store>): void {
  t.test(`${name}: end removes the record, DELETEs upstream, says why, once`, async (t) => {
    const h: Harness = await harness(t, await makeStore(t));
    const s = await h.open();
    t.equal(await h.ender.end({ principal: s.principal, key: s.key, upstream: { index: 0, sessionId: s.upstreamSessionId } }, 'operator'), true);
    t.equal(await h.ender.end({ principal: s.principal, key: s.key, upstream: { index: 0, sessionId: s.upstreamSessionId } }, 'operator'), false, 'a second end finds nothing');
    await h.settle();
    t.same(await h.store.listSessions('alice', NOW), [], 'the record is gone');
    t.same(h.up.deleted, [s.upstreamSessionId], 'the upstream session was ended, once');
    t.same(h.sink.events('session.ended').map((e) => e.reason), ['operator'], 'one event, with the reason');
    t.same((await h.store.goneUpstreams('', '0', 100, NOW)).gone, [], 'nothing left for the sweeper');
  });

  t.test(`${name}: a client DELETE or an upstream that forgot: no DELETE upstream, nothing left to sweep`, async (t) => {
    const h: Harness = await harness(t, await makeStore(t));
    for (const reason of ['delete', 'upstream_gone'] as const) {
      const s = await h.open();
      t.equal(await h.ender.end({ principal: s.principal, key: s.key, upstream: { index: 0, sessionId: s.upstreamSessionId } }, reason), true);
    }
    await h.settle();
    t.same(h.up.deleted, [], 'the upstream already knows');
    t.same(h.sink.events('session.ended').map((e) => e.reason), ['delete', 'upstream_gone']);
    t.same((await h.store.goneUpstreams('', '0', 100, NOW)).gone, [], 'and the sweeper will not DELETE them later');
  });

  t.test(`${name}: revoking a grant ends its sessions upstream at once, not at the next sweep; other grants keep theirs`, async (t) => {
    const h: Harness = await harness(t, await makeStore(t));
    const a = await h.open('alice', 'g1');
    const b = await h.open('alice', 'g1');
    const other = await h.open('alice', 'g2');
    t.equal(await h.ender.revokeGrant('alice', 'g1', 60_000, NOW), 2, 'the store ended two');
    await h.settle();
    t.same([...h.up.deleted].sort(), [a.upstreamSessionId, b.upstreamSessionId].sort());
    t.same(h.sink.events('session.ended').map((e) => e.reason), ['revoked', 'revoked']);
    t.same((await h.store.listSessions('alice', NOW)).map((s) => s.key), [other.key]);
    t.equal(await h.ender.revokePrincipal('alice', NOW + 1, 60_000), 1);
    await h.settle();
    t.ok(h.up.deleted.includes(other.upstreamSessionId), 'revoking the principal ends the rest');
  });

  t.test(`${name}: two replicas ending the same gone session: one DELETE, one event`, async (t) => {
    const h: Harness = await harness(t, await makeStore(t));
    const s = await h.open();
    await h.store.deleteSession(s.principal, s.key);
    const ending = { principal: s.principal, key: s.key, upstream: { index: 0, sessionId: s.upstreamSessionId } };
    const results = await Promise.all([h.ender.ended(ending, 'evicted'), h.second.ended(ending, 'evicted')]);
    await h.settle();
    t.same(results.filter(Boolean).length, 1, 'exactly one of them ended it');
    t.same(h.up.deleted, [s.upstreamSessionId]);
    t.equal(h.sink.events('session.ended').length, 1);
  });

  t.test(`${name}: the sweeper ends an expired session's upstream through the same path (reason expired)`, async (t) => {
    const h: Harness = await harness(t, await makeStore(t));
    const s = await h.open();
    // The store dropped the record (idle timeout) without anyone ending it.
    await h.store.deleteSession(s.principal, s.key);
    const sweeper = createUpstreamSweeper({ store: h.store, owner: '', clock: () => NOW, intervalMs: 0, ender: h.ender, onError: () => {} });
    t.equal(await sweeper.sweep(), 1);
    t.equal(await sweeper.sweep(), 0, 'only once');
    await h.settle();
    t.same(h.up.deleted, [s.upstreamSessionId]);
    t.same(h.sink.events('session.ended').map((e) => e.reason), ['expired']);
  });
}

suite('memory', async (t) => {
  const store = createMemoryStore({ maxEntries: 1000, clock: () => NOW });
  t.teardown(() => store.close());
  return store;
});

suite('redis', async (t) => {
  const result = validateConfig({ store: { type: 'redis', url: 'redis://127.0.0.1:6379', keyPrefix: `t-end-${randomBytes(4).toString('hex')}:` } });
  if (!result.ok || result.config.store.type !== 'redis') throw new Error('redis config must be valid');
  const config = result.config.store;
  const client = connectRedis(config);
  await waitReady(client, 5_000);
  const store = createRedisStore(client, { keyPrefix: config.keyPrefix, clock: () => NOW });
  t.teardown(() => store.close());
  return store;
});
