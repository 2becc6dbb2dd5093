import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { RequestContext, UpstreamResponse } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { addResponseHeaders } from '../http/reply.js';
import { firstEvent, noEndpoint, readEndpoint } from './legacy-sse.js';
import { openUpstreamStream } from './forward.js';
import type { ForwardDeps } from './forward.js';
import type { ReadMessage } from './read-message.js';
import { runResponseStages } from './stage.js';
import type { ResponseStage } from './stage.js';
import type { UpstreamTransport } from './upstream-transport.js';

/**
 * Streamable HTTP clients in front of a legacy HTTP+SSE (2024-11-05) upstream (DESIGN §16). Per
 * proxy session this replica holds the upstream's event stream and posts each client message to
 * the upstream's message URL; answers come back on that stream and are routed by JSON-RPC id to
 * the client request waiting for them, as an SSE response. Progress notifications go to the request
 * that set their progress token; other server requests and notifications go to the one open
 * request, or, with several open (the legacy transport does not say which one caused them), to the
 * client's GET stream when it has one, else the newest request. The bridge is the upstream
 * session: when the upstream stream ends, the session ends (404 -32001).
 */

export interface LegacyBridgeDeps {
  readonly sseUrl: string;
  readonly agent: NonNullable<ForwardDeps['agent']>;
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  readonly upstreamTimeoutMs: number;
  readonly responseStages: readonly ResponseStage[];
  readonly readMessage: ReadMessage;
  readonly stopwatch: () => number;
  readonly onStreamStart?: ForwardDeps['onStreamStart'];
}

type Json = Record<string, unknown>;

/** A client request waiting for its answers on the upstream stream. */
interface Waiter {
  readonly ids: Set<string>;
  /** `params._meta.progressToken` of the requests: their progress notifications belong here. */
  readonly progressTokens: ReadonlySet<string>;
  /** Takes every message while the waiter is the newest one (server requests, notifications). */
  write(message: Json): void;
  end(): void;
}

const idKey = (id: unknown): string => JSON.stringify(id);

/** `params.progressToken` of a progress notification, or `params._meta.progressToken` of a request, as a key. */
function progressTokenOf(message: Json): string | null {
  const params = message.params as Json | undefined;
  const token = message.method === 'notifications/progress' ? params?.progressToken : (params?._meta as Json | undefined)?.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? idKey(token) : null;
}
const SSE_HEAD = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' };

/** One upstream legacy session, held by this replica. */
class Bridge {
  readonly key = randomBytes(18).toString('base64url');
  readonly messageUrl: URL;
  readonly waiters = new Set<Waiter>();
  standalone: ServerResponse | null = null;
  closed = false;
  #text = '';
  readonly #body: Readable;
  readonly #onClose: () => void;

  constructor(body: Readable, rest: Buffer, messageUrl: URL, onClose: () => void) {
    this.messageUrl = messageUrl;
    this.#body = body;
    this.#onClose = onClose;
    this.#text = rest.toString('utf8');
    body.setEncoding('utf8');
    body.on('data', (chunk: string) => this.#feed(chunk)).once('end', () => this.close()).once('close', () => this.close());
    this.#feed('');
    body.resume();
  }

  #feed(chunk: string): void {
    this.#text += chunk;
    for (let event = firstEvent(this.#text); event; event = firstEvent(this.#text)) {
      this.#text = this.#text.slice(event.rest);
      if (event.event !== 'message') continue;
      try {
        const parsed: unknown = JSON.parse(event.data);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) this.#dispatch(parsed as Json);
      } catch {
        // Not JSON-RPC: nothing a client could use.
      }
    }
  }

  /** An answer goes to the request that waits for its id; anything else to the newest open request, else the GET stream. */
  #dispatch(message: Json): void {
    const isAnswer = message.method === undefined && ('result' in message || 'error' in message);
    if (isAnswer) {
      for (const waiter of this.waiters) {
        if (!waiter.ids.delete(idKey(message.id))) continue;
        waiter.write(message);
        if (waiter.ids.size === 0) waiter.end();
        return;
      }
      return;
    }
    const token = message.method === 'notifications/progress' ? progressTokenOf(message) : null;
    if (token !== null) {
      for (const waiter of this.waiters) {
        if (!waiter.progressTokens.has(token)) continue;
        waiter.write(message);
        return;
      }
    }
    const open = [...this.waiters];
    const only = open.length === 1 ? open[0] : undefined;
    if (only) only.write(message);
    else if (this.standalone) this.standalone.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    else open.at(-1)?.write(message);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#body.destroy();
    for (const waiter of this.waiters) waiter.end();
    this.waiters.clear();
    this.standalone?.end();
    this.#onClose();
  }
}

/** The upstream transport of the MCP path when it bridges to a legacy upstream. */
export function legacySseBridge(deps: LegacyBridgeDeps): UpstreamTransport {
  const upstream = new URL(deps.sseUrl);
  const bridges = new Map<string, Bridge>();

  async function open(ctx: RequestContext): Promise<Bridge> {
    const abort = new AbortController();
    let stream;
    try {
      stream = await openUpstreamStream(deps.agent, upstream, { accept: 'text/event-stream', ...deps.upstreamHeaders, 'x-forwarded-for': ctx.clientAddress }, deps.upstreamTimeoutMs, abort.signal);
    } catch (err) {
      throw noEndpoint('The legacy SSE upstream did not answer', err);
    }
    stream.body.on('error', () => {});
    if (stream.statusCode !== 200 || !stream.contentType.startsWith('text/event-stream')) {
      stream.body.destroy();
      throw noEndpoint(`The legacy SSE upstream answered ${stream.statusCode}, not an event stream`);
    }
    const endpoint = await readEndpoint(stream.body, deps.upstreamTimeoutMs).catch((err: unknown) => {
      stream.body.destroy();
      throw err;
    });
    const messageUrl = URL.canParse(endpoint.data, upstream.href) ? new URL(endpoint.data, upstream) : null;
    if (!messageUrl || messageUrl.origin !== upstream.origin) {
      stream.body.destroy();
      throw noEndpoint('The legacy SSE upstream named a message endpoint on another origin');
    }
    const bridge: Bridge = new Bridge(stream.body, endpoint.rest, messageUrl, () => bridges.delete(bridge.key));
    bridges.set(bridge.key, bridge);
    return bridge;
  }

  async function post(ctx: RequestContext, messageUrl: URL, body: Buffer): Promise<void> {
    let reply;
    try {
      reply = await deps.agent.request({ origin: messageUrl.origin, path: `${messageUrl.pathname}${messageUrl.search}`, method: 'POST', headers: { 'content-type': 'application/json', ...deps.upstreamHeaders, 'x-forwarded-for': ctx.clientAddress }, body, headersTimeout: deps.upstreamTimeoutMs });
    } catch (err) {
      throw new WardenError('UPSTREAM_UNAVAILABLE', { reason: 'reset', cause: err });
    }
    await reply.body.dump();
    if (reply.statusCode === 404) throw new WardenError('UPSTREAM_UNAVAILABLE', { reason: 'reset', description: 'The legacy SSE upstream no longer knows this session' });
    if (reply.statusCode < 200 || reply.statusCode > 299) throw new WardenError('UPSTREAM_UNAVAILABLE', { reason: 'reset', description: `The legacy SSE upstream refused the message (${reply.statusCode})` });
  }

  /** Runs the response stages on a head the bridge made, then sends it (and `body`, if any). */
  async function answer(ctx: RequestContext, status: number, headers: Record<string, string | string[]>, body: Buffer | null): Promise<void> {
    ctx.timing.upstreamHead = deps.stopwatch();
    const response: UpstreamResponse = { status, headers, body, readBody: async () => body };
    ctx.response = response;
    await runResponseStages(deps.responseStages, ctx);
    ctx.timing.clientHead = deps.stopwatch();
    addResponseHeaders(ctx, response.headers);
    if (response.body) {
      response.headers['content-length'] = String(response.body.length);
      ctx.res.writeHead(response.status, response.headers);
      ctx.res.end(response.body);
    } else {
      ctx.res.writeHead(response.status, response.headers);
      if (response.status !== 200) ctx.res.end();
      else ctx.res.flushHeaders();
    }
  }

  /**
   * A waiter that streams to the client's response. Messages that arrive before the head is sent
   * (the upstream may answer before its 202 reaches us) wait for `start()`.
   */
  function streamTo(ctx: RequestContext, bridge: Bridge, ids: Set<string>, progressTokens: ReadonlySet<string>): { done: Promise<void>; start: () => void; cancel: () => void } {
    const { res } = ctx;
    const early: string[] = [];
    let open = false;
    let finished = false;
    let resolve = (): void => {};
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const waiter: Waiter = {
      ids,
      progressTokens,
      write: (message) => {
        const event = `event: message\ndata: ${JSON.stringify(message)}\n\n`;
        if (open) res.write(event);
        else early.push(event);
      },
      end: () => {
        bridge.waiters.delete(waiter);
        finished = true;
        if (open && !res.writableEnded) res.end();
        resolve();
      },
    };
    bridge.waiters.add(waiter);
    res.once('close', waiter.end);
    return {
      done,
      start: () => {
        open = true;
        for (const event of early.splice(0)) res.write(event);
        if (finished && !res.writableEnded) res.end();
      },
      cancel: () => bridge.waiters.delete(waiter),
    };
  }

  /** The ids of the requests in a posted body, as the upstream will echo them, and their progress tokens. */
  function requestsOf(body: Buffer): { ids: Set<string>; progressTokens: Set<string> } {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    const requests = ((Array.isArray(parsed) ? parsed : [parsed]) as Json[]).filter((m) => typeof m.method === 'string' && m.id !== undefined && m.id !== null);
    return {
      ids: new Set(requests.map((m) => idKey(m.id))),
      progressTokens: new Set(requests.map(progressTokenOf).filter((token) => token !== null)),
    };
  }

  return {
    kind: 'legacy-sse',
    forward: bridgeToLegacy,
    // Each upstream stream closed is an upstream session ended, not left to time out.
    close: () => {
      for (const bridge of [...bridges.values()]) bridge.close();
    },
  };

  async function bridgeToLegacy(ctx: RequestContext): Promise<void> {
    const method = ctx.req.method;
    ctx.timing.forwarded = deps.stopwatch();
    if (method === 'POST' && ctx.creating) {
      await deps.readMessage(ctx);
      const body = need(ctx.body, 'ctx.body');
      const bridge = await open(ctx);
      let reply: Json | null = null;
      const waiting = new Promise<void>((resolve) => {
        const waiter: Waiter = {
          ids: requestsOf(body).ids,
          progressTokens: new Set(),
          // Only the answer: a notification sent while initializing has no request to ride on yet.
          write: (m) => {
            if (m.method === undefined) reply = m;
          },
          end: () => {
            bridge.waiters.delete(waiter);
            resolve();
          },
        };
        bridge.waiters.add(waiter);
      });
      const timer = setTimeout(() => bridge.close(), deps.upstreamTimeoutMs);
      try {
        await post(ctx, bridge.messageUrl, body);
        await waiting;
      } catch (err) {
        bridge.close();
        throw err;
      } finally {
        clearTimeout(timer);
      }
      if (reply === null) {
        bridge.close();
        throw new WardenError('UPSTREAM_TIMEOUT', { reason: 'timeout', description: 'The legacy SSE upstream did not answer initialize' });
      }
      try {
        await answer(ctx, 200, { 'content-type': 'application/json', 'mcp-session-id': bridge.key }, Buffer.from(JSON.stringify(reply)));
      } catch (err) {
        bridge.close();
        throw err;
      }
      return;
    }

    const bridge = ctx.upstreamSessionId === null ? undefined : bridges.get(ctx.upstreamSessionId);
    if (!bridge || bridge.closed) {
      // The upstream stream is gone (or was held by a replica that restarted): the session is over.
      return answer(ctx, 404, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null })));
    }
    if (method === 'DELETE') {
      bridge.close();
      return answer(ctx, 200, {}, Buffer.alloc(0));
    }
    if (method === 'GET') {
      if (bridge.standalone) return answer(ctx, 409, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Conflict: only one GET stream per session' }, id: null })));
      await answer(ctx, 200, { ...SSE_HEAD }, null);
      bridge.standalone = ctx.res;
      await new Promise<void>((resolve) => {
        const end = (): void => {
          if (bridge.standalone === ctx.res) bridge.standalone = null;
          if (!ctx.res.writableEnded) ctx.res.end();
          resolve();
        };
        deps.onStreamStart?.(ctx, end);
        ctx.res.once('close', end);
        if (bridge.closed) end();
      });
      return;
    }
    await deps.readMessage(ctx);
    const body = need(ctx.body, 'ctx.body');
    const { ids, progressTokens } = requestsOf(body);
    if (ids.size === 0) {
      await post(ctx, bridge.messageUrl, body);
      return answer(ctx, 202, {}, Buffer.alloc(0));
    }
    const waiter = streamTo(ctx, bridge, ids, progressTokens);
    try {
      await post(ctx, bridge.messageUrl, body);
    } catch (err) {
      waiter.cancel();
      throw err;
    }
    await answer(ctx, 200, { ...SSE_HEAD }, null);
    deps.onStreamStart?.(ctx, () => ctx.res.end());
    waiter.start();
    await waiter.done;
  }
}
