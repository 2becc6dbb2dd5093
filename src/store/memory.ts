import { loadRequestApart } from './load-apart.js';
import { memoryLimiter } from './memory-limiter.js';
import type { MemoryLimiter } from './memory-limiter.js';
import { TtlMap } from './ttl-map.js';

export { TtlMap } from './ttl-map.js';
import { decodeSession, decodeUpstream, encodeSession, evictedSession, grantTag, keyLayout, upstreamField } from './keys.js';
import type {
  CreateResult, EvictedSession, Limiter, LimiterOptions, RefreshRecord, RefreshUse, RequestState, SessionInfo, SessionLimits, SessionRecord,
  StateQuery, Store, StoredClient, StoredKey, TrackedUpstream,
} from './types.js';

const SWEEP_INTERVAL_MS = 60_000;

/**
 * The embedded store for a single process. Same semantics as the Redis store (the contract suite
 * runs against both), with traffic-derived entries in a bounded {@link TtlMap}. Clients, keys and
 * secrets are operator data and are kept apart, so traffic can never evict them.
 */
export function createMemoryStore(options: { maxEntries: number; clock: () => number }): Store {
  const keys = keyLayout('');
  const data = new TtlMap(options.maxEntries);
  // Revocations live apart from traffic (sessions, refresh tokens): a flood of those must never push
  // a revocation out of the bound and make a revoked token valid again. Only revocations can fill
  // this map, and they come from authenticated, rate-limited callers.
  const revocations = new TtlMap(options.maxEntries, true);
  // Session index per principal: key -> createdAt (kept small: bounded by the session cap).
  const indexes = new Map<string, Map<string, number>>();
  const clients = new Map<string, StoredClient>();
  const ring: StoredKey[] = [];
  const secrets = new Map<string, string>();
  // Upstream sessions per owner, bounded like everything else: a full ledger tracks no more (those
  // upstream sessions then end only by the upstream's own expiry).
  const upstreams = new Map<string, Map<string, string>>();
  let tracked = 0;
  // Audit trails (tests; production audits to Redis, a file or stdout).
  const audits = new Map<string, string[]>();
  const sweeper = setInterval(() => sweep(options.clock()), SWEEP_INTERVAL_MS).unref();

  function sweep(now: number): void {
    data.sweep(now);
    revocations.sweep(now);
    for (const [principal, index] of indexes) {
      for (const key of index.keys()) if (data.get(keys.session(principal, key), now) === undefined) index.delete(key);
      if (index.size === 0) indexes.delete(principal);
    }
  }

  function liveSessions(principal: string, now: number): Map<string, number> {
    const index = indexes.get(principal) ?? new Map<string, number>();
    for (const key of index.keys()) if (data.get(keys.session(principal, key), now) === undefined) index.delete(key);
    return index;
  }

  function deleteSession(principal: string, key: string): boolean {
    indexes.get(principal)?.delete(key);
    return data.delete(keys.session(principal, key));
  }

  function readSession(principal: string, key: string, now: number): SessionRecord | null {
    const value = data.get(keys.session(principal, key), now);
    return value === undefined ? null : decodeSession(principal, key, value);
  }

  function requestState(q: StateQuery): RequestState {
    const revoked = (q.jti !== null && revocations.get(keys.revokedToken(q.principal, q.jti), q.now) !== undefined)
      || (q.grantId !== null && revocations.get(keys.revokedGrant(q.principal, q.grantId), q.now) !== undefined);
    const clientCutoff = Number(revocations.get(keys.cutoff(q.principal), q.now) ?? 0);
    let session: SessionRecord | null = null;
    if (q.sessionKey !== null) {
      session = readSession(q.principal, q.sessionKey, q.now);
      if (session) data.setExpiry(keys.session(q.principal, q.sessionKey), Math.min(q.now + q.idleTimeoutMs, session.createdAt + q.maxLifetimeMs));
    }
    return { revoked, clientCutoff, session };
  }

  // The limiters this store made, by the handle callers pass back in RequestCounters.
  const ownLimiters = new WeakMap<Limiter, MemoryLimiter>();

  const store: Store = {
    kind: 'memory',

    async loadRequestState(q: StateQuery): Promise<RequestState> {
      return requestState(q);
    },

    // Synchronous (see RequestStateStore.loadRequest): every answer is in this process.
    loadRequest(q, counters) {
      const consume = ownLimiters.get(counters.consume.limiter);
      const peek = counters.peek ? ownLimiters.get(counters.peek.limiter) : null;
      // Counters of another store (none in practice) are asked the slow way.
      if (!consume || peek === undefined) return loadRequestApart(store, q, counters);
      return {
        state: requestState(q),
        consumed: consume.consumeNow(counters.consume.key),
        peeked: peek && counters.peek ? peek.getNow(counters.peek.key) : null,
      };
    },

    async countSessions(principal, now) {
      return liveSessions(principal, now).size;
    },

    async createSession(record: SessionRecord, limits: SessionLimits): Promise<CreateResult> {
      const index = liveSessions(record.principal, limits.now);
      const evicted: EvictedSession[] = [];
      if (index.size >= limits.maxConcurrent) {
        if (limits.onLimit === 'reject') return { created: false };
        const oldestFirst = [...index.entries()].sort((a, b) => a[1] - b[1]);
        for (const [key] of oldestFirst.slice(0, index.size - limits.maxConcurrent + 1)) {
          evicted.push(evictedSession(record.principal, key, data.get(keys.session(record.principal, key), limits.now)));
          deleteSession(record.principal, key);
        }
      }
      data.set(keys.session(record.principal, record.key), encodeSession(record), Math.min(limits.now + limits.idleTimeoutMs, record.createdAt + limits.maxLifetimeMs));
      index.set(record.key, record.createdAt);
      indexes.set(record.principal, index);
      return { created: true, evicted };
    },

    async deleteSession(principal, key) {
      return deleteSession(principal, key);
    },

    async listSessions(principal, now): Promise<SessionInfo[]> {
      const principals = principal === null ? [...indexes.keys()] : [principal];
      const out: SessionInfo[] = [];
      for (const p of principals) {
        for (const key of liveSessions(p, now).keys()) {
          const record = readSession(p, key, now);
          const expiresAt = data.expiresAt(keys.session(p, key), now);
          if (record && expiresAt !== undefined) out.push({ ...record, expiresAt });
        }
      }
      return out;
    },

    async revokeToken(principal, jti, expiresAt, now) {
      if (expiresAt > now) revocations.set(keys.revokedToken(principal, jti), '1', expiresAt, now);
    },

    async revokeGrant(principal, grantId, ttlMs, now) {
      revocations.set(keys.revokedGrant(principal, grantId), '1', now + ttlMs, now);
      let ended = 0;
      for (const key of [...liveSessions(principal, now).keys()]) {
        if (readSession(principal, key, now)?.grantId === grantTag(grantId) && deleteSession(principal, key)) ended++;
      }
      return ended;
    },

    async revokePrincipal(principal, cutoff, ttlMs) {
      revocations.set(keys.cutoff(principal), String(cutoff), cutoff + ttlMs, options.clock());
      let ended = 0;
      for (const key of [...(indexes.get(principal)?.keys() ?? [])]) if (deleteSession(principal, key)) ended++;
      return ended;
    },

    async putRefreshToken(principal, hash, record: RefreshRecord, now) {
      if (record.expiresAt > now) data.set(keys.refreshToken(principal, hash), JSON.stringify({ ...record, used: false }), record.expiresAt);
    },

    async useRefreshToken(principal, hash, now): Promise<RefreshUse> {
      const key = keys.refreshToken(principal, hash);
      const value = data.get(key, now);
      if (value === undefined) return { status: 'unknown' };
      const { used, ...record } = JSON.parse(value) as RefreshRecord & { used: boolean };
      if (used) return { status: 'reused', record };
      // Kept after use, until it would have expired: a second use is how theft shows itself.
      data.set(key, JSON.stringify({ ...record, used: true }), record.expiresAt);
      return { status: 'ok', record };
    },

    async getClient(id) {
      return clients.get(id) ?? null;
    },
    async putClient(client) {
      clients.set(client.id, client);
    },
    async deleteClient(id) {
      return clients.delete(id);
    },
    async listClients() {
      return [...clients.values()];
    },

    async getKeys() {
      return [...ring];
    },
    async addKey(key, onlyIfNone) {
      if (onlyIfNone && ring.length > 0) return false;
      ring.push(key);
      return true;
    },
    async trackUpstream(owner, u) {
      const ledger = upstreams.get(owner) ?? new Map<string, string>();
      upstreams.set(owner, ledger);
      const field = upstreamField(u.principal, u.key);
      if (!ledger.has(field)) {
        if (tracked >= options.maxEntries) return;
        tracked++;
      }
      ledger.set(field, `${u.index}\n${u.sessionId}`);
    },

    async untrackUpstream(owner, principal, key) {
      const removed = upstreams.get(owner)?.delete(upstreamField(principal, key)) ?? false;
      if (removed) tracked--;
      return removed;
    },

    async goneUpstreams(owner, _cursor, count, now) {
      const gone: TrackedUpstream[] = [];
      for (const [field, value] of upstreams.get(owner) ?? []) {
        const u = decodeUpstream(field, value);
        if (u && data.get(keys.session(u.principal, u.key), now) === undefined) gone.push(u);
        if (gone.length >= count) break;
      }
      return { cursor: '0', gone };
    },

    async auditAppend(replica, lines) {
      const trail = audits.get(replica) ?? [];
      audits.set(replica, trail);
      trail.push(...lines);
    },

    async auditRead(replica) {
      return [...(audits.get(replica) ?? [])];
    },

    onReconnect() {},

    async persistence() {
      return 'memory' as const;
    },

    async deleteKey(kid) {
      const at = ring.findIndex((k) => k.kid === kid);
      if (at >= 0) ring.splice(at, 1);
      return at >= 0;
    },

    async initSecret(name, value) {
      const existing = secrets.get(name);
      if (existing !== undefined) return existing;
      secrets.set(name, value);
      return value;
    },

    limiter(o: LimiterOptions): Limiter {
      const limiter = memoryLimiter(o, options.maxEntries, options.clock);
      ownLimiters.set(limiter, limiter);
      return limiter;
    },

    async countAllSessions(now) {
      let total = 0;
      for (const principal of [...indexes.keys()]) total += liveSessions(principal, now).size;
      return total;
    },

    async putTransient(name, value, ttlMs) {
      data.set(keys.transient(name), value, options.clock() + ttlMs);
    },

    async getTransient(name) {
      return data.get(keys.transient(name), options.clock()) ?? null;
    },

    async takeTransient(name) {
      const value = data.get(keys.transient(name), options.clock()) ?? null;
      data.delete(keys.transient(name));
      return value;
    },

    async announceReplica(id, url, ttlMs) {
      data.set(keys.replica(id), url, options.clock() + ttlMs);
    },

    async replicaUrl(id) {
      return data.get(keys.replica(id), options.clock()) ?? null;
    },

    async forgetReplica(id) {
      data.delete(keys.replica(id));
    },

    async ping() {},
    clientCache: () => null,

    async close() {
      clearInterval(sweeper);
    },
  };
  return store;
}
