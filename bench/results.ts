/** Everything one run measured: what report.ts renders and latest.json holds. */
import type { BenchOptions } from './args.js';
import type { FeatureRow } from './features.js';
import type { FirstEventResult } from './first-event.js';
import type { IdleStreamsResult } from './idle-streams.js';
import type { MachineInfo } from './machine.js';
import type { RedisMemoryResult, SessionLevelRow, SessionScaleResult } from './session-scale.js';
import type { ThroughputRow } from './throughput.js';

export interface WardenFacts {
  /** `bearer` when POST /oauth/token issued a token; `none` when it answered 404 (not built yet). */
  readonly auth: 'bearer' | 'none';
  /** Whether `--store redis` opened a connection to the private Redis at all. */
  readonly redisConnected: boolean;
}

export interface BenchResults {
  readonly machine: MachineInfo;
  readonly options: Omit<BenchOptions, 'only'> & { readonly only: readonly string[] };
  /** null when the measurement was not selected with --only. */
  readonly throughput: readonly ThroughputRow[] | null;
  /** The same at `--saturate` connections; null when skipped. */
  readonly throughputSaturated: readonly ThroughputRow[] | null;
  /** bare-undici, Redis + clientCache without a feature, then one row per feature (features.ts); null when skipped. */
  readonly features: readonly FeatureRow[] | null;
  readonly firstEvent: readonly FirstEventResult[] | null;
  /** A Redis PING timed at the first-event pacing (median ms); null when not measured. */
  readonly firstEventRedisPingMs: number | null;
  readonly idleStreams: readonly IdleStreamsResult[] | null;
  readonly sessionScale: readonly SessionLevelRow[] | null;
  /** The bare proxy in the session levels' rounds. */
  readonly sessionReference: SessionScaleResult['reference'];
  readonly redisMemory: RedisMemoryResult | null;
  /** What mcp-warden supported in this run, so verdicts can say what they rest on. */
  readonly warden: WardenFacts;
  /** The same facts and other caveats, in words for the report. */
  readonly notes: readonly string[];
}
