import { RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config/schema.js';
import type { Limit } from '../config/fields.js';
import { WardenError } from '../errors.js';
import type { RefusalDetail } from '../errors.js';
import { addressPrefix, formatAddressPrefix } from '../http/headers.js';
import { consumeCounter } from './load-apart.js';
import type { Limiter, LimitStore, RequestLoad, RequestState, RequestStateStore, StateQuery } from './types.js';

/** The state of one limit after a request consumed from it. */
export interface LimitResult {
  readonly allowed: boolean;
  /** For `RateLimit-Policy` / `RateLimit` headers and `Retry-After`. */
  readonly limit: NonNullable<RefusalDetail['limit']>;
}

/** The limiter names used in headers, events and metrics labels (a closed set). */
export type LimiterName = 'client' | 'session_create' | 'token_endpoint' | 'failed_attempts' | 'register';

/** What {@link Limiters.forRequest} found. */
export interface RequestLimits {
  readonly state: RequestState;
  readonly limit: LimitResult;
  /** Milliseconds the address stays blocked for failed attempts (0: not blocked, or not asked). */
  readonly blockedMs: number;
}

export interface Limiters {
  /**
   * The MCP path's one store call: the request state, one request of the client's limit consumed
   * (per-client override honoured) and, when `address` is given, its failed-attempt block read.
   */
  forRequest(query: StateQuery, override: Pick<Limit, 'points' | 'durationMs'> | null, address: string | null): RequestLimits | Promise<RequestLimits>;
  /** The request state alone, for a relayed request whose limits the relaying replica applied. */
  requestState(query: StateQuery): Promise<RequestState>;
  /** One new session of a principal. */
  sessionCreate(principal: string): Promise<LimitResult>;
  /** One token-endpoint request of a source address (taken before any secret is checked). */
  tokenEndpoint(address: string): Promise<LimitResult>;
  /**
   * One token-endpoint request of an authenticated client. Taken only once the secret was right,
   * so nobody can spend a client's budget by guessing at its secret (the address pays for that).
   */
  tokenClient(clientId: string): Promise<LimitResult>;
  /** One dynamic client registration (RFC 7591) of a source address. */
  register(address: string): Promise<LimitResult>;
  /** Milliseconds an address stays blocked for failed attempts (0: not blocked). */
  blockedFor(address: string): Promise<number>;
  /**
   * Counts a failed attempt of an address (bad token, bad secret, unknown session). True when this
   * attempt crossed the threshold, i.e. the block starts now (once per block, whatever the replica).
   */
  failedAttempt(address: string): Promise<boolean>;
  /** Addresses (as counted: an IPv6 /64 is one) blocked now, and for how much longer. */
  blocked(): Promise<{ address: string; remainingMs: number }[]>;
  /** Lifts an address's block (and forgets its failures); true when it was blocked. */
  unblock(address: string): Promise<boolean>;
  /** The failed-attempt budget, for the `RateLimit-Policy` of a blocked address's 429. */
  readonly failedAttemptsPolicy: { readonly points: number; readonly windowSeconds: number };
}

function result(res: RateLimiterRes, limit: Pick<Limit, 'points' | 'durationMs'>, allowed: boolean): LimitResult {
  return { allowed, limit: { points: limit.points, windowSeconds: Math.ceil(limit.durationMs / 1000), remaining: res.remainingPoints, resetMs: res.msBeforeNext } };
}

function storeUnavailable(err: unknown, onStoreError: (err: unknown) => void): WardenError {
  onStoreError(err);
  return new WardenError('STORE_UNAVAILABLE', { reason: 'store', retryAfterMs: 2_000, cause: err });
}

/** The address key: IPv6 clients usually hold a whole /64, so that is what is counted. */
function computeAddressKey(address: string): string {
  return addressPrefix(address, 32, 64);
}

// Every MCP request asks for its address's key, and a client keeps its address: remembered, in a
// map that is emptied when full (addresses come from the network, so it must stay bounded).
const addressKeys = new Map<string, string>();
const ADDRESS_KEYS_MAX = 4096;

function addressKey(address: string): string {
  let key = addressKeys.get(address);
  if (key === undefined) {
    if (addressKeys.size >= ADDRESS_KEYS_MAX) addressKeys.clear();
    addressKeys.set(address, (key = computeAddressKey(address)));
  }
  return key;
}

/**
 * Every rate limit, as counters in the same store as everything else (store/counter.ts: the
 * semantics of rate-limiter-flexible's fixed window and block, on the injected clock).
 */
export function createLimiters(store: RequestStateStore & LimitStore, limits: Config['rateLimits'], options: { onStoreError?: (err: unknown) => void } = {}): Limiters {
  const onStoreError = options.onStoreError ?? (() => {});
  /** Consumes a point; a refusal is a result, a store failure is a 503 (fail closed). */
  async function consume(limiter: Limiter, key: string, limit: Pick<Limit, 'points' | 'durationMs'>): Promise<LimitResult> {
    try {
      const { allowed, res } = await consumeCounter(limiter, key);
      return result(res, limit, allowed);
    } catch (err) {
      throw storeUnavailable(err, onStoreError);
    }
  }
  const make = (name: string, limit: Limit, perPrincipal = false): Limiter =>
    store.limiter({ keyPrefix: name, points: limit.points, durationMs: limit.durationMs, blockMs: limit.blockMs, perPrincipal });
  const client = make('client', limits.client, true);
  const overrides = new Map<string, Limiter>();
  const sessionCreate = make('session', limits.sessionCreate);
  const tokenByAddress = make('token-ip', limits.tokenEndpoint);
  const tokenByClient = make('token-client', limits.tokenEndpoint);
  const registerByAddress = make('register-ip', limits.register);
  // The Nth failure within the window blocks the address (a counter blocks once consumed > points).
  const failed = make('failed', { ...limits.failedAttempts, points: limits.failedAttempts.points - 1 });

  // Per override object first (a client's settings are one object while they last), so the hot
  // path builds no name string; by name for clients whose settings are equal.
  const overrideObjects = new WeakMap<object, Limiter>();
  function clientLimiter(override: Pick<Limit, 'points' | 'durationMs'>): Limiter {
    let limiter = overrideObjects.get(override);
    if (limiter) return limiter;
    const name = `client-${override.points}-${override.durationMs}`;
    limiter = overrides.get(name);
    if (!limiter) overrides.set(name, (limiter = make(name, { ...override, blockMs: 0 }, true)));
    overrideObjects.set(override, limiter);
    return limiter;
  }

  const blockedMs = (res: RateLimiterRes | null): number => (res && res.consumedPoints >= limits.failedAttempts.points ? res.msBeforeNext : 0);

  return {
    // Synchronous when the store answered synchronously (see RequestStateStore.loadRequest).
    forRequest(query, override, address) {
      const failure = (err: unknown): never => {
        throw err instanceof WardenError ? err : storeUnavailable(err, onStoreError);
      };
      const limitsOf = (load: RequestLoad): RequestLimits => ({
        state: load.state, limit: result(load.consumed.res, override ?? limits.client, load.consumed.allowed), blockedMs: blockedMs(load.peeked),
      });
      let load: RequestLoad | Promise<RequestLoad>;
      try {
        load = store.loadRequest(query, {
          consume: { limiter: override ? clientLimiter(override) : client, key: query.principal },
          peek: address === null ? null : { limiter: failed, key: addressKey(address) },
        });
      } catch (err) {
        return failure(err);
      }
      return load instanceof Promise ? load.then(limitsOf, failure) : limitsOf(load);
    },
    async requestState(query) {
      try {
        return await store.loadRequestState(query);
      } catch (err) {
        throw err instanceof WardenError ? err : storeUnavailable(err, onStoreError);
      }
    },
    sessionCreate: (principal) => consume(sessionCreate, principal, limits.sessionCreate),
    tokenEndpoint: (address) => consume(tokenByAddress, addressKey(address), limits.tokenEndpoint),
    tokenClient: (clientId) => consume(tokenByClient, clientId, limits.tokenEndpoint),
    register: (address) => consume(registerByAddress, addressKey(address), limits.register),
    async blockedFor(address) {
      try {
        return blockedMs(await failed.get(addressKey(address)));
      } catch (err) {
        throw storeUnavailable(err, onStoreError);
      }
    },
    async failedAttempt(address) {
      try {
        await failed.consume(addressKey(address));
        return false;
      } catch (err) {
        // The counter only grows within a window, so exactly one attempt lands on the threshold.
        if (err instanceof RateLimiterRes) return err.consumedPoints === limits.failedAttempts.points;
        throw storeUnavailable(err, onStoreError);
      }
    },
    async blocked() {
      try {
        const rows = await Promise.all((await failed.keys()).map(async (key) => ({ address: formatAddressPrefix(key), remainingMs: blockedMs(await failed.get(key)) })));
        return rows.filter((r) => r.remainingMs > 0).sort((a, b) => b.remainingMs - a.remainingMs);
      } catch (err) {
        throw storeUnavailable(err, onStoreError);
      }
    },
    async unblock(address) {
      try {
        // As listed (`203.0.113.7/32`) or any address inside the counted prefix.
        const key = addressKey(address.replace(/\/\d+$/, ''));
        const was = blockedMs(await failed.get(key)) > 0;
        await failed.delete(key);
        return was;
      } catch (err) {
        throw storeUnavailable(err, onStoreError);
      }
    },
    failedAttemptsPolicy: { points: limits.failedAttempts.points, windowSeconds: Math.ceil(limits.failedAttempts.durationMs / 1000) },
  };
}
