import t from 'tap';
import client from 'prom-client';
import { readFileSync } from 'node:fs';
import { createMetrics } from '../../src/observability/metrics.js';
import { parseMetrics } from '../fixtures/probe.js';

/** Names prom-client's default metrics get under our prefix, to tell them from ours. */
function defaultNames(): Set<string> {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'mcp_warden_' });
  return new Set(registry.getMetricsAsArray().map((m) => m.name));
}

t.test('every metric is prefixed and labelled from a closed set of label names', async (t) => {
  const metrics = createMetrics(new client.Registry(), { sessionsActive: async () => 7 });
  const defaults = defaultNames();
  const ours = (await metrics.registry.getMetricsAsJSON()).filter((m) => !defaults.has(m.name));
  t.ok(ours.every((m) => m.name.startsWith('mcp_warden_')));
  t.same(Object.fromEntries(ours.map((m) => [m.name, m.type])), {
    mcp_warden_requests_total: 'counter',
    mcp_warden_upstream_latency_seconds: 'histogram',
    mcp_warden_proxy_overhead_seconds: 'histogram',
    mcp_warden_refusals_total: 'counter',
    mcp_warden_auth_failures_total: 'counter',
    mcp_warden_rate_limited_total: 'counter',
    mcp_warden_store_errors_total: 'counter',
    mcp_warden_store_data_lost_total: 'counter',
    mcp_warden_audit_records_lost_total: 'counter',
    mcp_warden_open_streams: 'gauge',
    mcp_warden_sessions_active: 'gauge',
    mcp_warden_policy_decisions_total: 'counter',
    mcp_warden_build_info: 'gauge',
    mcp_warden_store_up: 'gauge',
    mcp_warden_upstream_errors_total: 'counter',
    mcp_warden_mcp_messages_total: 'counter',
    mcp_warden_tokens_issued_total: 'counter',
    mcp_warden_tokens_refused_total: 'counter',
    mcp_warden_sessions_created_total: 'counter',
    mcp_warden_sessions_ended_total: 'counter',
  });
});

t.test('policy decisions: MCP methods from a closed set', async (t) => {
  const metrics = createMetrics(new client.Registry());
  metrics.policyDecision('tools/call', 'deny', 'other');
  metrics.policyDecision('x/'.repeat(50), 'allow', 'none');
  metrics.policyDecision(null, 'allow', 'none');
  const text = await metrics.registry.metrics();
  t.match(text, /mcp_warden_policy_decisions_total\{method="tools\/call",decision="deny",tool="other"\} 1/);
  t.match(text, /mcp_warden_policy_decisions_total\{method="other",decision="allow",tool="none"\} 1/, 'an unknown method is "other"');
  t.match(text, /mcp_warden_policy_decisions_total\{method="response",decision="allow",tool="none"\} 1/);
});

t.test('recorders feed the right series; unknown methods collapse to "other"', async (t) => {
  const metrics = createMetrics(new client.Registry(), { sessionsActive: async () => 7 });
  metrics.request('mcp', 'POST', 200);
  metrics.request('mcp', 'BREW', 418);
  metrics.upstreamLatency(0.02, 'up:1/mcp');
  metrics.upstreamError('up:1/mcp', 'timeout');
  metrics.mcpMessage('tools/call');
  metrics.mcpMessage('evil/'.repeat(30));
  metrics.mcpMessage(null);
  metrics.tokenRequest('client_credentials', null);
  metrics.tokenRequest('x'.repeat(300), 'OAUTH_UNSUPPORTED_GRANT_TYPE');
  metrics.tokenRequest(null, 'OAUTH_INVALID_REQUEST');
  metrics.securityEvent('session.created', {});
  metrics.securityEvent('session.ended', { reason: 'delete' });
  metrics.securityEvent('session.ended', { reason: 'made-up' });
  metrics.securityEvent('session.ended', { reason: 'evicted' });
  // The eviction's own event is not a second end.
  metrics.securityEvent('session.evicted', {});
  metrics.securityEvent('token.issued', {});
  metrics.storeUp(false);
  metrics.overhead(0.0003);
  metrics.refusal('TOKEN_MISSING', 'missing');
  metrics.refusal('NOT_FOUND', undefined);
  metrics.authFailure('expired');
  metrics.rateLimited('session_create');
  metrics.storeError();
  metrics.openStreams(1);
  metrics.openStreams(1);
  metrics.openStreams(-1);
  const samples = parseMetrics(await metrics.registry.metrics());
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
  t.equal(value('mcp_warden_requests_total', { route: 'mcp', method: 'POST', status: '200' }), 1);
  t.equal(value('mcp_warden_requests_total', { method: 'other', status: '418' }), 1, 'a method a client invents is not a label');
  t.equal(value('mcp_warden_upstream_latency_seconds_count', { upstream: 'up:1/mcp' }), 1, 'latency per upstream');
  t.equal(value('mcp_warden_upstream_errors_total', { upstream: 'up:1/mcp', reason: 'timeout' }), 1);
  t.equal(value('mcp_warden_mcp_messages_total', { method: 'tools/call' }), 1);
  t.equal(value('mcp_warden_mcp_messages_total', { method: 'other' }), 1, 'a method a client invents is not a label');
  t.equal(value('mcp_warden_mcp_messages_total', { method: 'response' }), 1);
  t.equal(value('mcp_warden_tokens_issued_total', { grant: 'client_credentials' }), 1);
  t.equal(value('mcp_warden_tokens_refused_total', { grant: 'other', code: 'OAUTH_UNSUPPORTED_GRANT_TYPE' }), 1, 'a grant a client invents is not a label');
  t.equal(value('mcp_warden_tokens_refused_total', { grant: 'none', code: 'OAUTH_INVALID_REQUEST' }), 1);
  t.equal(value('mcp_warden_sessions_created_total'), 1);
  t.equal(value('mcp_warden_sessions_ended_total', { reason: 'delete' }), 1);
  t.equal(value('mcp_warden_sessions_ended_total', { reason: 'other' }), 1);
  t.equal(value('mcp_warden_sessions_ended_total', { reason: 'evicted' }), 1);
  t.equal(value('mcp_warden_sessions_ended_total'), 3, 'token events count nothing here');
  t.equal(value('mcp_warden_store_up'), 0);
  t.equal(value('mcp_warden_build_info', { version: JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version, node: process.version }), 1);
  t.equal(value('mcp_warden_upstream_latency_seconds_bucket', { le: '0.025' }), 1);
  t.equal(value('mcp_warden_upstream_latency_seconds_bucket', { le: '0.01' }), 0);
  t.equal(value('mcp_warden_proxy_overhead_seconds_count'), 1);
  t.equal(value('mcp_warden_refusals_total', { code: 'NOT_FOUND', reason: 'none' }), 1);
  t.equal(value('mcp_warden_auth_failures_total', { reason: 'expired' }), 1);
  t.equal(value('mcp_warden_rate_limited_total', { limiter: 'session_create' }), 1);
  t.equal(value('mcp_warden_store_errors_total'), 1);
  t.equal(value('mcp_warden_open_streams'), 1);
  t.equal(value('mcp_warden_sessions_active'), 7);
});

t.test('a failing session count shows as NaN, not as zero sessions', async (t) => {
  const metrics = createMetrics(new client.Registry(), { sessionsActive: () => Promise.reject(new Error('store down')) });
  // prom-client writes "Nan"; Prometheus parses the value case-insensitively (Go's ParseFloat).
  t.match(await metrics.registry.metrics(), /^mcp_warden_sessions_active nan$/im);
});
