/**
 * The config of each feature whose cost the bench measures, shared by the one-off scripts
 * (policy.ts, agent-safety.ts, tracing.ts) and the main bench's `--only features`, so both
 * measure the same thing.
 */
import { fiftyRules } from './policy-rules.js';

const BIG = { points: 1_000_000_000, duration: '1h' };

/** 50 rules of every kind that a tools/call of `echo` is checked against (default deny). */
export function policyConfig(): Record<string, unknown> {
  return { policy: { default: 'deny', rules: fiftyRules() } };
}

/** Session, principal and a per-tool budget, none of which ever trips. */
export function budgetsOnlyConfig(): Record<string, unknown> {
  return { budgets: { session: BIG, principal: BIG, tools: [{ tools: ['echo'], ...BIG }] } };
}

/** The loop breaker alone, never tripping. */
export function loopBreakerConfig(): Record<string, unknown> {
  // The bench repeats one call: the breaker must not trip (it is measured, not exercised).
  return { loopBreaker: { maxRepeats: 100_000, window: '1s', coolDown: '1s' } };
}

/** The budgets and the loop breaker together (bench/agent-safety.ts). */
export function budgetsConfig(): Record<string, unknown> {
  return { ...budgetsOnlyConfig(), ...loopBreakerConfig() };
}

/** The audit trail to a JSON Lines file (the `file` sink). */
export function auditConfig(file: string): Record<string, unknown> {
  return { audit: { sinks: ['file'], file, key: 'bench-audit-key-0123456789abcdef-0123' } };
}

/** Tracing exported over OTLP/HTTP to `endpoint`, `sampleRatio` of new traces recorded. */
export function tracingConfig(endpoint: string, sampleRatio: number): Record<string, unknown> {
  return { tracing: { otlpEndpoint: endpoint, sampleRatio } };
}
