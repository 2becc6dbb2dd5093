import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { ServerOptions } from 'http-proxy-3';
import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { runResponseStages } from './stage.js';
import type { ResponseStage } from './stage.js';

/** What `forward` needs, built once at startup. */
export interface ForwardDeps {
  readonly upstreamTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** Added to every upstream request (e.g. an upstream credential). */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** Header names the proxy sets from the identity; client-sent copies are removed. */
  readonly identityHeaders: { readonly clientId: string | null; readonly scopes: string | null };
  readonly responseStages: readonly ResponseStage[];
  /** High-resolution clock for the latency marks in `ctx.timing`. */
  readonly stopwatch: () => number;
  /** Told when an SSE response starts streaming, with a way to end it cleanly (shutdown). */
  readonly onStreamStart?: (ctx: RequestContext, end: () => void) => void;
  /** Connection pools to the upstreams; the owner destroys them on close. Made here when absent. */
  readonly agents?: UpstreamAgents;
}

/** Keep-alive connection pools to the upstreams, one per scheme. */
export interface UpstreamAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

/** Keep-alive pools: each open SSE stream holds one upstream socket for its lifetime, so no socket cap. */
export function createUpstreamAgents(): UpstreamAgents {
  return {
    http: new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' }),
    https: new https.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' }),
  };
}

// Hop-by-hop headers (RFC 9110 §7.6.1) and headers a client must not be able to set upstream.
// `expect` too: with it http-proxy skips the proxyReq event, and a timeout could not abort upstream.
const REQUEST_DROP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'transfer-encoding', 'expect',
  'authorization', 'mcp-session-id', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip'];
// nginx's code for "client closed request": what the access log and metrics show for a request
// whose client left before it was forwarded (nothing is sent).
const CLIENT_CLOSED_REQUEST = 499;
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer']);

/** The upstream response head as the response stages see it (see `UpstreamResponse` in context.ts). */
class UpstreamHead {
  status: number;
  readonly headers: Record<string, string | string[]>;
  body: Buffer | null = null;
  /** Chunks a stage read but could not keep whole (over its cap): sent before the rest. */
  readonly prefix: Buffer[] = [];
  readonly #stream: IncomingMessage;

  constructor(status: number, headers: Record<string, string | string[]>, stream: IncomingMessage) {
    this.status = status;
    this.headers = headers;
    this.#stream = stream;
  }

  async readBody(maxBytes: number): Promise<Buffer | null> {
    this.body = await readSmallBody(this.#stream, maxBytes, this.prefix);
    return this.body;
  }
}

/** One outgoing request, from `proxy.web` until the client's response is done. */
interface Exchange {
  readonly ctx: RequestContext;
  readonly resolve: () => void;
  readonly reject: (err: WardenError) => void;
  timer: NodeJS.Timeout | null;
  upstreamReq: http.ClientRequest | null;
  /** Set once the client got a refusal (timeout, error): a late upstream head is discarded. */
  refused: boolean;
}

/**
 * The per-request options given to `proxy.web`; http-proxy hands them back with its `proxyReq`
 * event. The exchange travels with the request this way rather than in a table keyed by it: a
 * Map or WeakMap from requests to exchanges made V8 keep every request's objects alive past
 * young-generation collections (measured: ~14 KB per request promoted, scavenges 0.4 -> 3 ms,
 * a mark-compact every 0.5 s, -20% requests/s).
 */
interface ExchangeOptions extends ServerOptions {
  readonly exchange: Exchange;
}

/**
 * Reads a body of at most `maxBytes`; past that returns null, leaving what it read in `prefix`.
 * A body cut by the upstream also returns null (never a truncated body taken for a whole one).
 */
function readSmallBody(stream: IncomingMessage, maxBytes: number, prefix: Buffer[]): Promise<Buffer | null> {
  if (Number(stream.headers['content-length'] ?? 0) > maxBytes || stream.destroyed) return Promise.resolve(null);
  return new Promise((resolve) => {
    let size = 0;
    const done = (body: Buffer | null): void => {
      stream.off('data', onData).off('end', onEnd).off('error', onCut).off('close', onCut);
      resolve(body);
    };
    const onCut = (): void => done(null);
    // Not `for await`: leaving that loop early would destroy a stream that must still be piped.
    const onData = (chunk: Buffer): void => {
      prefix.push(chunk);
      size += chunk.length;
      if (size > maxBytes) {
        stream.pause();
        done(null);
      }
    };
    const onEnd = (): void => done(Buffer.concat(prefix.splice(0)));
    stream.on('data', onData).once('end', onEnd).once('error', onCut).once('close', onCut);
  });
}

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
 * The forward stage: rewrites the request head for the upstream (strips the client's token,
 * session id and identity headers; adds the proxy's), streams the body, runs the response stages
 * on the upstream head, then streams the response back unbuffered. Resolves when the client's
 * response is over; rejects with a refusal when the upstream fails before answering.
 * This is the only module that imports http-proxy.
 */
export function forward(deps: ForwardDeps) {
  const agents = deps.agents ?? createUpstreamAgents();
  // The upstream path is set on the request itself (below), so http-proxy joins it as is:
  // `toProxy` + no `prependPath` spare it two URL parses per request.
  const proxy = createProxyServer({ selfHandleResponse: true, changeOrigin: true, prependPath: false, toProxy: true, xfwd: false });
  // The default identity header names are stripped even when turned off (null): an upstream that
  // once trusted them must never get a client-made copy.
  const drop = new Set([...REQUEST_DROP, 'x-mcp-client-id', 'x-mcp-scopes', ...[deps.identityHeaders.clientId, deps.identityHeaders.scopes].filter((h) => h !== null).map((h) => h.toLowerCase())]);
  const clientIdHeader = deps.identityHeaders.clientId?.toLowerCase() ?? null;
  const scopesHeader = deps.identityHeaders.scopes?.toLowerCase() ?? null;
  const extra = Object.entries(deps.upstreamHeaders).map(([k, v]) => [k.toLowerCase(), v] as const);
  const targets = new Map<string, { url: URL; path: string }>();

  proxy.on('proxyReq', (upstreamReq, _req, _res, options) => {
    const { exchange } = options as ExchangeOptions;
    exchange.upstreamReq = upstreamReq;
    upstreamReq.once('response', (upstreamRes: IncomingMessage) => respond(exchange, upstreamRes));
  });
  // Per-request errors go to the callback given to proxy.web; this listener only keeps a stray one from crashing the process.
  proxy.on('error', () => {});

  function upstreamHead(ctx: RequestContext, headers: IncomingHttpHeaders, upstreamSessionId: string | null): IncomingHttpHeaders {
    // A fresh object, not a copy with deletes: deleting keys turns it into a slow dictionary object
    // that http-proxy then copies again on every request.
    const out: IncomingHttpHeaders = {};
    for (const name in headers) if (!drop.has(name)) out[name] = headers[name];
    if (ctx.identity && clientIdHeader) out[clientIdHeader] = ctx.identity.clientId;
    if (ctx.identity && scopesHeader) out[scopesHeader] = ctx.identity.scopes.join(' ');
    if (upstreamSessionId) out['mcp-session-id'] = upstreamSessionId;
    out['x-forwarded-for'] = ctx.clientAddress;
    out['x-forwarded-proto'] = ctx.site.origin.startsWith('https:') ? 'https' : 'http';
    for (const [name, value] of extra) out[name] = value;
    if (ctx.body) out['content-length'] = String(ctx.body.length);
    return out;
  }

  /** The upstream head arrived: run the response stages (synchronously when none has I/O to do), then send. */
  function respond(exchange: Exchange, upstreamRes: IncomingMessage): void {
    const { ctx } = exchange;
    if (exchange.timer) clearTimeout(exchange.timer);
    if (exchange.refused) {
      upstreamRes.destroy();
      return;
    }
    ctx.timing.upstreamHead = deps.stopwatch();
    const headers: Record<string, string | string[]> = {};
    const raw = upstreamRes.headers;
    for (const name in raw) {
      const value = raw[name];
      // CORS is the proxy's policy (security.allowedOrigins, set by check-transport), not the upstream's.
      if (value !== undefined && !RESPONSE_DROP.has(name) && !name.startsWith('access-control-')) headers[name] = value;
    }
    const response = new UpstreamHead(upstreamRes.statusCode ?? 502, headers, upstreamRes);
    ctx.response = response;
    const fail = (err: unknown): void => {
      upstreamRes.destroy();
      exchange.reject(err instanceof WardenError ? err : new WardenError('INTERNAL', { cause: err }));
    };
    let pending: void | Promise<void>;
    try {
      pending = runResponseStages(deps.responseStages, ctx);
    } catch (err) {
      fail(err);
      return;
    }
    if (pending) pending.then(() => send(exchange, upstreamRes, response)).catch(fail);
    else send(exchange, upstreamRes, response);
  }

  function send(exchange: Exchange, upstreamRes: IncomingMessage, response: UpstreamHead): void {
    const { ctx } = exchange;
    const { res } = ctx;
    const { headers } = response;
    // A refusal was sent while a response stage waited (timeout, body cap, upstream error).
    if (exchange.refused || res.headersSent) {
      upstreamRes.destroy();
      return;
    }
    if (res.destroyed) {
      upstreamRes.destroy();
      exchange.resolve();
      return;
    }
    // The upstream cut its response while the stages ran (its 'aborted' already fired): nothing was
    // sent yet, so say so rather than pipe a dead stream into a response that would never end.
    if (!response.body && upstreamRes.destroyed && !upstreamRes.complete) {
      exchange.reject(new WardenError('UPSTREAM_UNAVAILABLE', { reason: 'reset' }));
      return;
    }
    ctx.timing.clientHead = deps.stopwatch();
    if (response.body) {
      delete headers['content-length'];
      res.writeHead(response.status, { ...headers, 'content-length': String(response.body.length) });
      res.end(response.body);
      return;
    }
    res.writeHead(response.status, headers);
    const isStream = String(headers['content-type'] ?? '').startsWith('text/event-stream');
    if (isStream) {
      // A stream's head goes now (a GET stream's headers must not wait for its first event); any
      // other head leaves with the first body chunk, in one write instead of two.
      res.flushHeaders();
      deps.onStreamStart?.(ctx, () => {
        upstreamRes.unpipe(res);
        upstreamRes.destroy();
        res.end();
      });
    }
    upstreamRes.on('error', () => {});
    upstreamRes.once('aborted', () => (isStream ? res.end() : res.destroy()));
    for (const chunk of response.prefix) res.write(chunk);
    upstreamRes.pipe(res);
  }

  return async function forward(ctx: RequestContext): Promise<void> {
    // The client hung up while an earlier stage waited on the store. Its 'close' has fired, so
    // nothing would ever end an upstream request made for it now: it would hold an upstream
    // connection (and this request) open until the upstream timeout.
    if (ctx.res.closed) {
      ctx.res.statusCode = CLIENT_CLOSED_REQUEST;
      return;
    }
    const upstream = need(ctx.upstream, 'ctx.upstream');
    let target = targets.get(upstream);
    if (!target) {
      const url = new URL(upstream);
      targets.set(upstream, (target = { url, path: `${url.pathname}${url.search}` }));
    }
    const { req, res } = ctx;
    // http-proxy copies req.headers and req.url into the upstream request: give it the rewritten
    // head and the upstream's own path (the client's path and query never reach the upstream).
    req.headers = upstreamHead(ctx, req.headers, ctx.upstreamSessionId);
    req.url = target.path;
    const chunked = ctx.body === null && req.headers['content-length'] === undefined && req.method !== 'GET' && req.method !== 'DELETE';
    // Only a POST body is ever piped upstream; anything else sends none (check-transport refuses a
    // GET or DELETE that announces one: see request smuggling there).
    const buffer = ctx.body ? Readable.from([ctx.body]) : chunked ? req.pipe(bodyCap(deps.maxBodyBytes)) : req.method === 'POST' ? undefined : Readable.from([]);

    ctx.timing.forwarded = deps.stopwatch();
    await new Promise<void>((resolve, rejectWith) => {
      const reject = (err: WardenError): void => {
        exchange.refused = true;
        rejectWith(err);
      };
      const exchange: Exchange = { ctx, resolve, reject, timer: null, upstreamReq: null, refused: false };
      exchange.timer = setTimeout(() => {
        exchange.upstreamReq?.destroy();
        reject(new WardenError('UPSTREAM_TIMEOUT', { reason: 'timeout' }));
      }, deps.upstreamTimeoutMs);
      const fail = (err: Error): void => {
        if (exchange.timer) clearTimeout(exchange.timer);
        // A client that hung up is not an upstream failure; http-proxy already aborted upstream.
        if (res.destroyed || req.socket.destroyed) return resolve();
        if (err instanceof WardenError) return reject(err);
        const code = (err as NodeJS.ErrnoException).code;
        reject(new WardenError('UPSTREAM_UNAVAILABLE', { reason: code === 'ECONNREFUSED' ? 'refused' : 'reset', cause: err }));
      };
      buffer?.on('error', (err) => {
        exchange.upstreamReq?.destroy();
        fail(err);
      });
      res.once('close', () => {
        if (exchange.timer) clearTimeout(exchange.timer);
        resolve();
      });
      const options: ExchangeOptions = { target: target.url, agent: target.url.protocol === 'https:' ? agents.https : agents.http, buffer, exchange };
      proxy.web(req, res, options, fail);
    });
  };
}
