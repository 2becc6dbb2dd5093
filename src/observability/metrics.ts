import client from 'prom-client';
import type { Registry } from 'prom-client';

const METHODS = new Set(['GET', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'PATCH', 'HEAD']);
// MCP methods a client sends (2024-11-05 to 2026-07-28): any other method is counted as "other".
const MCP_METHODS = new Set([
  'initialize', 'ping', 'server/discover', 'tools/list', 'tools/call', 'prompts/list', 'prompts/get', 'resources/list',
  'resources/templates/list', 'resources/read', 'resources/subscribe', 'resources/unsubscribe', 'completion/complete',
  'logging/setLevel', 'subscriptions/listen', 'tasks/get', 'tasks/list', 'tasks/result', 'tasks/cancel',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed',
]);

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
  /** Time to the upstream's response head, per request that reached the upstream. */
  upstreamLatency(seconds: number): void;
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
  const requests = new client.Counter({ name: `${prefix}requests_total`, help: 'Requests by route template, method and status.', labelNames: ['route', 'method', 'status'], registers: [registry] });
  const upstream = new client.Histogram({ name: `${prefix}upstream_latency_seconds`, help: 'Time until the upstream response head arrived.', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] });
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
  return {
    registry,
    request: (route, method, status) => {
      const m = METHODS.has(method) ? method : 'other';
      const key = `${route} ${m} ${status}`;
      let series = requestSeries.get(key);
      if (!series) requestSeries.set(key, (series = requests.labels({ route, method: m, status: String(status) })));
      series.inc();
    },
    upstreamLatency: (s) => upstream.observe(s),
    overhead: (s) => overhead.observe(s),
    refusal: (code, reason) => refusals.inc({ code, reason: reason ?? 'none' }),
    authFailure: (reason) => auth.inc({ reason }),
    rateLimited: (limiter) => limited.inc({ limiter }),
    storeError: () => storeErrors.inc(),
    storeDataLost: () => storeLosses.inc(),
    auditLost: (count) => auditLosses.inc(count),
    openStreams: (delta) => streams.inc(delta),
    policyDecision: (method, outcome, tool) => decisions.inc({ method: method === null ? 'response' : MCP_METHODS.has(method) ? method : 'other', decision: outcome, tool }),
  };
}
