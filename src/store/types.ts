/**
 * What the store keeps, as small interfaces by concern: the records, and one interface per part
 * of the store that a caller depends on. `Store` is their union; a caller that needs one concern
 * takes that interface. The implementations (memory.ts, redis.ts) import only this module, and the
 * factory (create.ts) imports them: no import circle.
 */
import type { RateLimiterRes } from 'rate-limiter-flexible';

/**
 * A proxy session as stored: what the proxy needs to forward a request of this session.
 * `key` is the store key of the proxy session id (see session/session-id.ts), never the id itself.
 */
export interface SessionRecord {
  readonly key: string;
  readonly principal: string;
  readonly grantId: string;
  /** Index into `upstreams` of the target this session is pinned to (replicas share the list). */
  readonly upstream: number;
  readonly upstreamSessionId: string;
  /** Hash of the optional binding (user agent, address prefix); empty when only bound to the client. */
  readonly fingerprint: string;
  readonly createdAt: number;
  /**
   * Sidecar layout: the replica whose local upstream holds the upstream session (requests landing
   * elsewhere are relayed to it); null when the upstreams are shared (gateway layout).
   */
  readonly owner: string | null;
}

/** A session as listed by the CLI: the record and when it expires unless used again. */
export interface SessionInfo extends SessionRecord {
  readonly expiresAt: number;
}

/** What the request path needs about a token's caller, loaded in one round trip. */
export interface StateQuery {
  readonly principal: string;
  readonly jti: string | null;
  readonly grantId: string | null;
  /** Store key of the presented proxy session id, or null when the request has none. */
  readonly sessionKey: string | null;
  readonly now: number;
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
}

export interface RequestState {
  /** The token's jti or grant is revoked. */
  readonly revoked: boolean;
  /** Tokens issued before this instant are invalid, and sessions created before it ended (0: none). */
  readonly clientCutoff: number;
  /** The session, already slid to its new idle expiry, or null when unknown or expired. */
  readonly session: SessionRecord | null;
}

/** One counter of a rate limiter, as the hot path names it. */
export interface CounterRef {
  readonly limiter: Limiter;
  readonly key: string;
}

/** The rate-limit counters that ride with the MCP path's state query. */
export interface RequestCounters {
  /** One point is consumed (the client's request limit). */
  readonly consume: CounterRef;
  /** Read without consuming (the address's failed attempts); null when not wanted. */
  readonly peek: CounterRef | null;
}

export interface RequestLoad {
  readonly state: RequestState;
  /** The consumed counter; `allowed` is false once it went over its points. */
  readonly consumed: { readonly allowed: boolean; readonly res: RateLimiterRes };
  /** The peeked counter; null when absent (or not asked for). */
  readonly peeked: RateLimiterRes | null;
}

export interface SessionLimits {
  readonly maxConcurrent: number;
  readonly onLimit: 'reject' | 'evict-oldest';
  readonly now: number;
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
}

/** A session the cap ended to make room for a new one, with where its upstream session lives. */
export interface EvictedSession {
  readonly key: string;
  /** null when the record could not be read: nothing to tell an upstream then. */
  readonly upstream: { readonly index: number; readonly sessionId: string } | null;
}

export type CreateResult = { readonly created: true; readonly evicted: readonly EvictedSession[] } | { readonly created: false };

/** A refresh token as stored (keyed by the SHA-256 of the token, never the token). */
export interface RefreshRecord {
  readonly grantId: string;
  /** When the grant's tokens were issued: a client cutoff after it invalidates the refresh token too. */
  readonly issuedAt: number;
  readonly scope: string;
  readonly audience: string;
  readonly expiresAt: number;
}

export type RefreshUse =
  | { readonly status: 'ok'; readonly record: RefreshRecord }
  | { readonly status: 'reused'; readonly record: RefreshRecord }
  | { readonly status: 'unknown' };

/** An upstream session the proxy made, kept apart from its session record so it outlives it. */
export interface TrackedUpstream {
  readonly principal: string;
  readonly key: string;
  readonly index: number;
  readonly sessionId: string;
}

export type Persistence = 'aof' | 'rdb' | 'none' | 'unknown' | 'memory';

/** A client managed through the store (`mcp-warden client add`). */
export interface StoredClient {
  readonly id: string;
  readonly secretHash: string;
  readonly scopes: readonly string[];
  readonly maxSessions: number | null;
  readonly rateLimit: { readonly points: number; readonly durationMs: number } | null;
  readonly createdAt: number;
}

/** A signing key of the key ring. Secrets and private keys are JWK/base64url text. */
export interface StoredKey {
  readonly kid: string;
  readonly alg: 'HS256' | 'EdDSA' | 'ES256';
  readonly createdAt: number;
  /** HS256: base64url secret. EdDSA/ES256: private JWK as JSON. */
  readonly material: string;
}

/** What the limiters module uses of a rate-limiter-flexible instance. */
export interface Limiter {
  /** Resolves with the new state, rejects with a RateLimiterRes when over the limit (an Error when the store fails). */
  consume(key: string): Promise<RateLimiterRes>;
  get(key: string): Promise<RateLimiterRes | null>;
  /** Gives a point back (an in-flight count going down). */
  reward(key: string): Promise<void>;
  /** Keys with a live counter (the admin API lists blocked addresses from these). */
  keys(): Promise<string[]>;
  delete(key: string): Promise<void>;
}

export interface LimiterOptions {
  readonly keyPrefix: string;
  /**
   * Its keys are principals. On Redis such counters share the principal's Cluster slot, so the
   * hot path consumes them in the same script as the principal's state.
   */
  readonly perPrincipal?: boolean;
  /**
   * May be counted from a lease (Redis with store.clientCache): a replica takes a few points at once
   * and uses them without a round trip. Replicas together never pass the limit; one may be refused
   * while another still holds points (at most one lease each, see client-cache.ts leaseSize). For
   * counters that only count up (not for one given points back with reward).
   */
  readonly lease?: boolean;
  readonly points: number;
  readonly durationMs: number;
  readonly blockMs?: number;
}

/** The request path's state: revocations, the client cutoff and the session, read in one go. */
export interface RequestStateStore {
  /** Revocation state of the token and the session, slid forward: one round trip. */
  loadRequestState(query: StateQuery): Promise<RequestState>;
  /**
   * The hot path: {@link loadRequestState} plus one point of `consume` and a read of `peek`. One
   * round trip on a single Redis node; on a Cluster the peeked counter lives in another slot and
   * costs a second command, in the same turn. A store that has the answer in the process (the
   * memory store, the client cache on a hit) returns it as is, not as a promise: every MCP request
   * asks, and callers await only a promise.
   */
  loadRequest(query: StateQuery, counters: RequestCounters): RequestLoad | Promise<RequestLoad>;
}

/** Rate-limit counters kept in the store. */
export interface LimitStore {
  /** A rate limiter whose counters live in this store. */
  limiter(options: LimiterOptions): Limiter;
}

/** Proxy sessions of principals, capped per principal. */
export interface SessionStore {
  /** Open sessions of a principal (dead ones pruned): the pre-check before forwarding initialize. */
  countSessions(principal: string, now: number): Promise<number>;
  /** Stores a new session, enforcing the cap atomically (reject, or evict the oldest). */
  createSession(record: SessionRecord, limits: SessionLimits): Promise<CreateResult>;
  deleteSession(principal: string, key: string): Promise<boolean>;
  listSessions(principal: string | null, now: number): Promise<SessionInfo[]>;
  /** Open sessions across all principals (the metrics gauge); may include some not yet pruned. */
  countAllSessions(now: number): Promise<number>;
}

/** Revoked tokens and grants, and per-principal cutoffs. */
export interface RevocationStore {
  /** Revokes one access token until it would have expired anyway. */
  revokeToken(principal: string, jti: string, expiresAt: number, now: number): Promise<void>;
  /** Revokes a grant (all its tokens) and ends the sessions it created. */
  revokeGrant(principal: string, grantId: string, ttlMs: number, now: number): Promise<number>;
  /** Invalidates everything the principal holds: tokens issued before `cutoff` and all sessions. */
  revokePrincipal(principal: string, cutoff: number, ttlMs: number): Promise<number>;
}

export interface RefreshTokenStore {
  putRefreshToken(principal: string, hash: string, record: RefreshRecord, now: number): Promise<void>;
  /** Marks a refresh token used; a second use reports `reused` (the caller then revokes the grant). */
  useRefreshToken(principal: string, hash: string, now: number): Promise<RefreshUse>;
}

/** Operator-managed clients (durable: traffic never evicts them). */
export interface ClientStore {
  getClient(id: string): Promise<StoredClient | null>;
  putClient(client: StoredClient): Promise<void>;
  deleteClient(id: string): Promise<boolean>;
  listClients(): Promise<StoredClient[]>;
}

/** The shared signing key ring (durable). */
export interface KeyStore {
  getKeys(): Promise<StoredKey[]>;
  /** Adds a key; with `onlyIfNone`, only when the ring is empty (replicas racing at first start). */
  addKey(key: StoredKey, onlyIfNone: boolean): Promise<boolean>;
  /** Removes a key from the shared ring (retired: tokens it signed stop verifying); false when unknown. */
  deleteKey(kid: string): Promise<boolean>;
}

/** Values every replica must agree on (the session-id secret, the store's generation marker). */
export interface SecretStore {
  /** Stores `value` under `name` unless one exists (SET NX); returns the value that won. */
  initSecret(name: string, value: string): Promise<string>;
}

/**
 * The upstream session behind each proxy session, noted before the record is made: when the record
 * ends (idle, lifetime, revocation, eviction, a lost race), the sweeper still knows what to end
 * upstream. `owner` is the replica whose upstream it is (sidecar layout), '' when shared.
 */
export interface UpstreamLedger {
  trackUpstream(owner: string, upstream: TrackedUpstream): Promise<void>;
  /** Forgets one; true only for the caller that removed it (so one replica ends it upstream). */
  untrackUpstream(owner: string, principal: string, key: string): Promise<boolean>;
  /** A page of tracked upstream sessions whose proxy session is gone; cursor '0' starts and ends. */
  goneUpstreams(owner: string, cursor: string, count: number, now: number): Promise<{ cursor: string; gone: TrackedUpstream[] }>;
}

/** Audit trails, one per replica (a Redis Stream; an array in the memory store). */
export interface AuditStore {
  auditAppend(replica: string, lines: readonly string[]): Promise<void>;
  /** A replica's audit trail lines, oldest first (for `audit verify`). */
  auditRead(replica: string): Promise<string[]>;
}

/**
 * Short-lived sign-in state (pending logins, authorization codes, remembered consents): a value
 * under a name, gone after `ttlMs`. Names are built by the caller from random or hashed parts.
 */
export interface TransientStore {
  putTransient(name: string, value: string, ttlMs: number): Promise<void>;
  getTransient(name: string): Promise<string | null>;
  /** Reads and deletes in one step: what is taken once (a code, a login) cannot be taken twice. */
  takeTransient(name: string): Promise<string | null>;
}

/** Sidecar layout: where each live replica is reachable. */
export interface ReplicaRegistry {
  /** This replica is reachable at `url` for `ttlMs` (refreshed while it runs). */
  announceReplica(id: string, url: string, ttlMs: number): Promise<void>;
  /** Where a live replica is reachable, or null when it is gone (no announcement within its TTL). */
  replicaUrl(id: string): Promise<string | null>;
  /** A replica that stops says so at once, so its sessions end now rather than at the TTL. */
  forgetReplica(id: string): Promise<void>;
}

/** The store as a connection: what it is, whether it answers and keeps its data, and its end. */
export interface StoreConnection {
  readonly kind: 'memory' | 'redis';
  /**
   * Whether the store keeps its data on disk: `aof` or `rdb`, `none` (a restart empties it),
   * `unknown` (the server would not say), `memory` (the process is the store).
   */
  persistence(): Promise<Persistence>;
  /** Calls `listener` each time the connection to the store is (re)established; never for the memory store. */
  onReconnect(listener: () => void): void;
  /** For /readyz: resolves when the store answers. */
  ping(): Promise<void>;
  /** The Redis client-side cache (store.clientCache): whether its invalidation channel is up; null without one. */
  clientCache(): { readonly healthy: boolean } | null;
  close(): Promise<void>;
}

/**
 * Everything mcp-warden keeps: every concern above on one connection. `memory` and `redis`
 * implement it and one contract suite per concern tests both. Every key derived from traffic expires.
 */
export interface Store
  extends StoreConnection, RequestStateStore, LimitStore, SessionStore, RevocationStore, RefreshTokenStore, ClientStore,
    KeyStore, SecretStore, UpstreamLedger, AuditStore, TransientStore, ReplicaRegistry {}
