/**
 * Issue 21's feature rows: the features of the other open issues (a 50-rule policy, budgets, the
 * audit trail, tracing), each turned on in its own mcp-warden on the private Redis with
 * store.clientCache, measured in the same interleaved, rotated rounds as bare-undici and the same
 * store with no feature (`warden-redis-cached`), so each feature's cost is its own row.
 */
import path from 'node:path';
import { auditConfig, budgetsOnlyConfig, loopBreakerConfig, policyConfig, tracingConfig } from './feature-configs.js';
import { fiftyRules } from './policy-rules.js';
import { measureThroughput, roundRatio } from './throughput.js';
import type { ThroughputOptions, ThroughputRow } from './throughput.js';
import type { Target, TargetName } from './targets.js';
import type { Credentials } from './workload.js';

/** Share of new traces recorded: what docs/observability.md recommends for production. */
export const TRACING_SAMPLE_RATIO = 0.1;

export type FeatureTargetName = 'warden-redis-policy' | 'warden-redis-budgets' | 'warden-redis-loop' | 'warden-redis-audit' | 'warden-redis-tracing';

export interface Feature {
  readonly target: FeatureTargetName;
  /** What is on, as the report's row and goal name it. */
  readonly label: string;
  /** Its own keys on the shared private Redis, like warden-redis-cached's `mcpw-cached:`. */
  readonly keyPrefix: string;
  /** Its config section: files go under `scratch`, spans to the `otlpUrl` receiver. */
  config(where: { readonly scratch: string; readonly otlpUrl: string }): Record<string, unknown>;
}

export const FEATURES: readonly Feature[] = [
  { target: 'warden-redis-policy', label: `${fiftyRules().length}-rule policy`, keyPrefix: 'mcpw-policy:', config: () => policyConfig() },
  // Apart: budgets are leased with the client cache, the loop breaker asks Redis on every call.
  { target: 'warden-redis-budgets', label: 'budgets (session, principal, per tool)', keyPrefix: 'mcpw-budgets:', config: () => budgetsOnlyConfig() },
  { target: 'warden-redis-loop', label: 'loop breaker', keyPrefix: 'mcpw-loop:', config: () => loopBreakerConfig() },
  { target: 'warden-redis-audit', label: 'audit trail (file sink)', keyPrefix: 'mcpw-audit:', config: ({ scratch }) => auditConfig(path.join(scratch, 'audit.jsonl')) },
  {
    target: 'warden-redis-tracing',
    label: `tracing (sampleRatio ${TRACING_SAMPLE_RATIO}, OTLP/HTTP to a receiver that drops)`,
    keyPrefix: 'mcpw-tracing:',
    config: ({ otlpUrl }) => tracingConfig(otlpUrl, TRACING_SAMPLE_RATIO),
  },
];

/** The floor and the feature-off row every feature row is compared with. */
const FLOOR: TargetName = 'bare-undici';
const FEATURE_OFF: TargetName = 'warden-redis-cached';

export interface FeatureRow extends ThroughputRow {
  /** The feature that was on; null for the floor and the feature-off row. */
  readonly feature: string | null;
  /** req/s against bare-undici's and against feature-off's: medians of the per-round ratios. */
  readonly vsFloor: number;
  readonly vsFeatureOff: number;
}

/** Measures bare-undici, feature-off and every feature target, interleaved and rotated. */
export async function measureFeatures(
  targets: readonly Target[],
  features: readonly Target[],
  credentials: ReadonlyMap<TargetName, Credentials>,
  options: ThroughputOptions,
): Promise<FeatureRow[]> {
  const pick = (name: TargetName): Target => {
    const target = targets.find((t) => t.name === name);
    if (!target) throw new Error(`features: target ${name} not started`);
    return target;
  };
  const rows = await measureThroughput([pick(FLOOR), pick(FEATURE_OFF), ...features], credentials, options);
  const floor = rows.find((r) => r.target === FLOOR);
  const off = rows.find((r) => r.target === FEATURE_OFF);
  if (!floor || !off) throw new Error('features: the floor or the feature-off row is missing');
  return rows.map((row) => ({
    ...row,
    feature: FEATURES.find((f) => f.target === row.target)?.label ?? null,
    vsFloor: roundRatio(row, floor),
    vsFeatureOff: roundRatio(row, off),
  }));
}
