import { appSessionGrant } from '../login/principal.js';
import type { SessionEnder } from '../session/end-session.js';
import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import type { FingerprintInput } from '../session/binding.js';
import type { UpstreamPicker } from '../session/upstreams.js';
import type { Limiters } from '../store/limiters.js';
import type { SessionStore } from '../store/types.js';
import type { StreamGauge } from '../session/streams.js';
import type { Relay } from '../session/relay.js';
import { logEvent } from '../observability/events.js';
import { messageReader } from './read-message.js';
import type { ReadMessage } from './read-message.js';
import { LEGACY_SESSION_PREFIX } from './legacy-sse.js';
import { grantTag } from '../store/keys.js';

export interface ResolveSessionDeps {
  readonly store: SessionStore;
  /** How a session ends (record, upstream, event). */
  readonly ender: SessionEnder;
  readonly limiters: Limiters;
  readonly upstreams: UpstreamPicker;
  readonly fingerprint: (input: FingerprintInput) => string;
  readonly maxBodyBytes: number;
  readonly maxConcurrent: number;
  readonly onLimit: 'reject' | 'evict-oldest';
  readonly streams: StreamGauge;
  readonly relay: Pick<Relay, 'replicaId' | 'ownerUrl'>;
  /** Which sessions this route serves: a legacy SSE session is unknown on the MCP path, and the reverse. */
  readonly transport: 'streamable-http' | 'legacy-sse';
  readonly clock: () => number;
  /** The message seam shared with later stages (made from maxBodyBytes when absent). */
  readonly readMessage?: ReadMessage;
}

/**
 * Stage 7. Without `Mcp-Session-Id`: an `initialize` passes the creation limits and is marked so the
 * response stage mints the proxy id; any other session-less request (stateless upstream, MCP
 * 2026-07-28) goes on as it is. With one: the id must have been valid (tag checked in stage 5),
 * found within the caller's identity, and match the binding; otherwise 404 and nothing is forwarded.
 */
export function resolveSession(deps: ResolveSessionDeps) {
  const readMessage = deps.readMessage ?? messageReader(deps.maxBodyBytes);
  async function withoutSession(ctx: RequestContext): Promise<void> {
    const identity = need(ctx.identity, 'ctx.identity');
    if (ctx.message?.isInitialize) {
      const created = await deps.limiters.sessionCreate(identity.principal);
      if (!created.allowed) throw new WardenError('RATE_LIMITED', { reason: 'session_create', limit: created.limit, retryAfterMs: created.limit.resetMs });
      if (deps.onLimit === 'reject') {
        const open = await deps.store.countSessions(identity.principal, deps.clock());
        if (open >= (ctx.client?.maxSessions ?? deps.maxConcurrent)) throw new WardenError('SESSION_LIMIT', { retryAfterMs: 60_000 });
      }
      ctx.creating = true;
    }
    ctx.upstreamIndex = deps.upstreams.next();
  }

  function withSession(ctx: RequestContext): void {
    const { session, clientCutoff } = need(ctx.state, 'ctx.state');
    if (ctx.sessionKey === null) throw new WardenError('SESSION_NOT_FOUND', { reason: 'forged' });
    if (!session || session.createdAt < clientCutoff) throw new WardenError('SESSION_NOT_FOUND', { reason: 'unknown' });
    if (session.fingerprint !== deps.fingerprint({ userAgent: ctx.req.headers['user-agent'], address: ctx.clientAddress })) {
      throw new WardenError('SESSION_BINDING_MISMATCH', { reason: 'binding' });
    }
    if (deps.upstreams.url(session.upstream) === null) throw new WardenError('SESSION_NOT_FOUND', { reason: 'unknown' });
    if (session.upstreamSessionId.startsWith(LEGACY_SESSION_PREFIX) !== (deps.transport === 'legacy-sse')) throw new WardenError('SESSION_NOT_FOUND', { reason: 'unknown' });
    // A person's session belongs to the person (the principal) and the client app they signed in
    // through: the same person in another app does not see it.
    const identity = need(ctx.identity, 'ctx.identity');
    if (identity.user !== null && session.grantId !== grantTag(appSessionGrant(identity.clientId))) throw new WardenError('SESSION_NOT_FOUND', { reason: 'foreign' });
    if (session.owner !== null && session.owner !== deps.relay.replicaId) {
      // Relayed once at most: an owner that is not this replica after a relay means the records disagree.
      if (ctx.relayedFrom !== null) throw new WardenError('SESSION_NOT_FOUND', { reason: 'unknown' });
      ctx.relayTo = session.owner;
    }
    ctx.session = session;
    ctx.upstreamSessionId = session.upstreamSessionId;
    ctx.upstreamIndex = session.upstream;
  }

  /** The owner replica's MCP URL; a session whose owner is gone ends (its upstream went with it). */
  async function ownerOf(ctx: RequestContext, owner: string): Promise<string> {
    const url = await deps.relay.ownerUrl(owner);
    if (url !== null) return url;
    const session = need(ctx.session, 'ctx.session');
    // Its upstream session lived on the owner's upstream, noted in the owner's ledger: nothing to end from here.
    await deps.ender.end({ principal: session.principal, key: session.key, upstream: null }, 'owner_gone', { log: ctx.log, clientId: ctx.identity?.clientId, address: ctx.clientAddress });
    throw new WardenError('SESSION_NOT_FOUND', { reason: 'owner_gone' });
  }

  return async function resolveSession(ctx: RequestContext): Promise<void> {
    // Every POST is read (bounded) and parsed here: a session-less one may be an initialize, and
    // metrics, traces, policy and the audit trail all name the method. A session is checked before
    // its body is read; a client that left while the store answered is not read (its body may be
    // gone, and forward records 499).
    const post = ctx.req.method === 'POST';
    if (ctx.presentedSessionId === null) {
      if (post) await readMessage(ctx);
      await withoutSession(ctx);
    } else {
      withSession(ctx);
      if (post && !ctx.res.closed) await readMessage(ctx);
    }
    ctx.upstream = ctx.relayTo === null ? deps.upstreams.url(need(ctx.upstreamIndex, 'ctx.upstreamIndex')) : await ownerOf(ctx, ctx.relayTo);
    if (ctx.req.method === 'GET' && !deps.streams.admit(need(ctx.identity, 'ctx.identity').principal, ctx.res)) {
      throw new WardenError('STREAM_LIMIT', { reason: 'streams', retryAfterMs: 5_000 });
    }
  };
}
