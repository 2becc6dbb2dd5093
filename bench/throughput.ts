/**
 * Throughput and latency of a tool call through each target. Targets are interleaved in rounds,
 * each round starting one target later (round 1: direct, bare, bare-undici, memory, redis;
 * round 2: bare, bare-undici, memory, redis, direct; ...), so drift of a shared machine hits every target alike; the report
 * takes the median of the rounds.
 */
import { cpuSeconds } from './cpu-time.js';
import { measureLoad } from './measure.js';
import type { LoadResult } from './measure.js';
import { say } from './progress.js';
import { median } from './stats.js';
import type { Target, TargetName } from './targets.js';
import { postHeaders, TOOLS_CALL } from './workload.js';
import type { Credentials } from './workload.js';

export interface ThroughputOptions {
  readonly durationSeconds: number;
  readonly connections: number;
  readonly rounds: number;
  /** One unmeasured run per target first, so JIT warm-up is not billed to round 1. */
  readonly warmupSeconds: number;
}

export interface ThroughputRow {
  readonly target: TargetName;
  /** `bearer` when the requests carried a token, `none` for mcp-warden without a token endpoint. */
  readonly auth: 'bearer' | 'none' | 'n/a';
  readonly store: 'memory' | 'redis' | null;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Socket errors plus non-2xx responses, summed over the rounds. */
  readonly failures: number;
  /**
   * CPU time (user + system) of the target's own process per request, median of rounds: the
   * proxy alone for proxies, the upstream for `direct`. Steadier than req/s on a busy machine.
   */
  readonly cpuMicrosPerRequest: number;
  /** Redis commands per request (median of rounds), for the Redis-backed target. */
  readonly storeCommandsPerRequest: number | null;
  readonly rounds: readonly LoadResult[];
  /** Requests of the unmeasured warm-up run, so a profile can be read per request. */
  readonly warmupRequests: number;
}

/**
 * Median of the per-round ratios row/floor: rounds are interleaved, so each ratio has the
 * machine's drift of that round taken out.
 */
export function roundRatio(row: ThroughputRow, floor: ThroughputRow): number {
  const ratios = row.rounds.map((r, i) => r.requestsPerSecond / Math.max(1, floor.rounds[i]?.requestsPerSecond ?? 0)).filter((x) => Number.isFinite(x) && x > 0);
  return ratios.length > 0 ? median(ratios) : row.requestsPerSecond / Math.max(1, floor.requestsPerSecond);
}

/** `items` started at position `by` (wrapping): who goes first moves each round. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Measures every target `rounds` times, interleaved; rows come back in the targets' order. */
export async function measureThroughput(
  targets: readonly Target[],
  credentials: ReadonlyMap<TargetName, Credentials>,
  options: ThroughputOptions,
): Promise<ThroughputRow[]> {
  const spec = (target: Target, durationSeconds: number) => ({
    url: target.mcpUrl,
    method: 'POST' as const,
    headers: postHeaders(credentials.get(target.name) ?? null),
    body: TOOLS_CALL,
    connections: options.connections,
    durationSeconds,
  });
  const warmup = new Map<TargetName, number>();
  if (options.warmupSeconds > 0) {
    say(`throughput: warm-up ${options.warmupSeconds}s per target`);
    for (const target of targets) warmup.set(target.name, (await measureLoad(spec(target, options.warmupSeconds))).requests);
  }
  const results = new Map<TargetName, LoadResult[]>(targets.map((t) => [t.name, []]));
  const commands = new Map<TargetName, number[]>(targets.map((t) => [t.name, []]));
  const cpu = new Map<TargetName, number[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < options.rounds; round++) {
    for (const target of rotate(targets, round)) {
      const before = (await target.storeCommands?.()) ?? 0;
      const cpuBefore = await cpuSeconds(target.child.pid);
      const result = await measureLoad(spec(target, options.durationSeconds));
      cpu.get(target.name)?.push((((await cpuSeconds(target.child.pid)) - cpuBefore) * 1e6) / Math.max(1, result.requests));
      if (target.storeCommands) commands.get(target.name)?.push(((await target.storeCommands()) - before) / Math.max(1, result.requests));
      results.get(target.name)?.push(result);
      say(`throughput round ${round + 1}/${options.rounds} ${target.name}: ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.p99Ms.toFixed(2)} ms`);
    }
  }
  return targets.map((target) => {
    const rounds = results.get(target.name) ?? [];
    const token = credentials.get(target.name)?.token ?? null;
    return {
      target: target.name,
      auth: target.store === null ? 'n/a' : token ? 'bearer' : 'none',
      store: target.store,
      requestsPerSecond: median(rounds.map((r) => r.requestsPerSecond)),
      p50Ms: median(rounds.map((r) => r.p50Ms)),
      p99Ms: median(rounds.map((r) => r.p99Ms)),
      failures: rounds.reduce((sum, r) => sum + r.errors + r.non2xx, 0),
      cpuMicrosPerRequest: median(cpu.get(target.name) ?? []),
      storeCommandsPerRequest: target.storeCommands ? median(commands.get(target.name) ?? []) : null,
      rounds,
      warmupRequests: warmup.get(target.name) ?? 0,
    };
  });
}
