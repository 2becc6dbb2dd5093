import client from 'prom-client';
import type { Registry } from 'prom-client';
import type { EventFields, SecurityEvent } from './events.js';
import { VERSION } from '../version.js';
import { END_REASONS } from '../session/end-session.js';
import type { EndReason } from '../session/end-session.js';

const METHODS = new Set(['GET', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'PATCH', 'HEAD']);
// MCP methods a client sends (2024-11-05 to 2026-07-28): any other method is counted as "other".
const MCP_METHODS = new Set([
  'initialize', 'ping', 'server/discover', 'tools/list', 'tools/call', 'prompts/list', 'prompts/get', 'resources/list',
  'resources/templates/list', 'resources/read', 'resources/subscribe', 'resources/unsubscribe', 'completion/complete',
  'logging/setLevel', 'subscriptions/listen', 'tasks/get', 'tasks/list', 'tasks/result', 'tasks/cancel',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed',
]);

const GRANTS = new Set(['client_credentials', 'refresh_token', 'authorization_code']);

/** An MCP method as a label: one a client may send, "response" for a client's answer, else "other". */
const methodLabel = (method: string | null): string => (method === null ? 'response' : MCP_METHODS.has(method) ? method : 'other');

/** What the policy decided about one message, as a metrics label. */
export type PolicyOutcome = 'allow' | 'deny' | 'step_up';

/**
 * Every metric mcp-warden exports (prefix `mcp_warden_`). Labels come from closed sets only (route
 * templates, methods, status codes, refusal codes and reasons, limiter names): never client ids,
 * session ids or raw paths, which would let traffic grow the series without bound.
 */
export interface Metrics {
  readonly registry: Registry;
  request(route: string, method: string, status: number): void;
  /** Time to the upstream's response head, per request that reached the upstream (`upstream`: its host and path, from config). */
  upstreamLatency(seconds: number, upstream: string): void;
  /** An upstream that failed a request (refused, timed out, broke off), by refusal reason. */
  upstreamError(upstream: string, reason: string): void;
  /** One MCP message a client posted, by method (each member of a batch). */
  mcpMessage(method: string | null): void;
  /** A token endpoint answer: issued (200) or refused (the error code), by grant type asked for. */
  tokenRequest(grant: string | null, refusal: string | null): void;
  /** Counts what metrics count of a security event (sessions created and ended). */
  securityEvent(event: SecurityEvent, fields: EventFields): void;
  /** Whether the store answered its last check (1) or not (0). */
  storeUp(up: boolean): void;
  /** Time mcp-warden itself added: before the upstream request and after its response head. */
  overhead(seconds: number): void;
  refusal(code: string, reason: string | undefined): void;
  authFailure(reason: string): void;
  rateLimited(limiter: string): void;
  storeError(): void;
  /** The store came back without its data (a new store life began). */
  storeDataLost(): void;
  /** Audit records lost (a full queue or a failing sink). */
  auditLost(count: number): void;
  openStreams(delta: 1 | -1): void;
  /**
   * One policy decision. `tool` must already be bounded by the caller: a tool name listed in the
   * policy, else "other" (or "none" for a message that names no tool).
   */
  policyDecision(method: string | null, outcome: PolicyOutcome, tool: string): void;
}

export function createMetrics(registry: Registry = new client.Registry(), options: { sessionsActive?: () => Promise<number> } = {}): Metrics {
  const prefix = 'mcp_warden_';
  client.collectDefaultMetrics({ register: registry, prefix });
  new client.Gauge({ name: `${prefix}build_info`, help: 'Always 1: the version of mcp-warden and of Node.js it runs on.', labelNames: ['version', 'node'], registers: [registry] }).set({ version: VERSION, node: process.version }, 1);
  const storeUp = new client.Gauge({ name: `${prefix}store_up`, help: '1 when the store answered its last check (every 5 s, and on every store error), else 0.', registers: [registry] });
  storeUp.set(1);
  const upstreamErrors = new client.Counter({ name: `${prefix}upstream_errors_total`, help: 'Requests an upstream failed, by upstream (host and path) and reason.', labelNames: ['upstream', 'reason'], registers: [registry] });
  const mcpMessages = new client.Counter({ name: `${prefix}mcp_messages_total`, help: 'MCP messages clients posted, by method (each member of a batch; "response" for a client\'s answer).', labelNames: ['method'], registers: [registry] });
  const tokensIssued = new client.Counter({ name: `${prefix}tokens_issued_total`, help: 'Tokens issued by the token endpoint, by grant type.', labelNames: ['grant'], registers: [registry] });
  const tokensRefused = new client.Counter({ name: `${prefix}tokens_refused_total`, help: 'Token requests refused, by grant type asked for and error code.', labelNames: ['grant', 'code'], registers: [registry] });
  const sessionsCreated = new client.Counter({ name: `${prefix}sessions_created_total`, help: 'Sessions created on this replica.', registers: [registry] });
  const sessionsEnded = new client.Counter({ name: `${prefix}sessions_ended_total`, help: 'Sessions ended on this replica, by reason (idle and lifetime expiry happen in the store and are not counted).', labelNames: ['reason'], registers: [registry] });
  const requests = new client.Counter({ name: `${prefix}requests_total`, help: 'Requests by route template, method and status.', labelNames: ['route', 'method', 'status'], registers: [registry] });
  const upstream = new client.Histogram({ name: `${prefix}upstream_latency_seconds`, help: 'Time until the upstream response head arrived, by upstream (host and path).', labelNames: ['upstream'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] });
  const overhead = new client.Histogram({ name: `${prefix}proxy_overhead_seconds`, help: 'Time mcp-warden added to a proxied request (auth, state, session, header rewriting).', buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1], registers: [registry] });
  const refusals = new client.Counter({ name: `${prefix}refusals_total`, help: 'Refusals by error code and reason.', labelNames: ['code', 'reason'], registers: [registry] });
  const auth = new client.Counter({ name: `${prefix}auth_failures_total`, help: 'Authentication failures by reason.', labelNames: ['reason'], registers: [registry] });
  const limited = new client.Counter({ name: `${prefix}rate_limited_total`, help: 'Rate-limit rejections by limiter.', labelNames: ['limiter'], registers: [registry] });
  const storeErrors = new client.Counter({ name: `${prefix}store_errors_total`, help: 'Store (Redis) errors.', registers: [registry] });
  const auditLosses = new client.Counter({ name: `${prefix}audit_records_lost_total`, help: 'Audit records that could not be written (queue full or sink failing).', registers: [registry] });
  const storeLosses = new client.Counter({ name: `${prefix}store_data_lost_total`, help: 'Times the store came back without its data (tokens issued before were then refused).', registers: [registry] });
  const streams = new client.Gauge({ name: `${prefix}open_streams`, help: 'SSE responses currently streaming through this replica.', registers: [registry] });
  const decisions = new client.Counter({ name: `${prefix}policy_decisions_total`, help: 'Policy decisions by MCP method, outcome and tool (tools named in the policy only).', labelNames: ['method', 'decision', 'tool'], registers: [registry] });
  const sessionsActive = options.sessionsActive;
  if (sessionsActive) {
    new client.Gauge({
      name: `${prefix}sessions_active`,
      help: 'Open sessions in the store (all replicas).',
      registers: [registry],
      async collect() {
        this.set(await sessionsActive().catch(() => Number.NaN));
      },
    });
  }

  // Label children by key: prom-client would otherwise hash the label object on every request.
  const requestSeries = new Map<string, client.Counter.Internal>();
  // Keyed by values from closed sets (upstreams from config, MCP method labels).
  const upstreamSeries = new Map<string, client.Histogram.Internal<string>>();
  const messageSeries = new Map<string, client.Counter.Internal>();
  return {
    registry,
    request: (route, method, status) => {
      const m = METHODS.has(method) ? method : 'other';
      const key = `${route} ${m} ${status}`;
      let series = requestSeries.get(key);
      if (!series) requestSeries.set(key, (series = requests.labels({ route, method: m, status: String(status) })));
      series.inc();
    },
    upstreamLatency: (s, name) => {
      let series = upstreamSeries.get(name);
      if (!series) upstreamSeries.set(name, (series = upstream.labels({ upstream: name })));
      series.observe(s);
    },
    upstreamError: (name, reason) => upstreamErrors.inc({ upstream: name, reason }),
    mcpMessage: (method) => {
      const label = methodLabel(method);
      let series = messageSeries.get(label);
      if (!series) messageSeries.set(label, (series = mcpMessages.labels({ method: label })));
      series.inc();
    },
    tokenRequest: (grant, refusal) => {
      const g = grant === null ? 'none' : GRANTS.has(grant) ? grant : 'other';
      if (refusal === null) tokensIssued.inc({ grant: g });
      else tokensRefused.inc({ grant: g, code: refusal });
    },
    securityEvent: (event, fields) => {
      if (event === 'session.created') sessionsCreated.inc();
      else if (event === 'session.ended') sessionsEnded.inc({ reason: fields.reason && END_REASONS.has(fields.reason as EndReason) ? fields.reason : 'other' });
    },
    storeUp: (up) => storeUp.set(up ? 1 : 0),
    overhead: (s) => overhead.observe(s),
    refusal: (code, reason) => refusals.inc({ code, reason: reason ?? 'none' }),
    authFailure: (reason) => auth.inc({ reason }),
    rateLimited: (limiter) => limited.inc({ limiter }),
    storeError: () => storeErrors.inc(),
    storeDataLost: () => storeLosses.inc(),
    auditLost: (count) => auditLosses.inc(count),
    openStreams: (delta) => streams.inc(delta),
    policyDecision: (method, outcome, tool) => decisions.inc({ method: methodLabel(method), decision: outcome, tool }),
  };
}
