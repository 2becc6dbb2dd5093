import type { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { CounterRef, RequestCounters, RequestLoad, SessionRecord, StateQuery } from './types.js';

/**
 * Server-assisted client-side caching (issue 21) for the hot path of the Redis store: what a
 * request needs from Redis usually has not changed since the last request of the same caller, so
 * it is kept in the process and Redis says when it changes (CLIENT TRACKING, broadcast mode, on
 * a second connection). What is kept:
 * - per principal: its client cutoff, the (jti, grant) pairs known not revoked, and its session
 *   records with when each was last slid. Any change to any key of the principal drops all of it;
 * - per address: its failed-attempt count (or that it has none);
 * - per counter: a lease of rate-limit points taken from Redis in one step (the only state that is
 *   this replica's own, never invalidated, dropped with the rest).
 *
 * Fail closed: while the invalidation channel is not known to work (connecting, a connection lost,
 * a heartbeat unanswered for HEARTBEAT_MS) nothing is served from the cache, and everything is
 * dropped at once when it stops working. A read that raced a change is not kept (sequence check).
 */

const CHANNEL = '__redis__:invalidate';
// How often the channel is checked, and how long an answer may take before it is taken as lost:
// a silent network loss is noticed within twice this.
const HEARTBEAT_MS = 500;
// A session record is slid in Redis (idle expiry) at most this often relative to the idle timeout:
// cached requests do not slide it, so an idle session may end up to this fraction early.
export const SLIDE_FRACTION = 0.1;
// Principals and addresses kept (oldest dropped first): a bound on memory, not a policy.
const MAX_ENTRIES = 50_000;

interface PrincipalEntry {
  readonly cutoff: string;
  /** `${jti}|${grantId}` pairs found not revoked. */
  readonly notRevoked: Set<string>;
  readonly sessions: Map<string, { readonly record: SessionRecord; readonly slidAt: number }>;
}

interface Lease {
  /** Points of the lease not used yet. */
  left: number;
  readonly granted: number;
  readonly resetAt: number;
  /** What the counter had consumed with the request that took the lease (its own point). */
  readonly base: number;
}

/** The hot-path script call with `take` points of the consumed counter (1 without a lease). */
export type LoadWithTake = (query: StateQuery, counters: RequestCounters, take: number) => Promise<RequestLoad>;

export interface ClientCache {
  /** The hot path: from the cache when everything is there (synchronously), else one script call that refills it. */
  loadRequest(query: StateQuery, counters: RequestCounters): RequestLoad | Promise<RequestLoad>;
  /** One point of a leased counter (see LimiterOptions.lease): synchronous from a lease. */
  consumeLeased(counterKey: string, options: { readonly points: number; readonly blockMs?: number }, now: number, take: (points: number) => Promise<RateLimiterRes>): RateLimiterRes | Promise<RateLimiterRes>;
  /** Whether invalidations are known to arrive (tests, /readyz detail). */
  readonly healthy: boolean;
  close(): Promise<void>;
}

export interface ClientCacheDeps {
  /** The store's connection (tracking is turned on for it). */
  readonly client: Redis;
  readonly keyPrefix: string;
  /** The Redis key of a counter (as the store's limiters name them). */
  readonly keyOf: (counter: CounterRef) => string;
  /** Points, and whether the counter blocks (a blocking counter is never leased). */
  readonly optionsOf: (counter: CounterRef) => { readonly points: number; readonly blockMs?: number };
  readonly load: LoadWithTake;
  readonly onError: (err: unknown) => void;
}

/** Points taken at once for a counter of `points` per window: small, so replicas share a limit closely. */
export function leaseSize(points: number): number {
  return Math.max(1, Math.min(32, Math.floor(points / 20)));
}

export function createClientCache(deps: ClientCacheDeps): ClientCache {
  const { client, keyPrefix } = deps;
  const principals = new Map<string, PrincipalEntry>();
  const addresses = new Map<string, { consumed: number; resetAt: number } | null>();
  const leases = new Map<string, Lease>();
  // Lease refills on their way, per counter.
  const refills = new Map<string, Promise<void>>();
  // Sequence of invalidations, and the last one seen per tag (principal or address key): a read
  // that started before its tag's last invalidation is not kept. `lost` counts channel losses.
  let sequence = 0;
  const invalidatedAt = new Map<string, number>();
  let lost = 0;
  let healthy = false;
  let closed = false;
  const principalMarker = `${keyPrefix}{`;

  function dropAll(): void {
    principals.clear();
    addresses.clear();
    leases.clear();
    invalidatedAt.clear();
    lost++;
  }

  function down(): void {
    healthy = false;
    dropAll();
  }

  function invalidate(key: string): void {
    sequence++;
    if (key.startsWith(principalMarker)) {
      const rest = key.slice(principalMarker.length);
      const end = rest.indexOf('}');
      // One hash tag per key; anything else cannot be tied to one principal: drop every one.
      if (end < 0 || rest.indexOf('}', end + 1) >= 0) {
        principals.clear();
        lost++;
        return;
      }
      const principal = rest.slice(0, end);
      principals.delete(principal);
      invalidatedAt.set(principal, sequence);
    } else {
      addresses.delete(key);
      invalidatedAt.set(key, sequence);
    }
    if (invalidatedAt.size > MAX_ENTRIES) {
      invalidatedAt.clear();
      lost++;
    }
  }

  // The channel: its own connection, subscribed to the invalidation messages this connection's
  // tracking is redirected to. Resubscribing is ours: each new connection has a new client id.
  // RESP2 on this connection: Redis then sends invalidations as Pub/Sub messages (as RESP3 push
  // frames of type "invalidate" they would reach no listener of ioredis).
  const sub = client.duplicate({ autoResubscribe: false, enableOfflineQueue: true, lazyConnect: true, protocol: 2 });
  let redirectTo: string | null = null;
  let arming: Promise<void> | null = null;

  async function armTracking(): Promise<void> {
    if (closed || redirectTo === null || client.status !== 'ready') return;
    // Broadcast mode: every change to a key under these prefixes is told, whoever read it; the
    // changes this connection makes itself are not (NOLOOP): it knows them.
    // Off first: a connection's prefixes and redirect are set once per ON.
    await client.call('CLIENT', 'TRACKING', 'OFF');
    await client.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', redirectTo, 'BCAST', 'PREFIX', principalMarker, 'PREFIX', `${keyPrefix}rl:`, 'NOLOOP');
    dropAll();
    healthy = true;
  }

  const arm = (): void => {
    arming ??= armTracking()
      .catch((err: unknown) => {
        down();
        deps.onError(err);
      })
      .finally(() => {
        arming = null;
      });
  };

  sub.on('ready', () => {
    void (async () => {
      try {
        const id = String(await sub.call('CLIENT', 'ID'));
        await sub.subscribe(CHANNEL);
        redirectTo = id;
        arm();
      } catch (err) {
        down();
        deps.onError(err);
      }
    })();
  });
  // Buffers, not strings: the payload is an array of keys, which the string event would join with commas.
  sub.on('messageBuffer', (channel: Buffer, message: unknown) => {
    if (channel.toString() !== CHANNEL) return;
    // Null: everything may have changed (FLUSHALL, or the server dropped its tracking table).
    if (message === null || message === undefined) dropAll();
    else if (Array.isArray(message)) for (const key of message) invalidate(String(key));
    else invalidate(String(message));
  });
  for (const event of ['close', 'end', 'error'] as const) {
    sub.on(event, () => {
      redirectTo = null;
      down();
    });
    client.on(event, down);
  }
  // A reconnected store connection has no tracking: arm it again before anything is cached.
  client.on('ready', arm);
  sub.connect().catch((err: unknown) => deps.onError(err));

  // A channel that stops answering (a network loss without a close) is as good as lost.
  let awaiting = false;
  const heartbeat = setInterval(() => {
    if (!healthy) return;
    if (awaiting) {
      down();
      sub.disconnect(true);
      return;
    }
    awaiting = true;
    sub.ping().then(
      () => {
        awaiting = false;
      },
      () => {
        awaiting = false;
        down();
      },
    );
  }, HEARTBEAT_MS);
  heartbeat.unref();

  function hit(q: StateQuery, counters: RequestCounters): RequestLoad | null {
    if (!healthy) return null;
    const entry = principals.get(q.principal);
    if (!entry || !entry.notRevoked.has(`${q.jti ?? ''}|${q.grantId ?? ''}`)) return null;
    let session: SessionRecord | null = null;
    if (q.sessionKey !== null) {
      const cached = entry.sessions.get(q.sessionKey);
      if (!cached || q.now - cached.slidAt >= q.idleTimeoutMs * SLIDE_FRACTION || q.now >= cached.record.createdAt + q.maxLifetimeMs) return null;
      session = cached.record;
    }
    let peeked: RateLimiterRes | null = null;
    if (counters.peek) {
      const count = addresses.get(deps.keyOf(counters.peek));
      if (count === undefined) return null;
      if (count !== null && count.resetAt > q.now) {
        const { points } = deps.optionsOf(counters.peek);
        peeked = new RateLimiterRes(Math.max(points - count.consumed, 0), count.resetAt - q.now, count.consumed, false);
      }
    }
    // Last: a point of the lease is used only when everything else was there.
    const res = fromLease(deps.keyOf(counters.consume), deps.optionsOf(counters.consume).points, q.now);
    if (!res) return null;
    return { state: { revoked: false, clientCutoff: Number(entry.cutoff || 0), session }, consumed: { allowed: true, res }, peeked };
  }

  /** One point of this replica's lease of a counter, or null when it holds none for now. */
  function fromLease(counterKey: string, points: number, now: number): RateLimiterRes | null {
    const lease = leases.get(counterKey);
    if (!lease || lease.left <= 0 || lease.resetAt <= now) return null;
    lease.left--;
    // As the counter would count without leases: the lease's points used so far are consumed, the rest not yet.
    const consumed = lease.base + (lease.granted - 1 - lease.left);
    return new RateLimiterRes(Math.max(points - consumed, 0), lease.resetAt - now, consumed, false);
  }

  /**
   * Points to take from Redis for one request: a lease, unless the counter blocks (a lease crossing
   * its limit would start a block), or is spent (until its window ends, each refusal counts one
   * point, as without leases), or the channel is down.
   */
  function takeFor(counterKey: string, points: number, blockMs: number, now: number): number {
    const spent = leases.get(counterKey);
    const exhausted = spent !== undefined && spent.granted === 0 && spent.resetAt > now;
    return healthy && blockMs === 0 && !exhausted ? leaseSize(points) : 1;
  }

  /** Of `take` points taken, those within the limit are this replica's to use. */
  function grantedOf(take: number, points: number, consumed: number): number {
    return Math.max(0, Math.min(take, points - (consumed - take)));
  }

  /** Keeps what is left of `take` points just taken (`res`: the counter after them). */
  function keepLease(counterKey: string, take: number, granted: number, res: RateLimiterRes, now: number): void {
    if (take <= 1 || granted === 1) return;
    const resetAt = now + res.msBeforeNext;
    const held = leases.get(counterKey);
    // Points of a lease still held (same window) are added to, never dropped: the counter in
    // Redis has counted them as used.
    if (held && held.left > 0 && Math.abs(held.resetAt - resetAt) < 1_000 && granted > 1) {
      leases.set(counterKey, { left: held.left + granted - 1, granted: held.granted + granted - 1, resetAt: held.resetAt, base: held.base });
      return;
    }
    if (leases.size >= MAX_ENTRIES) leases.delete(leases.keys().next().value as string);
    leases.set(counterKey, { left: granted - 1, granted, resetAt, base: res.consumedPoints - take + 1 });
  }

  /** Concurrent requests that find a lease spent wait for the one refill on its way (one round trip, not one each). */
  function shareRefill(counterKey: string, take: number, loading: Promise<unknown>): void {
    if (take <= 1 || refills.has(counterKey)) return;
    const settled = loading.then(() => undefined, () => undefined);
    refills.set(counterKey, settled);
    void settled.then(() => {
      if (refills.get(counterKey) === settled) refills.delete(counterKey);
    });
  }

  /** The counter as its caller sees it after a take of `take` points: one point used, as without a lease. */
  function asOnePoint(res: RateLimiterRes, take: number, points: number): RateLimiterRes {
    if (take === 1) return res;
    const used = res.consumedPoints - take + 1;
    return new RateLimiterRes(Math.max(points - used, 0), res.msBeforeNext, used, false);
  }

  function keep(q: StateQuery, counters: RequestCounters, load: RequestLoad, take: number, granted: number, startedAt: number, lostAt: number): void {
    if (!healthy || lost !== lostAt) return;
    const changedSince = (tag: string): boolean => (invalidatedAt.get(tag) ?? 0) > startedAt;
    if (!load.state.revoked && !changedSince(q.principal)) {
      let entry = principals.get(q.principal);
      const cutoff = String(load.state.clientCutoff || '');
      if (!entry || entry.cutoff !== cutoff) {
        entry = { cutoff, notRevoked: new Set(), sessions: new Map() };
        if (principals.size >= MAX_ENTRIES) principals.delete(principals.keys().next().value as string);
        principals.set(q.principal, entry);
      }
      entry.notRevoked.add(`${q.jti ?? ''}|${q.grantId ?? ''}`);
      if (q.sessionKey !== null && load.state.session) entry.sessions.set(q.sessionKey, { record: load.state.session, slidAt: q.now });
    }
    if (counters.peek) {
      const key = deps.keyOf(counters.peek);
      if (!changedSince(key)) {
        if (addresses.size >= MAX_ENTRIES) addresses.delete(addresses.keys().next().value as string);
        addresses.set(key, load.peeked ? { consumed: load.peeked.consumedPoints, resetAt: q.now + load.peeked.msBeforeNext } : null);
      }
    }
    keepLease(deps.keyOf(counters.consume), take, granted, load.consumed.res, q.now);
  }

  async function miss(q: StateQuery, counters: RequestCounters): Promise<RequestLoad> {
    const counterKey = deps.keyOf(counters.consume);
    const refill = refills.get(counterKey);
    if (refill) {
      await refill;
      const after = hit(q, counters);
      if (after) return after;
    }
    const { points, blockMs = 0 } = deps.optionsOf(counters.consume);
    const take = takeFor(counterKey, points, blockMs, q.now);
    const startedAt = sequence;
    const lostAt = lost;
    const loading = deps.load(q, counters, take);
    shareRefill(counterKey, take, loading);
    const load = await loading;
    const granted = grantedOf(take, points, load.consumed.res.consumedPoints);
    keep(q, counters, load, take, granted, startedAt, lostAt);
    return take === 1 ? load : { ...load, consumed: { allowed: granted >= 1, res: asOnePoint(load.consumed.res, take, points) } };
  }

  /**
   * One point of a counter outside the hot path (a budget): from this replica's lease when it
   * holds one (synchronously), else `take(n)` points from Redis, of which the rest is kept as the
   * next lease. The result is the counter as one point would leave it (over the limit when its
   * consumedPoints pass `points`).
   */
  function consumeLeased(counterKey: string, options: { readonly points: number; readonly blockMs?: number }, now: number, take: (points: number) => Promise<RateLimiterRes>): RateLimiterRes | Promise<RateLimiterRes> {
    const { points, blockMs = 0 } = options;
    const leased = healthy ? fromLease(counterKey, points, now) : null;
    return leased ?? refillLease(counterKey, points, blockMs, now, take);
  }

  async function refillLease(counterKey: string, points: number, blockMs: number, now: number, take: (points: number) => Promise<RateLimiterRes>): Promise<RateLimiterRes> {
    const refill = refills.get(counterKey);
    if (refill) {
      await refill;
      const after = healthy ? fromLease(counterKey, points, now) : null;
      if (after) return after;
    }
    const size = takeFor(counterKey, points, blockMs, now);
    const lostAt = lost;
    const taking = take(size);
    shareRefill(counterKey, size, taking);
    const res = await taking;
    const granted = grantedOf(size, points, res.consumedPoints);
    if (healthy && lost === lostAt) keepLease(counterKey, size, granted, res, now);
    return asOnePoint(res, size, points);
  }


  return {
    get healthy() {
      return healthy;
    },
    // A hit is answered synchronously (see RequestStateStore.loadRequest); a miss goes to Redis.
    loadRequest(q, counters) {
      return hit(q, counters) ?? miss(q, counters);
    },
    consumeLeased,
    async close() {
      closed = true;
      clearInterval(heartbeat);
      down();
      sub.disconnect();
    },
  };
}
