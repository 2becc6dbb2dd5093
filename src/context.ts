import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context as TraceContext } from '@opentelemetry/api';
import type { Logger } from './observability/logger.js';
import type { RpcMessage } from './http/jsonrpc.js';
import type { RequestState, SessionRecord } from './store/types.js';
import type { LimitResult } from './store/limiters.js';
import type { WardenError } from './errors.js';
import type { Client } from './auth/clients.js';

/** How refusals on a route are written: JSON-RPC (MCP path), RFC 6749 JSON (OAuth), plain JSON. */
export type RouteKind = 'mcp' | 'oauth' | 'plain' | 'page' | 'admin';

/** The proxy's public addresses, fixed once the listener is up. */
export interface Site {
  /** Origin clients use, e.g. `https://mcp.example`. */
  readonly origin: string;
  /** Public MCP URL (`origin + mcpPath`): the RFC 8707 resource and the token audience. */
  readonly resource: string;
  /** RFC 9728 metadata URL for `resource` (path-suffixed form), used in `WWW-Authenticate`. */
  readonly resourceMetadataUrl: string;
  /** Token issuer (`iss`) and RFC 8414 issuer. */
  readonly issuer: string;
  /** Scope the MCP path requires, announced in challenges. */
  readonly requiredScope: string | null;
}

/** Who made a request, as proven by its bearer token. */
export interface Identity {
  /** The client id (own tokens) or the identity provider's `sub` (external issuers). */
  readonly clientId: string;
  /** Store namespace of the identity: the client id, or issuer-qualified for external subjects. */
  readonly principal: string;
  readonly scopes: readonly string[];
  /** Grant id (`gid`): shared by a client_credentials grant and its refreshed tokens; null for external issuers. */
  readonly grantId: string | null;
  readonly jti: string | null;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
  /** `self` for our own tokens, else the external issuer. */
  readonly issuer: string;
  /**
   * The person behind the request (interactive sign-in: IdP issuer + `sub`, never equal to a
   * client id), or null for a machine client. Sessions and policy bind to it when set.
   */
  readonly user: string | null;
  /** Groups of the person or subject (sign-in claim mapping, or an external token's `groups`); policy input. */
  readonly groups: readonly string[];
  /** The verified token's claims, for policy conditions on selected claims. Never logged. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Everything one request carries through the stages. Created fully shaped by `createContext`;
 * each field says which stage fills it. Nothing is ever added to `req` or `res`.
 */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Request id for logs (`reqId`). */
  readonly id: string;
  /** Injected clock time when the request arrived (ms). */
  readonly startedAt: number;
  /** High-resolution marks (`performance.now()` ms; 0 = not reached) for the latency metrics. */
  readonly timing: Timing;
  /** Child logger carrying `reqId`. */
  readonly log: Logger;
  readonly site: Site;
  /** Route template for logs and metrics (never the raw path): set by the router. */
  route: string;
  /** How refusals are written: set by the router. */
  kind: RouteKind;
  /** resolve-client-address: the socket address, or X-Forwarded-For as far as trustProxy allows. */
  clientAddress: string;
  /** accept-relay: the replica that relayed this request here (sidecar layout), or null. */
  relayedFrom: string | null;
  /** the message seam (pipeline/read-message), when a stage needed the body: the bytes and the parsed message. */
  body: Buffer | null;
  message: RpcMessage | null;
  /**
   * authenticate (or accept-relay, for a forged hop): why the caller is not authenticated. Kept,
   * not thrown, until load-state has read the address's failed-attempt block, which outranks it.
   */
  authFailure: WardenError | null;
  /** load-state (or load-address-block on other routes): how long the address stays blocked (0: not blocked). */
  addressBlockedMs: number;
  /** authenticate: the verified identity. */
  identity: Identity | null;
  /** load-state (MCP path) or client authentication (OAuth endpoints): the client's settings; null for external identities. */
  client: Client | null;
  /** load-state: the `Mcp-Session-Id` the client sent, as sent (the forward stage rewrites the request head). */
  presentedSessionId: string | null;
  /** load-state: store key of the presented proxy session id when its shape and tag are valid. */
  sessionKey: string | null;
  /** load-state: revocation state of the token and the session record, from one round trip. */
  state: RequestState | null;
  /** load-state: the client's rate limit after this request (enforce-rate-limit refuses on it). */
  limit: LimitResult | null;
  /**
   * enforce-rate-limit: headers every answer to this request carries (RateLimit-*); whatever
   * writes the head adds them (`addResponseHeaders`). Not set on `res`: Node would then keep a
   * header table on it (a dictionary and an array per header) for as long as a stream lives.
   */
  responseHeaders: Readonly<Record<string, string>> | null;
  /** resolve-session: the caller's session, when it presented a valid one. */
  session: SessionRecord | null;
  /** resolve-session: an initialize without a session id; the response stage mints the proxy id. */
  creating: boolean;
  /** resolve-session: the upstream session id to send upstream (never the client's own header). */
  upstreamSessionId: string | null;
  /** resolve-session: index of the upstream this request goes to. */
  upstreamIndex: number | null;
  /** resolve-session: the upstream MCP URL this request goes to (the owner replica's when relayed). */
  upstream: string | null;
  /** resolve-session: the replica that owns the session and gets this request relayed, or null. */
  relayTo: string | null;
  /** forward: the upstream's response head, editable by the response stages before it is sent. */
  response: UpstreamResponse | null;
  /** authorize: the policy's decision of each message (the audit trail records them). */
  decisions: readonly { readonly outcome: 'allow' | 'deny' | 'step_up'; readonly rule: string | null }[] | null;
  /** The refusal this request was answered with (set as it is sent), for the audit trail. */
  refusal: string | null;
  /** token endpoint: the `grant_type` asked for (metrics), or null. */
  grantType: string | null;
  /** tracing, when on: the request span's context (parent of the stage spans); null when off. */
  trace: TraceContext | null;
  /** tracing, when on: the trace id, added to every log line of the request. */
  traceId: string | null;
  /** tracing, when on: `traceparent` (and `tracestate`) of the upstream span, sent upstream instead of the caller's. */
  traceHeaders: Readonly<Record<string, string>> | null;
}

export interface Timing {
  received: number;
  /** forward: the upstream request is about to be sent. */
  forwarded: number;
  /** forward: the upstream response head arrived. */
  upstreamHead: number;
  /** forward: the response head went to the client. */
  clientHead: number;
}

/** The upstream response head as the response stages see and rewrite it. */
export interface UpstreamResponse {
  status: number;
  readonly headers: Record<string, string | string[]>;
  /** Set once a response stage read the body: it is sent instead of piping the upstream's. */
  body: Buffer | null;
  /** Reads the upstream body when it is at most `maxBytes` (else null, and it still streams through). */
  readBody(maxBytes: number): Promise<Buffer | null>;
  /**
   * Rewrites an event-stream body event by event as it streams (JSON bodies: `readBody`, then set
   * `body`). The transform throws when it cannot inspect an event: the stream is then cut.
   * Absent where the body is not streamed from an upstream (the legacy bridge's own answers).
   */
  transformEvents?(transform: (data: string) => string): void;
}

interface ContextInit {
  readonly id: string;
  readonly startedAt: number;
  readonly receivedMark: number;
  readonly log: Logger;
  readonly site: Site;
}

/**
 * A class rather than an object literal: a literal with a getter is built on V8's slow path on
 * every request, a class instance gets one fixed shape.
 */
class Context implements RequestContext {
  readonly id: string;
  readonly startedAt: number;
  readonly timing: Timing;
  readonly site: Site;
  route = 'unknown';
  kind: RouteKind = 'plain';
  clientAddress: string;
  relayedFrom: string | null = null;
  body: Buffer | null = null;
  message: RpcMessage | null = null;
  authFailure: WardenError | null = null;
  addressBlockedMs = 0;
  identity: Identity | null = null;
  client: Client | null = null;
  presentedSessionId: string | null = null;
  sessionKey: string | null = null;
  state: RequestState | null = null;
  limit: LimitResult | null = null;
  responseHeaders: Readonly<Record<string, string>> | null = null;
  session: SessionRecord | null = null;
  creating = false;
  upstreamSessionId: string | null = null;
  upstreamIndex: number | null = null;
  upstream: string | null = null;
  relayTo: string | null = null;
  response: UpstreamResponse | null = null;
  decisions: RequestContext['decisions'] = null;
  refusal: string | null = null;
  grantType: string | null = null;
  trace: TraceContext | null = null;
  traceId: string | null = null;
  traceHeaders: Readonly<Record<string, string>> | null = null;
  #log: Logger | null = null;
  readonly #parentLog: Logger;

  readonly req: IncomingMessage;
  readonly res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse, init: ContextInit) {
    this.req = req;
    this.res = res;
    this.id = init.id;
    this.startedAt = init.startedAt;
    this.timing = { received: init.receivedMark, forwarded: 0, upstreamHead: 0, clientHead: 0 };
    this.site = init.site;
    this.clientAddress = req.socket.remoteAddress ?? '';
    this.#parentLog = init.log;
  }

  /** The child logger is made on first use: most requests log nothing at the default levels. */
  get log(): Logger {
    return (this.#log ??= this.#parentLog.child(this.traceId === null ? { reqId: this.id } : { reqId: this.id, traceId: this.traceId }));
  }
}

export function createContext(req: IncomingMessage, res: ServerResponse, init: ContextInit): RequestContext {
  return new Context(req, res, init);
}

/** Reads a field an earlier stage must have set; a null here is a bug in the stage order (500). */
export function need<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`stage order bug: ${what} is not set`);
  return value;
}
