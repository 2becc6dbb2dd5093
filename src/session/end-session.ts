import type { Logger } from '../observability/logger.js';
import { logEvent } from '../observability/events.js';
import type { SessionRecord, Store } from '../store/types.js';

/**
 * Why a session ended (`session.ended`'s reason and the metric's label):
 * - `delete`: the client's DELETE (it went upstream itself);
 * - `upstream_gone`: the upstream forgot it (restart, its own expiry);
 * - `owner_gone`: sidecar layout, the replica holding its upstream session is gone;
 * - `stream_closed`: a legacy HTTP+SSE stream closed (the stream was the session);
 * - `evicted`: the cap made room for a newer one (`sessions.onLimit: evict-oldest`);
 * - `revoked`: its grant, client or user was revoked;
 * - `operator`: `session revoke` or the admin API;
 * - `expired`: idle timeout or lifetime (the store dropped the record; the sweeper found it).
 */
export type EndReason = 'delete' | 'upstream_gone' | 'owner_gone' | 'stream_closed' | 'evicted' | 'revoked' | 'operator' | 'expired';

export const END_REASONS: ReadonlySet<EndReason> = new Set<EndReason>(['delete', 'upstream_gone', 'owner_gone', 'stream_closed', 'evicted', 'revoked', 'operator', 'expired']);

/** Reasons whose upstream session is already over: it is only forgotten, not ended there. */
const UPSTREAM_DONE: ReadonlySet<EndReason> = new Set<EndReason>(['delete', 'upstream_gone', 'stream_closed']);

/** A session to end: its record's key, and its upstream session when known (null: the sweeper ends it upstream). */
export interface EndingSession {
  readonly principal: string;
  readonly key: string;
  readonly upstream: { readonly index: number; readonly sessionId: string } | null;
}

/** Who is ending it, for the event: a request's logger and caller, or the proxy's own. */
export interface EndContext {
  readonly log?: Logger;
  readonly clientId?: string | undefined;
  readonly address?: string;
}

export interface SessionEnder {
  /** Ends a live session: removes its record, ends it upstream, says so. False when something else ended it first. */
  end(session: EndingSession, reason: EndReason, by?: EndContext): Promise<boolean>;
  /**
   * The same for a session whose record is already gone (removed atomically with something else:
   * an eviction, a revocation, expiry): ends it upstream and says so, once across replicas.
   */
  ended(session: EndingSession, reason: EndReason, by?: EndContext): Promise<boolean>;
  /**
   * Runs `revoke` (a store revocation that removes the sessions of a principal, or of one of its
   * grants, atomically) and ends each of those sessions upstream. Sessions made while it ran are
   * left to the sweeper. Resolves with what `revoke` did.
   */
  revoking<T>(principal: string, grantId: string | null, revoke: () => Promise<T>, by?: EndContext): Promise<T>;
  /** `store.revokeGrant`, with each session it ends ended upstream and said (reason `revoked`). */
  revokeGrant(principal: string, grantId: string, ttlMs: number, now: number, by?: EndContext): Promise<number>;
  /** `store.revokePrincipal`, likewise. */
  revokePrincipal(principal: string, cutoff: number, ttlMs: number, by?: EndContext): Promise<number>;
  /** An upstream session whose proxy session was never made (a lost race for the last slot): ended upstream, no event. */
  abandon(session: EndingSession): Promise<void>;
}

export interface SessionEnderDeps {
  readonly store: Pick<Store, 'deleteSession' | 'untrackUpstream' | 'listSessions' | 'revokeGrant' | 'revokePrincipal'>;
  /** This replica in the sidecar layout, '' when the upstreams are shared. */
  readonly owner: string;
  /** DELETE upstream, best effort and bounded (the upstream pool with `security.upstreamTimeout`); null: leave it to the sweeper. */
  readonly endUpstream: ((upstreamIndex: number, upstreamSessionId: string) => void) | null;
  readonly clock: () => number;
  readonly log: Logger;
}

/** The upstream part of a record, as an ending session. */
export const endingOf = (record: Pick<SessionRecord, 'principal' | 'key' | 'upstream' | 'upstreamSessionId'>): EndingSession => ({
  principal: record.principal, key: record.key, upstream: { index: record.upstream, sessionId: record.upstreamSessionId },
});

/**
 * The one way a proxy session ends, whatever ends it (DELETE, eviction, an upstream 404, expiry,
 * revocation, an operator): the record goes, the upstream session is ended through the upstream
 * pool, and `session.ended` says why. Every upstream session is noted in the store when it is made
 * (see sweep-upstreams.ts); removing that note is atomic, so exactly one replica ends it upstream,
 * and what this path cannot end now (the upstream unknown, the store away) the sweeper ends later.
 */
export function createSessionEnder(deps: SessionEnderDeps): SessionEnder {
  /** Takes the upstream note and ends the upstream session if it is still on; false when another path had taken the note. */
  async function settleUpstream(s: EndingSession, reason: EndReason): Promise<boolean> {
    // Unknown (or another replica's, sidecar): the note stays for the sweeper that knows it.
    if (s.upstream === null) return true;
    let mine = true;
    try {
      mine = await deps.store.untrackUpstream(deps.owner, s.principal, s.key);
    } catch {
      // The store is away: end it anyway (a second DELETE upstream is harmless; a leak is not).
    }
    if (mine && deps.endUpstream && !UPSTREAM_DONE.has(reason)) deps.endUpstream(s.upstream.index, s.upstream.sessionId);
    return mine;
  }

  const say = (s: EndingSession, reason: EndReason, by: EndContext): void => {
    logEvent(by.log ?? deps.log, 'session.ended', { reason, clientId: by.clientId ?? s.principal, sessionId: s.key, address: by.address });
  };

  async function ended(s: EndingSession, reason: EndReason, by: EndContext = {}): Promise<boolean> {
    const mine = await settleUpstream(s, reason);
    if (mine) say(s, reason, by);
    return mine;
  }

  async function revoking<T>(principal: string, grantId: string | null, revoke: () => Promise<T>, by: EndContext = {}): Promise<T> {
    const before = (await deps.store.listSessions(principal, deps.clock())).filter((s) => grantId === null || s.grantId === grantId);
    const result = await revoke();
    for (const s of before) await ended(endingOf(s), 'revoked', by);
    return result;
  }

  return {
    ended,
    revoking,
    revokeGrant: (principal, grantId, ttlMs, now, by) => revoking(principal, grantId, () => deps.store.revokeGrant(principal, grantId, ttlMs, now), by),
    revokePrincipal: (principal, cutoff, ttlMs, by) => revoking(principal, null, () => deps.store.revokePrincipal(principal, cutoff, ttlMs), by),
    async end(s, reason, by = {}) {
      if (!(await deps.store.deleteSession(s.principal, s.key))) return false;
      await settleUpstream(s, reason);
      say(s, reason, by);
      return true;
    },
    async abandon(s) {
      await settleUpstream(s, 'evicted');
    },
  };
}
