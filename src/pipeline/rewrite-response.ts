import { appSessionGrant } from '../login/principal.js';
import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { logEvent } from '../observability/events.js';
import type { FingerprintInput } from '../session/binding.js';
import type { SessionIds } from '../session/session-id.js';
import type { SessionStore, UpstreamLedger } from '../store/types.js';
import { endingOf } from '../session/end-session.js';
import type { SessionEnder } from '../session/end-session.js';
import type { StreamGauge } from '../session/streams.js';

export interface RewriteDeps {
  readonly store: SessionStore & UpstreamLedger;
  readonly sessionIds: SessionIds;
  readonly fingerprint: (input: FingerprintInput) => string;
  readonly maxConcurrent: number;
  readonly onLimit: 'reject' | 'evict-oldest';
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
  readonly clock: () => number;
  /** Sidecar layout: this replica, the owner of the sessions it creates; null in the gateway layout. */
  readonly owner: string | null;
  /** Best effort: tells upstream `upstreamIndex` to drop a session the proxy never made (over the stream cap). */
  readonly endUpstreamSession: (upstreamIndex: number, upstreamSessionId: string) => void;
  /** How sessions end (record, upstream, event): eviction, an upstream that forgot one, DELETE. */
  readonly ender: SessionEnder;
}

const SESSION_HEADER = 'mcp-session-id';
// An upstream's "session not found" (MCP convention), as opposed to a 404 "method not found".
const SESSION_GONE = -32001;
const MAX_ERROR_BODY = 64 * 1024;

/**
 * Response stage: the upstream's `Mcp-Session-Id` never reaches a client. On an initialize it is
 * stored (cap enforced atomically) and replaced by a new proxy id; on every other response it is
 * replaced by the caller's own proxy id, or dropped when the request had none.
 */
export function swapSessionId(deps: RewriteDeps) {
  const owner = deps.owner ?? '';
  // Synchronous unless a session is minted: the hot path (a request inside a session) awaits nothing.
  return function swapSessionId(ctx: RequestContext): void | Promise<void> {
    const response = need(ctx.response, 'ctx.response');
    const upstreamId = response.headers[SESSION_HEADER];
    // Replaced in place when there is a proxy id to put there: a delete would turn the header
    // object into a slow dictionary for the rest of its life (writeHead walks it).
    if (ctx.session && ctx.presentedSessionId !== null) response.headers[SESSION_HEADER] = ctx.presentedSessionId;
    else if (upstreamId !== undefined) delete response.headers[SESSION_HEADER];
    if (!ctx.creating || typeof upstreamId !== 'string' || response.status < 200 || response.status > 299) return undefined;
    return mint(ctx, upstreamId);
  };

  async function mint(ctx: RequestContext, upstreamId: string): Promise<void> {
    const response = need(ctx.response, 'ctx.response');
    const identity = need(ctx.identity, 'ctx.identity');
    const minted = deps.sessionIds.mint(identity.principal);
    const now = deps.clock();
    const record = {
      key: minted.key,
      principal: identity.principal,
      grantId: identity.user !== null ? appSessionGrant(identity.clientId) : identity.grantId ?? '',
      upstream: need(ctx.upstreamIndex, 'ctx.upstreamIndex'),
      upstreamSessionId: upstreamId,
      fingerprint: deps.fingerprint({ userAgent: ctx.req.headers['user-agent'], address: ctx.clientAddress }),
      createdAt: now,
      owner: deps.owner,
    };
    // Noted first: however this session ends, even if it is never made, its upstream one is ended.
    const tracked = { principal: record.principal, key: record.key, index: record.upstream, sessionId: upstreamId };
    await deps.store.trackUpstream(owner, tracked);
    const max = ctx.client?.maxSessions ?? deps.maxConcurrent;
    const result = await deps.store.createSession(record, { maxConcurrent: max, onLimit: deps.onLimit, now, idleTimeoutMs: deps.idleTimeoutMs, maxLifetimeMs: deps.maxLifetimeMs });
    if (!result.created) {
      // Lost a race for the last slot: the upstream session would be orphaned, so end it there too.
      await deps.ender.abandon(endingOf(record));
      throw new WardenError('SESSION_LIMIT', { retryAfterMs: 60_000 });
    }
    for (const evicted of result.evicted) {
      logEvent(ctx.log, 'session.evicted', { clientId: identity.clientId, sessionId: evicted.key, address: ctx.clientAddress });
      // The store removed its record with the cap check; its upstream session ends here.
      await deps.ender.ended({ principal: record.principal, key: evicted.key, upstream: evicted.upstream }, 'evicted', { log: ctx.log, clientId: identity.clientId, address: ctx.clientAddress });
    }
    logEvent(ctx.log, 'session.created', { clientId: identity.clientId, sessionId: minted.key, address: ctx.clientAddress });
    response.headers[SESSION_HEADER] = minted.id;
  }
}

// JSON-RPC "method not found": a 404 that is about the method, not the session.
const METHOD_NOT_FOUND = -32601;
// How example servers (the SDKs' own examples among them) answer a session they do not know with
// 400: "Bad Request: No valid session ID provided", "Invalid or missing session ID", ...
const NO_SESSION_400 = /\bsession\b/i;
const NO_SESSION_WORDS = /\b(no valid|invalid|unknown|not found|missing|expired|terminated)\b/i;

/** The JSON-RPC error of an upstream body, if it is one. */
function rpcErrorOf(body: Buffer | null): { code: unknown; message: unknown } | null {
  try {
    const error = (JSON.parse(body?.toString('utf8') ?? '') as { error?: { code?: unknown; message?: unknown } }).error;
    return typeof error === 'object' && error !== null ? { code: error.code, message: error.message } : null;
  } catch {
    return null;
  }
}

/**
 * Response stage: the upstream forgot a mapped session (restart, expiry). SDKs say so differently
 * (TypeScript 404 -32001, Python 404 -32600, example servers 400 "No valid session ID"), so any
 * 404 other than "method not found", and a 400 that names a missing session, counts. The record
 * goes, and the client always gets MCP's 404 -32001 so that it re-initializes.
 */
export function forgetGoneSession(deps: RewriteDeps) {
  return function forgetGoneSession(ctx: RequestContext): void | Promise<void> {
    const response = need(ctx.response, 'ctx.response');
    // A relayed request's owner replica already judged its upstream's answer.
    if ((response.status !== 404 && response.status !== 400) || !ctx.session || ctx.relayTo !== null) return undefined;
    return judge(ctx, ctx.session);
  };

  async function judge(ctx: RequestContext, session: NonNullable<RequestContext['session']>): Promise<void> {
    const response = need(ctx.response, 'ctx.response');
    const body = await response.readBody(MAX_ERROR_BODY);
    // Cut or oversized: nothing to judge by (a cut one becomes a 502, never a truncated answer).
    if (body === null) return;
    const error = rpcErrorOf(body);
    const gone = response.status === 404
      ? error?.code !== METHOD_NOT_FOUND
      : typeof error?.message === 'string' && NO_SESSION_400.test(error.message) && NO_SESSION_WORDS.test(error.message);
    if (!gone) return;
    // The upstream already forgot it: nothing to end there.
    await deps.ender.end(endingOf(session), 'upstream_gone', { log: ctx.log, clientId: ctx.identity?.clientId, address: ctx.clientAddress });
    response.status = 404;
    response.headers['content-type'] = 'application/json';
    delete response.headers['content-encoding'];
    response.body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', error: { code: SESSION_GONE, message: 'Session not found' }, id: ctx.message?.id ?? null }));
  }
}

/** Response stage: DELETE ends the proxy session whatever the upstream answered (405 included). */
export function endOnDelete(deps: RewriteDeps) {
  return function endOnDelete(ctx: RequestContext): void | Promise<void> {
    return ctx.req.method === 'DELETE' && ctx.session ? end(ctx, ctx.session) : undefined;
  };

  async function end(ctx: RequestContext, session: NonNullable<RequestContext['session']>): Promise<void> {
    // The client's DELETE went upstream already.
    await deps.ender.end(endingOf(session), 'delete', { log: ctx.log, clientId: ctx.identity?.clientId, address: ctx.clientAddress });
  }
}

/**
 * Response stage, first: a POST answered as an event stream is a stream like a GET one, holding a
 * client and an upstream socket for as long as the upstream keeps it open, so it counts against
 * the client's `sessions.maxStreams` too. Over the cap: 429, and an upstream session the answer
 * had just created is ended upstream (nothing will ever use it).
 */
export function capStreams(deps: { readonly streams: StreamGauge; readonly endUpstreamSession: RewriteDeps['endUpstreamSession'] }) {
  return function capStreams(ctx: RequestContext): void {
    const response = need(ctx.response, 'ctx.response');
    if (ctx.req.method !== 'POST' || !String(response.headers['content-type'] ?? '').startsWith('text/event-stream')) return;
    if (deps.streams.admit(need(ctx.identity, 'ctx.identity').principal, ctx.res)) return;
    const created = response.headers[SESSION_HEADER];
    if (ctx.creating && typeof created === 'string' && ctx.upstreamIndex !== null) deps.endUpstreamSession(ctx.upstreamIndex, created);
    throw new WardenError('STREAM_LIMIT', { reason: 'streams', retryAfterMs: 5_000 });
  };
}
