import type { Readable } from 'node:stream';
import type { SessionEnder } from '../session/end-session.js';
import { createSseRewriter } from './sse-rewrite.js';
import type { EventTransform } from './sse-rewrite.js';
import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { addResponseHeaders } from '../http/reply.js';
import { logEvent } from '../observability/events.js';
import type { FingerprintInput } from '../session/binding.js';
import type { SessionIds } from '../session/session-id.js';
import type { StreamGauge } from '../session/streams.js';
import type { SessionStore } from '../store/types.js';
import { openUpstreamStream } from './forward.js';
import type { ForwardDeps, UpstreamStream } from './forward.js';

/**
 * Legacy HTTP+SSE (MCP 2024-11-05) clients in front of a legacy upstream (DESIGN §16). The client
 * GETs the SSE path; the proxy opens the upstream's event stream, reads its first event (the
 * `endpoint` naming where messages go), keeps that URL in a session record under a proxy-minted,
 * identity-bound id, and sends the client its own `endpoint` event instead. Every later event is
 * passed through unchanged. The client's POSTs to the message path carry the proxy id as
 * `?sessionId=`; they run the MCP path's stages (authentication, limits, the session checks) and
 * go to the stored upstream URL. The upstream's session id never reaches the client.
 */

/** Marks a record's upstream session as a legacy message URL (path and query on the upstream's origin). */
export const LEGACY_SESSION_PREFIX = 'sse:';
/** Largest first event read while waiting for `endpoint`. */
const MAX_ENDPOINT_EVENT = 8 * 1024;

export interface LegacySseDeps {
  /** The legacy upstream's SSE endpoint. */
  readonly sseUrl: string;
  /** Where this proxy takes legacy clients' messages. */
  readonly messagePath: string;
  readonly agent: NonNullable<ForwardDeps['agent']>;
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  readonly upstreamTimeoutMs: number;
  readonly store: SessionStore;
  /** How a session ends (record, upstream, event). */
  readonly ender: SessionEnder;
  readonly sessionIds: SessionIds;
  readonly streams: StreamGauge;
  readonly fingerprint: (input: FingerprintInput) => string;
  readonly maxConcurrent: number;
  readonly onLimit: 'reject' | 'evict-oldest';
  readonly idleTimeoutMs: number;
  readonly maxLifetimeMs: number;
  readonly clock: () => number;
  readonly onStreamStart?: ForwardDeps['onStreamStart'];
  /** With a policy: rewrites each event of the stream for this caller (list results filtered); throws to cut it. */
  readonly rewriteEvents?: (ctx: RequestContext) => EventTransform;
}

/** The first SSE event in `text`, and where the bytes after it start; null while incomplete. */
export function firstEvent(text: string): { event: string; data: string; rest: number } | null {
  const end = /\r\n\r\n|\n\n|\r\r/.exec(text);
  if (!end) return null;
  let event = 'message';
  const data: string[] = [];
  for (const line of text.slice(0, end.index).split(/\r\n|\n|\r/)) {
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n'), rest: end.index + end[0].length };
}

export function noEndpoint(description: string, cause?: unknown): WardenError {
  return new WardenError('UPSTREAM_UNAVAILABLE', { reason: 'refused', description, cause });
}

/** Reads the upstream stream until its first event; the bytes after it are returned to pass on. */
export function readEndpoint(body: Readable, timeoutMs: number): Promise<{ data: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0);
    const done = (err: WardenError | null, value?: { data: string; rest: Buffer }): void => {
      clearTimeout(timer);
      body.off('data', onData).off('end', onEnd).off('error', onEnd);
      if (err) reject(err);
      else if (value) resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const text = seen.toString('latin1');
      const first = firstEvent(text);
      if (!first) {
        if (seen.length > MAX_ENDPOINT_EVENT) done(noEndpoint('The legacy SSE upstream sent no endpoint event'));
        return;
      }
      body.pause();
      if (first.event !== 'endpoint') return done(noEndpoint(`The legacy SSE upstream's first event is "${first.event.slice(0, 40)}", not "endpoint"`));
      done(null, { data: Buffer.from(first.data, 'latin1').toString('utf8'), rest: seen.subarray(first.rest) });
    };
    const onEnd = (): void => done(noEndpoint('The legacy SSE upstream closed its stream before sending an endpoint event'));
    const timer = setTimeout(() => done(noEndpoint('The legacy SSE upstream sent no endpoint event in time')), timeoutMs);
    body.on('data', onData).once('end', onEnd).once('error', onEnd);
  });
}

/** GET <ssePath>: the legacy client's event stream, bridged to the upstream's. */
export function openLegacyStream(deps: LegacySseDeps) {
  const upstream = new URL(deps.sseUrl);
  return async function openLegacyStream(ctx: RequestContext): Promise<void> {
    const identity = need(ctx.identity, 'ctx.identity');
    if (!deps.streams.admit(identity.principal, ctx.res)) throw new WardenError('STREAM_LIMIT', { reason: 'streams', retryAfterMs: 5_000 });
    const abort = new AbortController();
    ctx.res.once('close', () => abort.abort());
    let reply: UpstreamStream;
    try {
      reply = await openUpstreamStream(deps.agent, upstream, { accept: 'text/event-stream', ...deps.upstreamHeaders, 'x-forwarded-for': ctx.clientAddress }, deps.upstreamTimeoutMs, abort.signal);
    } catch (err) {
      if (ctx.res.closed) return;
      throw noEndpoint('The legacy SSE upstream did not answer', err);
    }
    const { body } = reply;
    // Destroying it (client gone, refused endpoint) makes undici emit "Request aborted" on it: that is
    // the intended end, not an error to crash on.
    body.on('error', () => {});
    if (reply.statusCode !== 200 || !reply.contentType.startsWith('text/event-stream')) {
      body.destroy();
      throw noEndpoint(`The legacy SSE upstream answered ${reply.statusCode}, not an event stream`);
    }
    let endpoint: { data: string; rest: Buffer };
    try {
      endpoint = await readEndpoint(body, deps.upstreamTimeoutMs);
    } catch (err) {
      body.destroy();
      throw err;
    }
    // Messages may only go back to the upstream's own origin: an endpoint elsewhere is refused,
    // as the SDK's own client does, so an upstream cannot point the proxy at another host.
    const target = URL.canParse(endpoint.data, upstream.href) ? new URL(endpoint.data, upstream) : null;
    if (!target || target.origin !== upstream.origin) {
      body.destroy();
      throw noEndpoint('The legacy SSE upstream named a message endpoint on another origin');
    }
    const minted = deps.sessionIds.mint(identity.principal);
    const now = deps.clock();
    const record = {
      key: minted.key, principal: identity.principal, grantId: identity.grantId ?? '', upstream: 0,
      upstreamSessionId: `${LEGACY_SESSION_PREFIX}${target.pathname}${target.search}`,
      fingerprint: deps.fingerprint({ userAgent: ctx.req.headers['user-agent'], address: ctx.clientAddress }),
      createdAt: now,
      // Any replica can post to the upstream's message URL: the answers come on this stream.
      owner: null,
    };
    const created = await deps.store.createSession(record, { maxConcurrent: ctx.client?.maxSessions ?? deps.maxConcurrent, onLimit: deps.onLimit, now, idleTimeoutMs: deps.idleTimeoutMs, maxLifetimeMs: deps.maxLifetimeMs });
    if (!created.created) {
      body.destroy();
      throw new WardenError('SESSION_LIMIT', { retryAfterMs: 60_000 });
    }
    logEvent(ctx.log, 'session.created', { clientId: identity.clientId, sessionId: minted.key, address: ctx.clientAddress });
    const { res } = ctx;
    const head: Record<string, string> = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' };
    addResponseHeaders(ctx, head);
    res.writeHead(200, head);
    res.write(`event: endpoint\ndata: ${deps.messagePath}?sessionId=${minted.id}\n\n`);
    const rewriter = deps.rewriteEvents ? createSseRewriter(deps.rewriteEvents(ctx)) : null;
    // Fail closed: an event the policy filter cannot parse cuts the stream instead of passing.
    const rewrite = (chunk: Buffer): Buffer | string | null => {
      if (!rewriter) return chunk;
      try {
        return rewriter.push(chunk);
      } catch {
        logEvent(ctx.log, 'upstream.failed', { reason: 'unparseable', route: ctx.route, code: 'UPSTREAM_INVALID_RESPONSE' });
        return null;
      }
    };
    const first = endpoint.rest.length > 0 ? rewrite(endpoint.rest) : '';
    if (first === null) {
      body.destroy();
      res.destroy();
      return;
    }
    if (first.length > 0) res.write(first);
    await new Promise<void>((resolve) => {
      // The stream is the session: when either side ends it, the record goes.
      const end = (): void => {
        body.destroy();
        if (!res.writableEnded) res.end();
        void deps.ender.end({ principal: record.principal, key: record.key, upstream: null }, 'stream_closed', { log: ctx.log, clientId: identity.clientId, address: ctx.clientAddress }).catch(() => {});
        resolve();
      };
      deps.onStreamStart?.(ctx, end);
      res.once('close', end);
      body.once('end', end).once('error', end);
      if (!rewriter) body.pipe(res, { end: false });
      else {
        body.on('data', (chunk: Buffer) => {
          const text = rewrite(chunk);
          if (text === null) {
            res.destroy();
            end();
          } else if (text.length > 0 && !res.write(text)) {
            body.pause();
            res.once('drain', () => body.resume());
          }
        });
      }
      body.resume();
    });
  };
}

/** POST <messagePath>?sessionId=<proxy id>: the id goes where the MCP path's stages look for it. */
export function legacySessionFromQuery() {
  return function legacySessionFromQuery(ctx: RequestContext): void {
    const sessionId = new URL(ctx.req.url ?? '/', 'http://x').searchParams.get('sessionId');
    if (!sessionId) throw new WardenError('INVALID_MESSAGE', { description: 'The sessionId query parameter is required' });
    // A header the client sent itself never decides the session here.
    ctx.req.headers['mcp-session-id'] = sessionId;
  };
}

/** After the session checks: the message goes to the upstream message URL stored with the session. */
export function legacyMessageTarget(deps: { readonly sseUrl: string }) {
  const origin = new URL(deps.sseUrl).origin;
  return function legacyMessageTarget(ctx: RequestContext): void {
    const session = need(ctx.session, 'ctx.session');
    ctx.upstream = `${origin}${session.upstreamSessionId.slice(LEGACY_SESSION_PREFIX.length)}`;
    ctx.upstreamSessionId = null;
  };
}
