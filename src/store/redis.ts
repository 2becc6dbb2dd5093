import { Cluster, Redis } from 'ioredis';
import type { RedisOptions, Result } from 'ioredis';
import type { RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config/schema.js';
import { WardenError } from '../errors.js';
import { decodeSession, decodeUpstream, encodeSession, evictedSession, grantTag, keyLayout, upstreamField } from './keys.js';
import { counterRes } from './counter.js';
import { collectAfter, GC_GRACE_MS, stamp, unstamp } from './deadline.js';
import { ADD_KEY, COUNT_SESSIONS, COUNTER_ADD, CREATE_SESSION, LOAD_REQUEST, LOAD_STATE, PEEK_COUNTER, REVOKE_GRANT, REVOKE_PRINCIPAL, USE_REFRESH } from './redis-scripts.js';
import { loadRequestApart } from './load-apart.js';
import { createClientCache, SLIDE_FRACTION } from './client-cache.js';
import type { ClientCache } from './client-cache.js';
import type { Limiter, LimiterOptions, RefreshRecord, RequestCounters, RequestLoad, SessionInfo, StateQuery, Store, StoredClient, StoredKey, TrackedUpstream } from './types.js';

type Reply = string | number | (string | number)[];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    mcpwLoadState(...args: (string | number)[]): Result<[number, string, string], Context>;
    mcpwLoadRequest(...args: (string | number)[]): Result<[number, string, string, number, number, string | number, number], Context>;
    mcpwCounterAdd(key: string, now: number, change: number, points: number, durationMs: number, blockMs: number): Result<[number, number], Context>;
    mcpwCountSessions(...args: (string | number)[]): Result<number, Context>;
    mcpwCreateSession(...args: (string | number)[]): Result<(number | string)[], Context>;
    mcpwRevokeGrant(...args: (string | number)[]): Result<number, Context>;
    mcpwRevokePrincipal(...args: (string | number)[]): Result<number, Context>;
    mcpwUseRefresh(...args: (string | number)[]): Result<[number, string], Context>;
    mcpwAddKey(...args: (string | number)[]): Result<number, Context>;
    mcpwPeekCounter(key: string, now: number): Result<[string | number, number], Context>;
  }
}

export type RedisClient = Redis | Cluster;

/**
 * Client options that fail fast when Redis is gone: no offline queue (a command on a dead
 * connection is refused at once instead of waiting ~73 s), one retry, a command timeout for a
 * Redis that hangs; reconnection keeps trying in the background so service resumes by itself.
 */
function clientOptions(store: Config['store']): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: store.commandTimeout,
    retryStrategy: (times) => Math.min(100 * times, 1_000),
    // Off, measured: writeCoalescer batches the same way without ioredis's per-batch objects
    // (133-150 us of CPU per request against 158-177 us with auto-pipelining, when a request still
    // sent three commands).
    enableAutoPipelining: false,
    ...(store.password ? { password: store.password } : {}),
  };
}

/** Connects to Redis as configured: a URL, Sentinel nodes, or Cluster seed nodes. */
export function connectRedis(store: Config['store']): RedisClient {
  const options = clientOptions(store);
  if (store.cluster) {
    const { enableOfflineQueue, enableAutoPipelining, ...redisOptions } = options;
    return new Cluster(store.cluster.map((n) => ({ host: n.host, port: n.port })), {
      enableOfflineQueue,
      enableAutoPipelining,
      redisOptions,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1_000),
    });
  }
  if (store.sentinels) return new Redis({ ...options, sentinels: store.sentinels.map((n) => ({ host: n.host, port: n.port })), name: store.sentinelName });
  return new Redis(store.url ?? 'redis://127.0.0.1:6379', options);
}

/** Waits until the client is ready, or fails with a clear error after `timeoutMs`. */
export function waitReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`Redis not reachable within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

function defineScripts(client: RedisClient): void {
  const scripts = { mcpwLoadState: LOAD_STATE, mcpwLoadRequest: LOAD_REQUEST, mcpwCountSessions: COUNT_SESSIONS, mcpwCreateSession: CREATE_SESSION, mcpwRevokeGrant: REVOKE_GRANT, mcpwRevokePrincipal: REVOKE_PRINCIPAL, mcpwUseRefresh: USE_REFRESH, mcpwAddKey: ADD_KEY, mcpwPeekCounter: PEEK_COUNTER, mcpwCounterAdd: COUNTER_ADD };
  for (const [name, s] of Object.entries(scripts)) client.defineCommand(name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
}

/**
 * Gathers the commands of every request handled in one pass of the event loop into one write on
 * the connection: the socket is corked at the first command and uncorked in the loop's check phase
 * (setImmediate), after every socket that was readable in this pass had its turn. Under load,
 * requests that arrived together then share one write and one read of Redis's replies instead of
 * a system call pair each; alone, a request waits only for the pass to end. What ioredis
 * auto-pipelining does, without its per-batch objects (see clientOptions). A cluster spreads
 * commands over several connections, so there each command is written as it comes.
 */
function writeCoalescer(client: RedisClient): () => void {
  if (client instanceof Cluster) return () => {};
  return () => {
    const stream = client.stream;
    if (client.status !== 'ready' || stream.writableCorked > 0) return;
    stream.cork();
    setImmediate(() => stream.uncork());
  };
}

/**
 * A rate limiter whose counts live in Redis: counter.ts's algorithm in its Lua twin (COUNTER), on
 * the injected clock. Keys are named as rate-limiter-flexible names them (`prefix:key`); a
 * per-principal counter is in the principal's Cluster slot, so the hot-path script can consume it.
 */
class RedisLimiter implements Limiter {
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #clock: () => number;
  readonly #coalesce: () => void;
  readonly options: LimiterOptions;

  constructor(client: RedisClient, prefix: string, options: LimiterOptions, deps: { clock: () => number; coalesce: () => void }) {
    if (!(options.durationMs > 0)) throw new Error(`limiter ${options.keyPrefix}: the window must be positive`);
    this.options = options;
    this.#client = client;
    this.#prefix = prefix;
    this.#clock = deps.clock;
    this.#coalesce = deps.coalesce;
  }

  /** The Redis key of a counter; a principal's is in the principal's Cluster slot. */
  keyOf(key: string): string {
    return `${this.#prefix}:${this.options.perPrincipal ? `{${key}}` : key}`;
  }

  /** Fails at once, not after the command timeout, while the connection is down (no offline queue). */
  #ready(): void {
    if (this.#client.status !== 'ready') throw new Error('Redis connection is not ready');
  }

  async #add(key: string, change: number): Promise<RateLimiterRes> {
    this.#ready();
    this.#coalesce();
    const now = this.#clock();
    const { points, durationMs, blockMs = 0 } = this.options;
    const [consumed, ms] = await this.#client.mcpwCounterAdd(this.keyOf(key), now, change, points, durationMs, blockMs);
    return this.res(consumed, ms, change);
  }

  async consume(key: string): Promise<RateLimiterRes> {
    const res = await this.#add(key, 1);
    if (res.consumedPoints > this.options.points) throw res;
    return res;
  }

  /** `points` at once (a lease), over the limit or not: the caller reads consumedPoints. */
  take(key: string, points: number): Promise<RateLimiterRes> {
    return this.#add(key, points);
  }

  async get(key: string): Promise<RateLimiterRes | null> {
    this.#ready();
    this.#coalesce();
    return this.counter(...(await this.#client.mcpwPeekCounter(this.keyOf(key), this.#clock())));
  }

  async keys(): Promise<string[]> {
    // Rare and operator-driven (the admin API): a SCAN of this limiter's keys on every primary.
    const nodes = this.#client instanceof Cluster ? this.#client.nodes('master') : [this.#client];
    const pattern = `${this.#prefix}:*`;
    const found = new Set<string>();
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        for (const key of batch) found.add(key.slice(pattern.length - 1).replace(/^\{(.*)\}$/, '$1'));
        cursor = next;
      } while (cursor !== '0');
    }
    return [...found];
  }

  async reward(key: string): Promise<void> {
    await this.#add(key, -1);
  }

  async delete(key: string): Promise<void> {
    this.#ready();
    await this.#client.del(this.keyOf(key));
  }

  /** A count (as the script returns it: consumed, ms left) in the library's terms. */
  res(consumed: number, ms: number, change = 0): RateLimiterRes {
    return counterRes({ consumed, resetAt: ms }, 0, this.options.points, change);
  }

  /** The same for a counter read without consuming: null when absent. */
  counter(value: string | number, ms: number): RateLimiterRes | null {
    return value === '' ? null : this.res(Number(value), ms);
  }
}

/** Any Redis failure on the request path is the same refusal: fail closed with 503. */
async function guarded<T>(work: () => Promise<T>, onError: (err: unknown) => void): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof WardenError) throw err;
    onError(err);
    throw new WardenError('STORE_UNAVAILABLE', { reason: 'store', retryAfterMs: 2_000, cause: err });
  }
}

function asText(value: Reply | undefined): string {
  return typeof value === 'string' ? value : '';
}

/** A limiter whose points come from this replica's lease when it holds one (LimiterOptions.lease). */
function leasedLimiter(limiter: RedisLimiter, cache: ClientCache, clock: () => number): Limiter {
  const { points } = limiter.options;
  const overLimit = (res: RateLimiterRes): RateLimiterRes => {
    if (res.consumedPoints > points) throw res;
    return res;
  };
  return {
    consume(key) {
      return Promise.resolve(cache.consumeLeased(limiter.keyOf(key), limiter.options, clock(), (n) => limiter.take(key, n))).then(overLimit);
    },
    get: (key) => limiter.get(key),
    reward: (key) => limiter.reward(key),
    keys: () => limiter.keys(),
    delete: (key) => limiter.delete(key),
  };
}

/**
 * The shared store: ioredis on a standalone server, Sentinel or Cluster. Every traffic-derived
 * key has a TTL; clients, signing keys and the generated secret are durable.
 */
export function createRedisStore(client: RedisClient, options: { keyPrefix: string; clock: () => number; onError?: (err: unknown) => void; clientCache?: boolean }): Store {
  defineScripts(client);
  const keys = keyLayout(options.keyPrefix);
  const onError = options.onError ?? (() => {});
  const coalesce = writeCoalescer(client);
  const run = <T>(work: () => Promise<T>): Promise<T> => {
    coalesce();
    return guarded(work, onError);
  };
  const sessionPrefix = (principal: string): string => keys.session(principal, '');

  /** When a record ends on the caller's clock (its key's expiry less the grace); null when it has none. */
  const endOf = (expireTime: number): number | null => (expireTime >= 0 ? expireTime - GC_GRACE_MS : expireTime === -1 ? Number.MAX_SAFE_INTEGER : null);

  async function sessionsOf(principal: string, now: number): Promise<SessionInfo[]> {
    const members = await client.zrange(keys.sessionIndex(principal), '0', '-1');
    const out: SessionInfo[] = [];
    for (const key of members) {
      const [value, expireTime] = await Promise.all([client.get(keys.session(principal, key)), client.pexpiretime(keys.session(principal, key))]);
      const record = value ? decodeSession(principal, key, value) : null;
      const expiresAt = endOf(expireTime);
      if (record && expiresAt !== null && expiresAt > now) out.push({ ...record, expiresAt });
    }
    return out;
  }

  async function loadRequest(q: StateQuery, consume: RedisLimiter, consumeKey: string, peek: RedisLimiter | null, peekKey: string, take = 1, lazySlide = 0): Promise<RequestLoad> {
    const state = [
      keys.revokedToken(q.principal, q.jti ?? ''), keys.revokedGrant(q.principal, q.grantId ?? ''), keys.cutoff(q.principal),
      keys.session(q.principal, q.sessionKey ?? ''), consume.keyOf(consumeKey),
    ] as const;
    const { points, durationMs, blockMs = 0 } = consume.options;
    const args = [q.now, q.idleTimeoutMs, q.maxLifetimeMs, q.sessionKey === null ? '0' : '1', points, durationMs, blockMs, take, lazySlide] as const;
    // A Cluster cannot take the address's counter (another slot) in the principal's script.
    const peekApart = peek !== null && client instanceof Cluster;
    const [reply, peekedApart] = await Promise.all([
      peek === null || peekApart ? client.mcpwLoadRequest(5, ...state, ...args) : client.mcpwLoadRequest(6, ...state, peek.keyOf(peekKey), ...args),
      peekApart ? peek.get(peekKey) : null,
    ]);
    const [revoked, cutoff, session, consumed, ttl, peeked, peekedTtl] = reply;
    return {
      state: {
        revoked: revoked > 0,
        clientCutoff: Number(cutoff || 0),
        session: q.sessionKey !== null && session ? decodeSession(q.principal, q.sessionKey, session) : null,
      },
      consumed: { allowed: consumed <= points, res: consume.res(consumed, ttl, take) },
      peeked: peek === null || peekApart ? peekedApart : peek.counter(peeked, peekedTtl),
    };
  }

  // Issue 21: most requests served without a round trip (store.clientCache; not on a Cluster).
  const cache = options.clientCache && !(client instanceof Cluster)
    ? createClientCache({
      client,
      keyPrefix: options.keyPrefix,
      keyOf: (counter) => (counter.limiter as RedisLimiter).keyOf(counter.key),
      optionsOf: (counter) => (counter.limiter as RedisLimiter).options,
      load: (q, counters, take) => run(() => loadRequest(q, counters.consume.limiter as RedisLimiter, counters.consume.key, (counters.peek?.limiter ?? null) as RedisLimiter | null, counters.peek?.key ?? '', take, SLIDE_FRACTION)),
      onError,
    })
    : null;

  async function allPrincipals(): Promise<string[]> {
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    const found = new Set<string>();
    const pattern = `${options.keyPrefix}{*}:ss`;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', '500');
        cursor = next;
        for (const key of batch) {
          const match = /\{([^}]*)\}:ss$/.exec(key);
          if (match?.[1] !== undefined) found.add(match[1]);
        }
      } while (cursor !== '0');
    }
    return [...found];
  }

  const store: Store = {
    kind: 'redis',

    loadRequestState: (q) =>
      run(async () => {
        const [revoked, cutoff, session] = await client.mcpwLoadState(
          keys.revokedToken(q.principal, q.jti ?? ''),
          keys.revokedGrant(q.principal, q.grantId ?? ''),
          keys.cutoff(q.principal),
          keys.session(q.principal, q.sessionKey ?? ''),
          q.now, q.idleTimeoutMs, q.maxLifetimeMs, q.sessionKey === null ? '0' : '1',
        );
        return {
          revoked: revoked > 0,
          clientCutoff: Number(cutoff || 0),
          session: q.sessionKey !== null && session ? decodeSession(q.principal, q.sessionKey, session) : null,
        };
      }),

    loadRequest: (q, counters) => {
      const consume = counters.consume.limiter;
      const peek = counters.peek?.limiter ?? null;
      // Only the store's own per-principal counters can ride in the principal's script.
      const inScript = consume instanceof RedisLimiter && consume.options.perPrincipal === true;
      if (!inScript || (peek !== null && !(peek instanceof RedisLimiter))) return loadRequestApart(store, q, counters);
      if (cache) return cache.loadRequest(q, counters);
      return run(() => loadRequest(q, consume, counters.consume.key, peek, counters.peek?.key ?? ''));
    },

    countSessions: (principal, now) => run(() => client.mcpwCountSessions(keys.sessionIndex(principal), sessionPrefix(principal), now)),

    createSession: (record, limits) =>
      run(async () => {
        const expiresAt = Math.min(limits.now + limits.idleTimeoutMs, record.createdAt + limits.maxLifetimeMs);
        const reply = await client.mcpwCreateSession(
          keys.sessionIndex(record.principal), keys.session(record.principal, record.key),
          sessionPrefix(record.principal), record.key, encodeSession(record), expiresAt, record.createdAt,
          limits.maxConcurrent, limits.onLimit === 'evict-oldest' ? '1' : '0', limits.maxLifetimeMs + GC_GRACE_MS, limits.now,
        );
        if (reply[0] !== 1) return { created: false as const };
        const evicted = [];
        for (let i = 1; i + 1 < reply.length; i += 2) evicted.push(evictedSession(record.principal, String(reply[i]), String(reply[i + 1])));
        return { created: true as const, evicted };
      }),

    deleteSession: (principal, key) =>
      run(async () => {
        const [deleted] = await Promise.all([client.del(keys.session(principal, key)), client.zrem(keys.sessionIndex(principal), key)]);
        return deleted > 0;
      }),

    listSessions: (principal, now) =>
      run(async () => {
        const principals = principal === null ? await allPrincipals() : [principal];
        return (await Promise.all(principals.map((p) => sessionsOf(p, now)))).flat();
      }),

    revokeToken: (principal, jti, expiresAt, now) =>
      run(async () => {
        if (expiresAt > now) await client.set(keys.revokedToken(principal, jti), '1', 'PXAT', expiresAt + GC_GRACE_MS);
      }),

    revokeGrant: (principal, grantId, ttlMs, now) =>
      run(() => client.mcpwRevokeGrant(keys.revokedGrant(principal, grantId), keys.sessionIndex(principal), sessionPrefix(principal), grantTag(grantId), now + ttlMs, now)),

    revokePrincipal: (principal, cutoff, ttlMs) =>
      run(() => client.mcpwRevokePrincipal(keys.cutoff(principal), keys.sessionIndex(principal), sessionPrefix(principal), cutoff, cutoff + ttlMs, options.clock())),

    putRefreshToken: (principal, hash, record: RefreshRecord, now) =>
      run(async () => {
        if (record.expiresAt > now) await client.set(keys.refreshToken(principal, hash), `0|${JSON.stringify(record)}`, 'PX', collectAfter(record.expiresAt, now));
      }),

    useRefreshToken: (principal, hash, now) =>
      run(async () => {
        const [status, body] = await client.mcpwUseRefresh(keys.refreshToken(principal, hash));
        const record = status === 0 ? null : (JSON.parse(body) as RefreshRecord);
        // The record's own end decides (its key only outlives it for collection).
        if (record === null || record.expiresAt <= now) return { status: 'unknown' as const };
        return status === 2 ? { status: 'reused' as const, record } : { status: 'ok' as const, record };
      }),

    getClient: (id) =>
      run(async () => {
        const value = await client.hget(keys.clients, id);
        return value ? (JSON.parse(value) as StoredClient) : null;
      }),
    putClient: (c) => run(async () => void (await client.hset(keys.clients, c.id, JSON.stringify(c)))),
    deleteClient: (id) => run(async () => (await client.hdel(keys.clients, id)) > 0),
    listClients: () => run(async () => (await client.hvals(keys.clients)).map((v) => JSON.parse(v) as StoredClient)),

    getKeys: () => run(async () => (await client.hvals(keys.keys)).map((v) => JSON.parse(v) as StoredKey).sort((a, b) => a.createdAt - b.createdAt)),
    addKey: (key, onlyIfNone) => run(async () => (await client.mcpwAddKey(keys.keys, key.kid, JSON.stringify(key), onlyIfNone ? '1' : '0')) === 1),
    persistence: () =>
      run(async () => {
        if (/^aof_enabled:1\r?$/m.test(await client.info('persistence'))) return 'aof' as const;
        // Managed services often refuse CONFIG: then it cannot be told.
        const save = await client.config('GET', 'save').catch(() => null);
        if (!Array.isArray(save)) return 'unknown' as const;
        return String(save[1] ?? '').trim() === '' ? ('none' as const) : ('rdb' as const);
      }),
    trackUpstream: (owner, u) => run(async () => void (await client.hset(keys.upstreams(owner), upstreamField(u.principal, u.key), `${u.index}\n${u.sessionId}`))),
    untrackUpstream: (owner, principal, key) => run(async () => (await client.hdel(keys.upstreams(owner), upstreamField(principal, key))) === 1),
    goneUpstreams: (owner, cursor, count, now) =>
      run(async () => {
        const [next, flat] = await client.hscan(keys.upstreams(owner), cursor, 'COUNT', count);
        const tracked: TrackedUpstream[] = [];
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const u = decodeUpstream(flat[i] ?? '', flat[i + 1] ?? '');
          if (u) tracked.push(u);
        }
        // One PEXPIRETIME per record, each in its principal's slot (a Cluster spreads them).
        const ends = await Promise.all(tracked.map(async (u) => endOf(await client.pexpiretime(keys.session(u.principal, u.key)))));
        return { cursor: next, gone: tracked.filter((_, i) => (ends[i] ?? null) === null || Number(ends[i]) <= now) };
      }),
    auditAppend: (replica, lines) =>
      run(async () => {
        const batch = client.pipeline();
        for (const line of lines) batch.xadd(keys.audit(replica), '*', 'r', line);
        const results = (await batch.exec()) ?? [];
        const failed = results.find(([err]) => err);
        if (failed) throw failed[0];
      }),
    auditRead: (replica) =>
      run(async () => (await client.xrange(keys.audit(replica), '-', '+')).map(([, fields]) => fields[1] ?? '')),
    onReconnect: (listener) => {
      client.on('ready', listener);
    },
    deleteKey: (kid) => run(async () => (await client.hdel(keys.keys, kid)) === 1),
    initSecret: (name, value) =>
      run(async () => {
        // SET NX GET (Redis 7): the first replica's value wins and every replica reads the winner.
        const previous = await client.set(keys.secret(name), value, 'NX', 'GET');
        return previous ?? value;
      }),

    limiter: (o) => {
      const limiter = new RedisLimiter(client, keys.limiterPrefix(o.keyPrefix), o, { clock: options.clock, coalesce });
      return cache && o.lease ? leasedLimiter(limiter, cache, options.clock) : limiter;
    },

    countAllSessions: () =>
      run(async () => {
        const principals = await allPrincipals();
        const counts = await Promise.all(principals.map((p) => client.zcard(keys.sessionIndex(p))));
        return counts.reduce((a, b) => a + b, 0);
      }),

    putTransient: (name, value, ttlMs) =>
      run(async () => {
        const now = options.clock();
        await client.set(keys.transient(name), stamp(now + ttlMs, value), 'PX', collectAfter(now + ttlMs, now));
      }),
    getTransient: (name) => run(async () => unstamp(await client.get(keys.transient(name)), options.clock())),
    takeTransient: (name) => run(async () => unstamp(await client.getdel(keys.transient(name)), options.clock())),
    announceReplica: (id, url, ttlMs) =>
      run(async () => {
        const now = options.clock();
        await client.set(keys.replica(id), stamp(now + ttlMs, url), 'PX', collectAfter(now + ttlMs, now));
      }),
    replicaUrl: (id) => run(async () => unstamp(await client.get(keys.replica(id)), options.clock())),
    forgetReplica: (id) => run(async () => void (await client.del(keys.replica(id)))),
    ping: () => run(async () => void (await client.ping())),

    clientCache: () => cache && { healthy: cache.healthy },
    close: async () => {
      await cache?.close();
      client.disconnect();
    },
  };
  return store;
}
