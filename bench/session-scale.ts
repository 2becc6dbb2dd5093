/**
 * Does a request get slower as Redis holds more sessions? Fills Redis (directly, not through the
 * proxy) to 1e3, 1e5 and 1e6 session records (written in mcp-warden's own format) and measures tool-call latency through the
 * Redis-backed mcp-warden at each level. The levels cannot be interleaved (a fill only grows), so
 * each level alternates the proxy with the bare proxy, whose latency does not depend on Redis:
 * the difference between the two is what a level costs, with the machine's drift taken out.
 * The same fill gives Redis memory per session.
 */
import { measureLoad } from './measure.js';
import type { LoadResult } from './measure.js';
import { say } from './progress.js';
import { fillSessions, recordValue, sampleSessionKey } from './redis-fill.js';
import type { PrivateRedis } from './redis-server.js';
import { median } from './stats.js';
import type { Target } from './targets.js';
import { postHeaders, TOOLS_CALL } from './workload.js';
import type { Credentials } from './workload.js';

const SESSION_LEVELS = [1_000, 100_000, 1_000_000] as const;
/** Alternating rounds (mcp-warden, then bare) per level; the medians are reported. */
export const ROUNDS_PER_LEVEL = 5;

export interface SessionLevelRow {
  readonly storedSessions: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The bare proxy's p50 in the same rounds, and mcp-warden's p50 over it. */
  readonly referenceP50Ms: number;
  readonly p50OverReferenceMs: number;
  /** mcp-warden's p50 over bare in each round pair: how much the figure moves at one level. */
  readonly roundOverReferenceMs: readonly number[];
  readonly failures: number;
  readonly storeCommandsPerRequest: number;
}

export interface RedisMemoryResult {
  readonly keysAdded: number;
  readonly usedMemoryDeltaBytes: number;
  /** used_memory delta divided by the keys added: what Redis really pays, dict overhead included. */
  readonly bytesPerSession: number;
  /** `MEMORY USAGE` of one record key: key, value and object overhead, without the dicts. */
  readonly memoryUsageOneKey: number | null;
  readonly valueBytes: number;
}

export interface SessionScaleOptions {
  /** Latency at each level; off when only the memory figure is wanted. */
  readonly measureLatency: boolean;
  readonly durationSeconds: number;
  readonly connections: number;
  /** Unmeasured seconds before the first level, so the first level is not the one paying for JIT. */
  readonly warmupSeconds: number;
}

/** Fills level by level, measuring at each; returns the rows (empty without latency) and memory. */
export async function measureSessionScale(
  target: { readonly target: Target; readonly credentials: Credentials | null },
  reference: { readonly target: Target; readonly credentials: Credentials | null },
  redis: PrivateRedis,
  options: SessionScaleOptions,
): Promise<{ levels: SessionLevelRow[]; memory: RedisMemoryResult }> {
  const spec = (of: typeof target, durationSeconds: number) => ({
    url: of.target.mcpUrl, method: 'POST' as const, headers: postHeaders(of.credentials), body: TOOLS_CALL,
    connections: options.connections, durationSeconds,
  });
  if (options.measureLatency && options.warmupSeconds > 0) await measureLoad(spec(target, options.warmupSeconds));
  const levels: SessionLevelRow[] = [];
  let stored = 0;
  // Summed over the fills only: whatever mcp-warden writes while being measured is not a record.
  let usedDelta = 0;
  for (const level of SESSION_LEVELS) {
    const started = Date.now();
    const usedBefore = await redis.info('memory', 'used_memory');
    await fillSessions(redis.port, level - stored, { start: stored });
    usedDelta += (await redis.info('memory', 'used_memory')) - usedBefore;
    say(`sessions: filled Redis to ${level} records in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    stored = level;
    if (!options.measureLatency) continue;
    const results: LoadResult[] = [];
    const references: LoadResult[] = [];
    let commands = 0;
    for (let round = 0; round < ROUNDS_PER_LEVEL; round++) {
      const before = await redis.info('stats', 'total_commands_processed');
      results.push(await measureLoad(spec(target, options.durationSeconds)));
      commands += (await redis.info('stats', 'total_commands_processed')) - before;
      references.push(await measureLoad(spec(reference, options.durationSeconds)));
    }
    const p50Ms = median(results.map((r) => r.p50Ms));
    const referenceP50Ms = median(references.map((r) => r.p50Ms));
    levels.push({
      storedSessions: level,
      requestsPerSecond: median(results.map((r) => r.requestsPerSecond)),
      p50Ms,
      p99Ms: median(results.map((r) => r.p99Ms)),
      referenceP50Ms,
      p50OverReferenceMs: p50Ms - referenceP50Ms,
      roundOverReferenceMs: results.map((r, i) => r.p50Ms - (references[i]?.p50Ms ?? 0)),
      failures: results.reduce((sum, r) => sum + r.errors + r.non2xx, 0),
      storeCommandsPerRequest: commands / Math.max(1, results.reduce((sum, r) => sum + r.requests, 0)),
    });
    say(`sessions: ${level} stored -> p50 ${p50Ms.toFixed(2)} ms (bare ${referenceP50Ms.toFixed(2)} ms), p99 ${levels.at(-1)?.p99Ms.toFixed(2)} ms`);
  }
  const key = await sampleSessionKey(redis.client);
  const memory: RedisMemoryResult = {
    keysAdded: stored,
    usedMemoryDeltaBytes: usedDelta,
    bytesPerSession: usedDelta / stored,
    memoryUsageOneKey: key ? await redis.client.memory('USAGE', key) : null,
    valueBytes: Buffer.byteLength(recordValue()),
  };
  say(`sessions: Redis memory ${memory.bytesPerSession.toFixed(0)} bytes per session (MEMORY USAGE of one: ${memory.memoryUsageOneKey ?? '?'})`);
  return { levels, memory };
}
