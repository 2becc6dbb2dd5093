/** Command-line options of `npm run bench -- ...`. */
import { parseArgs } from 'node:util';

export const MEASUREMENTS = ['throughput', 'features', 'sse', 'streams', 'sessions', 'memory'] as const;
export type Measurement = (typeof MEASUREMENTS)[number];

export interface BenchOptions {
  /** Seconds per throughput measurement. */
  readonly duration: number;
  readonly connections: number;
  /** Connections of the second throughput run, enough to saturate the proxies (0: skipped). */
  readonly saturate: number;
  readonly rounds: number;
  /** Unmeasured seconds per target before round 1. */
  readonly warmup: number;
  readonly only: ReadonlySet<Measurement>;
  /** Idle GET streams to hold. */
  readonly streams: number;
  readonly sseSamples: number;
  /** Seconds per session-level latency measurement. */
  readonly sessionDuration: number;
  /** Write V8 CPU profiles of the mcp-warden children and summarise them. */
  readonly profile: boolean;
  readonly skipBuild: boolean;
}

export const USAGE = `npm run bench -- [options]
  --duration <s>          seconds per throughput (and features) measurement (default 5)
  --connections <n>       concurrent connections of the load generator (default 10)
  --saturate <n>          connections of a second throughput run that keeps every proxy busy
                          (default 40, 0 = skip)
  --rounds <n>            interleaved rounds; the median is reported (default 3)
  --warmup <s>            unmeasured seconds per target before round 1 (default 1, 0 = none)
  --only <list>           comma list of ${MEASUREMENTS.join(',')} (default: all)
  --streams <n>           idle GET streams to hold for the RSS measurement (default 10000)
  --sse-samples <n>       sequential streams per target for first-event latency (default 50)
  --session-duration <s>  seconds per latency measurement at each Redis session level (default 3)
  --profile               CPU-profile the mcp-warden children; summary in bench/results/profile.md
  --skip-build            do not run \`npm run build\` first
  --help`;

function positive(name: string, raw: string | undefined, fallback: number, allowZero = false): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) throw new Error(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got "${raw}"`);
  return value;
}

/** Parses argv; throws a usage error with a message naming the bad option. */
export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      saturate: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      only: { type: 'string' },
      streams: { type: 'string' },
      'sse-samples': { type: 'string' },
      'session-duration': { type: 'string' },
      profile: { type: 'boolean', default: false },
      'skip-build': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  const only = new Set<Measurement>();
  for (const item of (values.only ?? MEASUREMENTS.join(',')).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(MEASUREMENTS as readonly string[]).includes(item)) throw new Error(`--only: unknown measurement "${item}" (known: ${MEASUREMENTS.join(', ')})`);
    only.add(item as Measurement);
  }
  return {
    duration: positive('duration', values.duration, 5),
    connections: Math.round(positive('connections', values.connections, 10)),
    saturate: Math.round(positive('saturate', values.saturate, 40, true)),
    rounds: Math.round(positive('rounds', values.rounds, 3)),
    warmup: positive('warmup', values.warmup, 1, true),
    only,
    streams: Math.round(positive('streams', values.streams, 10_000)),
    sseSamples: Math.round(positive('sse-samples', values['sse-samples'], 50)),
    sessionDuration: positive('session-duration', values['session-duration'], 3),
    profile: values.profile,
    skipBuild: values['skip-build'],
  };
}
