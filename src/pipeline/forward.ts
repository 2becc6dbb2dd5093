import type { IncomingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import type { RequestContext, UpstreamResponse } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { RELAY_HEADER } from '../session/relay.js';
import type { Relay } from '../session/relay.js';
import { runResponseStages } from './stage.js';
import { createSseRewriter } from './sse-rewrite.js';
import type { UpstreamTransport } from './upstream-transport.js';
import type { EventTransform, SseRewriter } from './sse-rewrite.js';
import { logEvent } from '../observability/events.js';
import { addResponseHeaders } from '../http/reply.js';
import type { ResponseStage } from './stage.js';

/** What `forward` needs, built once at startup. */
export interface ForwardDeps {
  readonly upstreamTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** Added to every upstream request (e.g. an upstream credential). */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** Header names the proxy sets from the identity; client-sent copies are removed. */
  readonly identityHeaders: { readonly clientId: string | null; readonly scopes: string | null; readonly user: string | null };
  readonly responseStages: readonly ResponseStage[];
  /** High-resolution clock for the latency marks in `ctx.timing`. */
  readonly stopwatch: () => number;
  /** Told when an SSE response starts streaming, with a way to end it cleanly (shutdown). */
  readonly onStreamStart?: (ctx: RequestContext, end: () => void) => void;
  /** Connection pools to the upstreams; the owner destroys it on close. Made here when absent. */
  readonly agent?: Dispatcher;
  /** Sidecar layout: signs the hop of a request relayed to the replica owning its session. */
  readonly relay?: Pick<Relay, 'sign'>;
  /** Ends a session the upstream made for a client that left before hearing of it. */
  readonly endUpstreamSession?: (upstreamIndex: number, upstreamSessionId: string) => void;
}

/**
 * Keep-alive connection pools to the upstreams (one per origin). No connection cap: each open SSE
 * stream holds one upstream connection for its lifetime. Connecting counts against the upstream
 * timeout like waiting for the response head does.
 */
export function createUpstreamAgent(timeoutMs: number): Agent {
  return new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: 0 });
}

/**
 * Ends an upstream session (MCP: DELETE with its id) through the upstream pool, within
 * `timeoutMs` for the answer and its body. Failures are not retried: an upstream that does not
 * answer forgets the session by itself.
 */
export async function deleteUpstreamSession(agent: Dispatcher, url: string, headers: Readonly<Record<string, string>>, upstreamSessionId: string, timeoutMs: number): Promise<void> {
  const target = new URL(url);
  try {
    const reply = await agent.request({
      origin: target.origin, path: `${target.pathname}${target.search}`, method: 'DELETE',
      headers: { ...headers, 'mcp-session-id': upstreamSessionId }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    });
    await reply.body.dump();
  } catch {
    // Refused, timed out or reset: nothing more to do.
  }
}

// Hop-by-hop headers (RFC 9110 §7.6.1) and headers a client must not be able to set upstream.
// `host` is the upstream's own (set by the pool); `expect` would make the upstream wait for a
// 100-continue that only the client's side of the exchange knows about.
const REQUEST_DROP = ['host', 'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'transfer-encoding', 'expect',
  'authorization', 'mcp-session-id', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', RELAY_HEADER];
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer']);
// nginx's code for "client closed request": what the access log and metrics show for a request
// whose client left before it was forwarded (nothing is sent).
const CLIENT_CLOSED_REQUEST = 499;
// How much of an upstream body is held while response stages run before the upstream is paused
// (Node's own stream buffer size).
const HOLD_BYTES = 16 * 1024;
// What `headers` is once the response head went to the client (see Exchange#send).
const HEAD_SENT: Record<string, string | string[]> = Object.freeze({});
// Errors of the pool that mean "the upstream did not answer in time" rather than "it failed".
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** Counts a chunked request body as it streams and fails once it passes the cap (413 unbuffered). */
function bodyCap(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      done(seen > maxBytes ? new WardenError('BODY_TOO_LARGE') : null, chunk);
    },
  });
}

/**
 * The upstream response head without hop-by-hop and CORS headers. undici has already decoded it
 * from the raw lines (names lower-cased, values latin1, repeats as arrays): latin1 both ways, so the
 * bytes go back to the client exactly as the upstream sent them. Copied, not deleted from: a delete
 * turns the object into a slow dictionary in V8.
 */
function responseHeaders(parsed: IncomingHttpHeaders): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const name in parsed) {
    // CORS is the proxy's policy (security.allowedOrigins, set by check-transport), not the upstream's.
    if (RESPONSE_DROP.has(name) || name.startsWith('access-control-')) continue;
    const value = parsed[name];
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

/**
 * One upstream exchange, from dispatch until the client's response is over: it is the pool's
 * handler (a class, so no closures are made per request), and the response stages' view of the
 * upstream head (`ctx.response`). While response stages run, the upstream body is held (paused past
 * HOLD_BYTES); a stage may read a small body (`readBody`) before anything is sent.
 */
class Exchange implements Dispatcher.DispatchHandler, UpstreamResponse {
  status = 502;
  headers: Record<string, string | string[]> = {};
  body: Buffer | null = null;
  /** Body chunks that arrived before the client's head went out: sent first. */
  readonly #prefix: Buffer[] = [];
  #prefixBytes = 0;
  /**
   * head: waiting for the upstream head; hold: head in, body held while response stages run;
   * pipe: streaming to the client; over: settled.
   */
  #mode: 'head' | 'hold' | 'pipe' | 'over' = 'head';
  /** undici's handle on the upstream request (pause, resume, abort); set once it is dispatched. */
  #controller: Dispatcher.DispatchController | null = null;
  /**
   * An initialize whose client left while the upstream was answering: the upstream may be making
   * a session nobody will ever use or end, so its answer is still awaited, and the session ended.
   */
  #orphan = false;
  /** Set while a response stage reads the body (`readBody`): the upstream is never paused then. */
  #reading: { readonly maxBytes: number; readonly done: (body: Buffer | null) => void } | null = null;
  /** The upstream body ended (whole) or broke (cut) before it could be piped. */
  #complete = false;
  #cut = false;
  #isStream = false;
  /** Body bytes went to the client (the head with them): an event stream's head needs no flush of its own. */
  #wrote = false;
  /** Set by a response stage (transformEvents): an event stream's events are rewritten on the way. */
  #events: SseRewriter | null = null;
  readonly #ctx: RequestContext;
  readonly #deps: ForwardDeps;
  readonly #resolve: () => void;
  readonly #reject: (err: WardenError) => void;

  constructor(ctx: RequestContext, deps: ForwardDeps, resolve: () => void, reject: (err: WardenError) => void) {
    this.#ctx = ctx;
    this.#deps = deps;
    this.#resolve = resolve;
    this.#reject = reject;
    // The exchange is over when the client's response is, whichever way it ended; a client that
    // leaves first takes the upstream request down with it. `on`, not `once`: Node emits a
    // response's 'close' once (guarded by `res._closed`), and `once` would keep a wrapper per
    // listener for as long as an event stream lives.
    ctx.res.on('close', () => {
      if (this.#mode === 'head' && this.#controller !== null && ctx.creating && deps.endUpstreamSession) this.#orphan = true;
      else if (this.#mode !== 'over' && !this.#complete) this.#abort(new Error('client closed the connection'));
      this.#settle();
    });
  }

  /** Ends the upstream request (a no-op once it is over, or before it was dispatched). */
  #abort(reason: Error = new Error('the proxy ended the upstream request')): void {
    const controller = this.#controller;
    if (controller !== null && !controller.aborted) controller.abort(reason);
  }

  /** Lets held upstream bytes flow again (after a pause for HOLD_BYTES or a slow client). */
  #resume(): void {
    this.#controller?.resume();
  }

  #settle(): void {
    this.#mode = 'over';
    this.#resolve();
  }

  #refuse(err: WardenError): void {
    this.#abort(err);
    this.#mode = 'over';
    this.#reject(err);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#mode === 'over') controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, parsed: IncomingHttpHeaders): void {
    if (this.#orphan && status >= 200) return this.#endOrphan(parsed);
    // 1xx interim responses are the upstream's business with us, not the client's.
    if (status < 200 || this.#mode !== 'head') return;
    const ctx = this.#ctx;
    ctx.timing.upstreamHead = this.#deps.stopwatch();
    this.status = status;
    this.headers = responseHeaders(parsed);
    ctx.response = this;
    this.#mode = 'hold';
    let pending: void | Promise<void>;
    try {
      pending = runResponseStages(this.#deps.responseStages, ctx);
    } catch (err) {
      this.#failStage(err);
      return;
    }
    // Without a promise the stages are done: the head goes now. With one, reading goes on while
    // the stages run, up to HOLD_BYTES: a small body (most JSON answers) is then complete when the
    // head goes out, and leaves with it in one write.
    if (pending) pending.then(() => this.#send(), (err: unknown) => this.#failStage(err));
    else if (!this.#send()) controller.pause();
  }

  #endOrphan(parsed: IncomingHttpHeaders): void {
    const created = parsed['mcp-session-id'];
    const index = this.#ctx.upstreamIndex;
    if (typeof created === 'string' && index !== null) this.#deps.endUpstreamSession?.(index, created);
    this.#abort(new Error('client closed the connection'));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#mode === 'pipe') {
      if (this.#write(chunk) || this.#isOver()) return;
      // The client reads slower than the upstream writes: pause the upstream until it drains.
      controller.pause();
      this.#ctx.res.once('drain', () => this.#resume());
      return;
    }
    if (this.#mode === 'over') return;
    this.#prefix.push(chunk);
    this.#prefixBytes += chunk.length;
    if (this.#reading && this.#prefixBytes > this.#reading.maxBytes) this.#endRead(null);
    // Held past HOLD_BYTES while the stages run, unless a stage is reading the body whole.
    if (this.#reading === null && this.#prefixBytes >= HOLD_BYTES) controller.pause();
  }

  onResponseEnd(): void {
    this.#complete = true;
    if (this.#mode === 'pipe') {
      this.#ctx.res.end();
      return;
    }
    if (this.#reading) this.#endRead(this.#takePrefix());
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    const { res } = this.#ctx;
    switch (this.#mode) {
      case 'over':
        return;
      case 'head':
        // A client that hung up is not an upstream failure.
        if (res.closed) return this.#settle();
        if (err instanceof WardenError) return this.#refuse(err);
        if (TIMEOUT_CODES.has((err as NodeJS.ErrnoException).code ?? '')) return this.#refuse(new WardenError('UPSTREAM_TIMEOUT', { reason: 'timeout' }));
        return this.#refuse(new WardenError('UPSTREAM_UNAVAILABLE', { reason: (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 'refused' : 'reset', cause: err }));
      case 'pipe':
        // Cut mid-response: an event stream ends cleanly (the client may resume with Last-Event-ID);
        // anything else is cut too, so a truncated body is never taken for a whole one.
        if (this.#isStream) res.end();
        else res.destroy();
        return;
      default:
        this.#cut = true;
        this.#endRead(null);
    }
  }

  /** For response stages: rewrite each event of an event-stream body as it passes (no effect on other bodies). */
  transformEvents(transform: EventTransform): void {
    this.#events = createSseRewriter(transform);
  }

  /** A write may end the exchange (a transform failed): a method, so TypeScript does not keep the narrowed mode. */
  #isOver(): boolean {
    return this.#mode === 'over';
  }

  /** An event stream's head, alone, when no event went out with it (see #send). */
  #flushHead(): void {
    const { res } = this.#ctx;
    if (!this.#wrote && !res.writableEnded && !res.destroyed) res.flushHeaders();
  }

  /** Writes upstream bytes to the client, through the event rewriter when one is set; false: wait for 'drain' (or cut). */
  #write(chunk: Buffer): boolean {
    const { res } = this.#ctx;
    if (!this.#events) {
      this.#wrote = true;
      return res.write(chunk);
    }
    let text: string;
    try {
      text = this.#events.push(chunk);
    } catch (err) {
      // Fail closed: what the transform could not inspect is never passed on. The head is out, so
      // the stream is cut (a client sees a failed request, not a whole but unchecked answer).
      logEvent(this.#ctx.log, 'upstream.failed', { reason: 'unparseable', route: this.#ctx.route, code: 'UPSTREAM_INVALID_RESPONSE' });
      this.#ctx.log.warn({ err }, 'an upstream event could not be checked; stream cut');
      this.#abort(new Error('an upstream event could not be checked'));
      this.#mode = 'over';
      res.destroy();
      return false;
    }
    if (text === '') return true;
    this.#wrote = true;
    return res.write(text);
  }

  /** For response stages: the body when it is at most `maxBytes`, else null (it then streams through). */
  readBody(maxBytes: number): Promise<Buffer | null> {
    if (Number(this.headers['content-length'] ?? 0) > maxBytes || this.#cut || this.#prefixBytes > maxBytes) return Promise.resolve(null);
    if (this.#complete) {
      this.body = this.#takePrefix();
      return Promise.resolve(this.body);
    }
    return new Promise((resolve) => {
      this.#reading = {
        maxBytes,
        done: (body) => {
          this.body = body;
          resolve(body);
        },
      };
      this.#resume();
    });
  }

  /** Ends a stage's read: with the whole body, or null (over its cap, or cut). */
  #endRead(body: Buffer | null): void {
    const reading = this.#reading;
    this.#reading = null;
    reading?.done(body);
  }

  #takePrefix(): Buffer {
    this.#prefixBytes = 0;
    return Buffer.concat(this.#prefix.splice(0));
  }

  #failStage(err: unknown): void {
    this.#refuse(err instanceof WardenError ? err : new WardenError('INTERNAL', { cause: err }));
  }

  /**
   * The response stages are done: the head (and anything already read) goes to the client.
   * True when the rest of the upstream body now flows to the client.
   */
  #send(): boolean {
    const ctx = this.#ctx;
    const { res } = ctx;
    if (this.#mode === 'over') return false;
    if (res.closed || res.headersSent) {
      this.#abort(new Error('client closed the connection'));
      this.#settle();
      return false;
    }
    // The upstream cut its response while the stages ran: nothing was sent yet, so say so rather
    // than send a head whose body will never come.
    if (this.#cut && !this.body) {
      this.#refuse(new WardenError('UPSTREAM_UNAVAILABLE', { reason: 'reset' }));
      return false;
    }
    ctx.timing.clientHead = this.#deps.stopwatch();
    const { headers } = this;
    addResponseHeaders(ctx, headers);
    if (this.body) {
      // Assigned, not spread into a copy: a spread that adds a key is a slow path in V8.
      headers['content-length'] = String(this.body.length);
      res.writeHead(this.status, headers);
      res.end(this.body);
      return false;
    }
    this.#isStream = String(headers['content-type'] ?? '').startsWith('text/event-stream');
    if (!this.#isStream) this.#events = null;
    // Rewritten events change the length (an event stream rarely declares one).
    else if (this.#events && headers['content-length'] !== undefined) delete headers['content-length'];
    res.writeHead(this.status, headers);
    // Nothing reads the head once it is out, and an event stream would keep it for its whole life.
    this.headers = HEAD_SENT;
    if (this.#isStream) {
      // A stream's head must not wait for its first event, but an event that came in the same read
      // as the head (undici hands it over right after this, in the same tick) leaves with it, in one
      // write instead of two: the head is flushed on its own only if nothing was written by then.
      if (this.#prefix.length === 0) queueMicrotask(() => this.#flushHead());
      this.#deps.onStreamStart?.(ctx, () => {
        this.#abort(new Error('the proxy is shutting down'));
        res.end();
      });
    }
    for (const chunk of this.#prefix.splice(0)) this.#write(chunk);
    if (this.#isOver()) return false;
    if (this.#complete) {
      res.end();
      return false;
    }
    this.#mode = 'pipe';
    this.#resume();
    return true;
  }
}

/**
 * The forward stage: rewrites the request head for the upstream (strips the client's token,
 * session id and identity headers; adds the proxy's), streams the body, runs the response stages
 * on the upstream head, then streams the response back unbuffered. Resolves when the client's
 * response is over; rejects with a refusal when the upstream fails before answering.
 * Forwarding uses undici's dispatcher (a handler per request, no Node http.ClientRequest): it
 * costs about 40% less CPU per request than http-proxy on Node's http client (see docs/performance.md).
 */
export function streamableHttp(deps: ForwardDeps): UpstreamTransport {
  // Pooled connections belong to the agent, which the composition root destroys.
  return { kind: 'streamable-http', forward: forward(deps), close: () => {} };
}

/** The Streamable HTTP transport's stage (see {@link streamableHttp}). */
export function forward(deps: ForwardDeps) {
  const agent = deps.agent ?? createUpstreamAgent(deps.upstreamTimeoutMs);
  // The default identity header names are stripped even when turned off (null): an upstream that
  // once trusted them must never get a client-made copy.
  const drop = new Set([...REQUEST_DROP, 'x-mcp-client-id', 'x-mcp-scopes', 'x-mcp-user', ...[deps.identityHeaders.clientId, deps.identityHeaders.scopes, deps.identityHeaders.user].filter((h) => h !== null).map((h) => h.toLowerCase())]);
  const userHeader = deps.identityHeaders.user?.toLowerCase() ?? null;
  const clientIdHeader = deps.identityHeaders.clientId?.toLowerCase() ?? null;
  const scopesHeader = deps.identityHeaders.scopes?.toLowerCase() ?? null;
  const extra = Object.entries(deps.upstreamHeaders).map(([k, v]) => [k.toLowerCase(), v] as const);
  const targets = new Map<string, { origin: string; path: string }>();

  function upstreamHead(ctx: RequestContext, headers: IncomingHttpHeaders, upstreamSessionId: string | null): IncomingHttpHeaders {
    const out: IncomingHttpHeaders = {};
    for (const name in headers) if (!drop.has(name)) out[name] = headers[name];
    // An external issuer's subject goes upstream issuer-qualified (`idp<n>~<sub>`): a subject named
    // like a local client must never pass for that client.
    if (ctx.identity && clientIdHeader) out[clientIdHeader] = ctx.identity.issuer === 'self' ? ctx.identity.clientId : ctx.identity.principal;
    if (ctx.identity && scopesHeader) out[scopesHeader] = ctx.identity.scopes.join(' ');
    // The person behind a signed-in client app: its own header, so it can never pass for a client id.
    if (ctx.identity?.user && userHeader) out[userHeader] = ctx.identity.user;
    if (upstreamSessionId) out['mcp-session-id'] = upstreamSessionId;
    out['x-forwarded-for'] = ctx.clientAddress;
    out['x-forwarded-proto'] = ctx.site.origin.startsWith('https:') ? 'https' : 'http';
    for (const [name, value] of extra) out[name] = value;
    // Traced: the upstream continues our trace, never one a caller made up.
    if (ctx.traceHeaders) {
      delete out.traceparent;
      delete out.tracestate;
      Object.assign(out, ctx.traceHeaders);
    }
    if (ctx.body) out['content-length'] = String(ctx.body.length);
    return out;
  }

  /**
   * The head of a request relayed to the replica that owns its session: the client's own token and
   * proxy session id (the owner authenticates and resolves them itself), without identity or
   * upstream headers (they are the owner's to add), and the signed relay header.
   */
  function relayHead(ctx: RequestContext, headers: IncomingHttpHeaders): IncomingHttpHeaders {
    const out = upstreamHead(ctx, headers, null);
    for (const [name] of extra) delete out[name];
    if (clientIdHeader) delete out[clientIdHeader];
    if (userHeader) delete out[userHeader];
    if (scopesHeader) delete out[scopesHeader];
    delete out['x-forwarded-for'];
    delete out['x-forwarded-proto'];
    out.authorization = headers.authorization;
    out['mcp-session-id'] = ctx.presentedSessionId ?? '';
    out[RELAY_HEADER] = need(deps.relay ?? null, 'deps.relay').sign(ctx.req.method ?? '', ctx.presentedSessionId ?? '', ctx.clientAddress);
    return out;
  }

  return function forward(ctx: RequestContext): Promise<void> | void {
    const { req, res } = ctx;
    // The client hung up while an earlier stage waited on the store. Its 'close' has fired, so
    // nothing would ever end an upstream request made for it now.
    if (res.closed) {
      res.statusCode = CLIENT_CLOSED_REQUEST;
      return undefined;
    }
    const upstream = need(ctx.upstream, 'ctx.upstream');
    let target = targets.get(upstream);
    if (!target) {
      const url = new URL(upstream);
      targets.set(upstream, (target = { origin: url.origin, path: `${url.pathname}${url.search}` }));
    }
    // The client's path and query never reach the upstream: it gets its own MCP path.
    const headers = ctx.relayTo === null ? upstreamHead(ctx, req.headers, ctx.upstreamSessionId) : relayHead(ctx, req.headers);
    // Only a POST body is ever sent upstream (check-transport refuses a GET or DELETE that
    // announces one: see request smuggling there); one without a length is counted as it streams.
    const chunked = ctx.body === null && req.method === 'POST' && headers['content-length'] === undefined;
    const body: Buffer | Readable | null = ctx.body ?? (chunked ? req.pipe(bodyCap(deps.maxBodyBytes)) : req.method === 'POST' ? req : null);
    ctx.timing.forwarded = deps.stopwatch();
    const { origin, path } = target;
    return new Promise<void>((resolve, reject) => {
      const exchange = new Exchange(ctx, deps, resolve, reject);
      agent.dispatch({ origin, path, method: req.method as Dispatcher.HttpMethod, headers: headers as Record<string, string | string[]>, body, headersTimeout: deps.upstreamTimeoutMs, bodyTimeout: 0 }, exchange);
    });
  };
}

/** An upstream GET held open as an event stream (legacy HTTP+SSE): its status, type and body. */
export interface UpstreamStream {
  readonly statusCode: number;
  readonly contentType: string;
  readonly body: Readable;
}

/**
 * Opens a long-lived GET to an upstream through the same pools as forwarding: the head must come
 * within `timeoutMs`, the body may then idle for as long as the stream lives.
 */
export async function openUpstreamStream(agent: Dispatcher, url: URL, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<UpstreamStream> {
  const reply = await agent.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method: 'GET', headers, signal, headersTimeout: timeoutMs, bodyTimeout: 0 });
  return { statusCode: reply.statusCode, contentType: String(reply.headers['content-type'] ?? ''), body: reply.body };
}
