/**
 * Does a request get slower as Redis holds more sessions? One private Redis per level, filled
 * (directly, not through the proxy) to 1e3, 1e5 or 1e6 session records in mcp-warden's own
 * format, each with its own Redis-backed mcp-warden. The levels are then measured in interleaved
 * rounds with the bare proxy, like the throughput run, so the machine's drift hits every level
 * alike, once Redis has finished rehashing after the fill (see `rehashed`). Redis's own time per
 * state script (INFO commandstats) shows the store's side of it.
 * The largest fill gives Redis memory per session.
 */
import { measureLoad } from './measure.js';
import type { LoadResult } from './measure.js';
import { say } from './progress.js';
import { fillSessions, recordValue, sampleSessionKey } from './redis-fill.js';
import { startRedis } from './redis-server.js';
import type { PrivateRedis } from './redis-server.js';
import { median } from './stats.js';
import { rotate } from './throughput.js';
import type { Target } from './targets.js';
import { postHeaders, TOOLS_CALL } from './workload.js';
import type { Credentials } from './workload.js';

const SESSION_LEVELS = [1_000, 100_000, 1_000_000] as const;
/** Interleaved rounds (every level and the bare proxy, rotated); the medians are reported. */
export const SESSION_ROUNDS = 8;

export interface SessionLevelRow {
  readonly storedSessions: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** p50 of each round: how much the figure moves at one level. */
  readonly roundP50Ms: readonly number[];
  readonly failures: number;
  readonly storeCommandsPerRequest: number;
  /** Redis's own time per EVALSHA (the per-request state script), from INFO commandstats. */
  readonly redisMicrosPerScript: number | null;
  /** How long Redis kept rehashing after the fill; measured only once it was done. */
  readonly rehashSeconds: number;
}

export interface SessionScaleResult {
  readonly levels: SessionLevelRow[];
  /** The bare proxy in the same rounds, for reference. */
  readonly reference: { readonly p50Ms: number; readonly roundP50Ms: readonly number[] } | null;
  readonly memory: RedisMemoryResult;
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
  /** Unmeasured seconds per new mcp-warden before round 1, so no level pays for JIT. */
  readonly warmupSeconds: number;
  /** Starts a Redis-backed mcp-warden on the given Redis (the rig's `startRedisWarden`). */
  readonly startWarden: (redis: PrivateRedis) => Promise<Target>;
}

interface Level {
  readonly stored: number;
  readonly redis: PrivateRedis;
  readonly target: Target;
  readonly credentials: Credentials | null;
  readonly rehashSeconds: number;
}

const REHASH_LIMIT_MS = 300_000;

/**
 * Waits until Redis has finished rehashing its keyspace after a fill, and returns the seconds it
 * took. A fill that crosses a power of two (1e6 records: 1,048,576 buckets) starts an incremental
 * rehash of the key and expiry tables; at the default `hz` it runs for a minute or more, and
 * every lookup meanwhile costs about twice as much. A deployment pays that once, when its
 * keyspace doubles; measured inside it, the 1e6 level would show the rehash, not the count.
 * `hz` is raised while waiting, so the rehash's background steps come ten times as often, then
 * put back before anything is measured.
 */
async function rehashed(redis: PrivateRedis): Promise<number> {
  const started = Date.now();
  const [, hz] = (await redis.client.config('GET', 'hz')) as [string, string];
  await redis.client.config('SET', 'hz', '100');
  try {
    while (/rehashing target/i.test(String(await redis.client.call('DEBUG', 'HTSTATS', '0')))) {
      if (Date.now() - started > REHASH_LIMIT_MS) throw new Error(`Redis still rehashing ${REHASH_LIMIT_MS / 1000} s after a fill`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await redis.client.config('SET', 'hz', hz);
  }
  return (Date.now() - started) / 1000;
}

/** Redis's microseconds per call of EVALSHA so far, or null before the first call. */
async function microsPerScript(redis: PrivateRedis): Promise<number | null> {
  const stats = await redis.client.info('commandstats');
  const match = /^cmdstat_evalsha:.*usec_per_call=([\d.]+)/m.exec(stats);
  return match?.[1] ? Number(match[1]) : null;
}

/** A private Redis filled with `stored` records, once its rehash is over. */
async function fillLevel(stored: number): Promise<{ redis: PrivateRedis; rehashSeconds: number; usedDelta: number }> {
  const redis = await startRedis();
  const started = Date.now();
  const usedBefore = await redis.info('memory', 'used_memory');
  await fillSessions(redis.port, stored);
  const rehashSeconds = await rehashed(redis);
  // Read after the rehash: during it Redis holds the old tables as well as the new ones.
  const usedDelta = (await redis.info('memory', 'used_memory')) - usedBefore;
  say(`sessions: filled a Redis with ${stored} records in ${((Date.now() - started) / 1000).toFixed(1)} s (its rehash took ${rehashSeconds.toFixed(1)} s of that)`);
  return { redis, rehashSeconds, usedDelta };
}

async function memoryOf(redis: PrivateRedis, stored: number, usedDelta: number): Promise<RedisMemoryResult> {
  const key = await sampleSessionKey(redis.client);
  const memory = {
    keysAdded: stored,
    usedMemoryDeltaBytes: usedDelta,
    bytesPerSession: usedDelta / stored,
    memoryUsageOneKey: key ? await redis.client.memory('USAGE', key) : null,
    valueBytes: Buffer.byteLength(recordValue()),
  };
  say(`sessions: Redis memory ${memory.bytesPerSession.toFixed(0)} bytes per session (MEMORY USAGE of one: ${memory.memoryUsageOneKey ?? '?'})`);
  return memory;
}

/** Fills one Redis per level, measures the levels in interleaved rounds; returns the rows (none without latency) and memory. */
export async function measureSessionScale(reference: { readonly target: Target; readonly credentials: Credentials | null }, options: SessionScaleOptions): Promise<SessionScaleResult> {
  const largest = SESSION_LEVELS[SESSION_LEVELS.length - 1] as number;
  if (!options.measureLatency) {
    const { redis, usedDelta } = await fillLevel(largest);
    try {
      return { levels: [], reference: null, memory: await memoryOf(redis, largest, usedDelta) };
    } finally {
      await redis.child.stop(5_000);
    }
  }
  const levels: Level[] = [];
  try {
    let memory: RedisMemoryResult | null = null;
    for (const stored of SESSION_LEVELS) {
      const { redis, rehashSeconds, usedDelta } = await fillLevel(stored);
      if (stored === largest) memory = await memoryOf(redis, stored, usedDelta);
      const target = await options.startWarden(redis);
      levels.push({ stored, redis, target, credentials: await target.prepare(target.mcpUrl), rehashSeconds });
    }
    if (!memory) throw new Error('the largest level was not filled');
    return { ...(await measureLevels(levels, reference, options)), memory };
  } finally {
    // The other measurements should not share the machine with three idle proxies and 1.1e6 keys.
    await Promise.all(levels.flatMap((l) => [l.target.child.stop(5_000), l.redis.child.stop(5_000)]));
  }
}

async function measureLevels(levels: readonly Level[], reference: { readonly target: Target; readonly credentials: Credentials | null }, options: SessionScaleOptions): Promise<Omit<SessionScaleResult, 'memory'>> {
  const spec = (target: Target, credentials: Credentials | null, durationSeconds: number) => ({
    url: target.mcpUrl, method: 'POST' as const, headers: postHeaders(credentials), body: TOOLS_CALL,
    connections: options.connections, durationSeconds,
  });
  if (options.warmupSeconds > 0) for (const level of levels) await measureLoad(spec(level.target, level.credentials, options.warmupSeconds));
  const entries = [...levels, { ...reference, stored: null }];
  const results = new Map(entries.map((e): [typeof e, LoadResult[]] => [e, []]));
  const commands = new Map<(typeof entries)[number], number>();
  for (let round = 0; round < SESSION_ROUNDS; round++) {
    // Rotated: each level (and bare) opens the same number of rounds.
    for (const entry of rotate(entries, round)) {
      const before = (await entry.target.storeCommands?.()) ?? 0;
      results.get(entry)?.push(await measureLoad(spec(entry.target, entry.credentials, options.durationSeconds)));
      if (entry.target.storeCommands) commands.set(entry, (commands.get(entry) ?? 0) + (await entry.target.storeCommands()) - before);
    }
  }
  // Redis's per-call average covers the warmups too: the same script, so the same cost.
  const rows: SessionLevelRow[] = [];
  for (const level of levels) {
    const runs = results.get(level) ?? [];
    rows.push({
      storedSessions: level.stored,
      requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
      p50Ms: median(runs.map((r) => r.p50Ms)),
      p99Ms: median(runs.map((r) => r.p99Ms)),
      roundP50Ms: runs.map((r) => r.p50Ms),
      failures: runs.reduce((sum, r) => sum + r.errors + r.non2xx, 0),
      storeCommandsPerRequest: (commands.get(level) ?? 0) / Math.max(1, runs.reduce((sum, r) => sum + r.requests, 0)),
      redisMicrosPerScript: await microsPerScript(level.redis),
      rehashSeconds: level.rehashSeconds,
    });
    say(`sessions: ${level.stored} stored -> p50 ${rows.at(-1)?.p50Ms.toFixed(2)} ms, Redis ${rows.at(-1)?.redisMicrosPerScript?.toFixed(1) ?? '?'} µs per script`);
  }
  const bare = results.get(entries[entries.length - 1] as (typeof entries)[number]) ?? [];
  return { levels: rows, reference: { p50Ms: median(bare.map((r) => r.p50Ms)), roundP50Ms: bare.map((r) => r.p50Ms) } };
}
