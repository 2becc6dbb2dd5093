/**
 * The performance issues' targets (round two, issue 21: against a bare undici proxy, the engine
 * mcp-warden forwards with), checked against one run. A verdict comes with a note
 * whenever the measurement was not quite what the target means (no token endpoint yet, Redis
 * not used by mcp-warden yet, a stream count capped by the open-file limit). A pass measured
 * without the feature the target is about is only provisional; a miss stays a miss, since the
 * missing feature can only add work.
 */
import { FEATURES } from './features.js';
import type { BenchResults } from './results.js';
import { roundRatio } from './throughput.js';
import type { ThroughputRow } from './throughput.js';
import type { TargetName } from './targets.js';
import { median } from './stats.js';
import { pairedOverheadMs } from './first-event.js';

const signed = (ms: number): string => `${ms >= 0 ? '+' : ''}${ms.toFixed(3)}`;

export type Verdict = 'PASS' | 'PASS (provisional)' | 'MISS' | 'not measured';

export interface GoalCheck {
  readonly goal: string;
  readonly measured: string;
  readonly verdict: Verdict;
  readonly note: string | null;
}

// "Flat (within noise)": the levels are measured in the same rounds, so the 1e6 level's p50 minus
// the 1e3 level's in one round has the machine's drift taken out; the median of those must stay
// within 10% of the 1e3 p50 plus 0.1 ms. A cost that grows with the key count (a SCAN, an
// ever-growing set) shows in every request, so in the p50 of every round; the p99 of short runs
// on a shared machine moves by more, so it is only shown.
const FLAT_RATIO = 1.1;
const FLAT_SLACK_MS = 0.1;
const MB = 1_000_000;

const verdict = (ok: boolean, provisional = false): Verdict => (!ok ? 'MISS' : provisional ? 'PASS (provisional)' : 'PASS');
const notMeasured = (goal: string): GoalCheck => ({ goal, measured: '-', verdict: 'not measured', note: null });

const NO_AUTH = 'measured without a token (POST /oauth/token answered 404: not built yet)';

function caveats(row: ThroughputRow): string | null {
  const notes: string[] = [];
  if (row.auth === 'none') notes.push(NO_AUTH);
  if (row.store === 'redis' && (row.storeCommandsPerRequest ?? 0) < 0.01) notes.push('mcp-warden sent no commands to Redis: the Redis store is not wired in yet');
  return notes.length ? notes.join('; ') : null;
}

// Issue 21 (round two): every target is against mcp-warden's own engine, a bare undici proxy.
const FLOOR: TargetName = 'bare-undici';

function throughputGoals(rows: readonly ThroughputRow[] | null, connections: number): GoalCheck[] {
  const floor = rows?.find((r) => r.target === FLOOR);
  const memory = rows?.find((r) => r.target === 'warden-memory');
  // The Redis targets are issue 21's: its design (store.clientCache) where it ran, else plain Redis.
  const redis = rows?.find((r) => r.target === 'warden-redis-cached') ?? rows?.find((r) => r.target === 'warden-redis');
  const ratioGoal = (name: string, row: ThroughputRow | undefined, min: number): GoalCheck => {
    const goal = `${name} (${connections} connections)`;
    if (!floor || !row || floor.requestsPerSecond === 0) return notMeasured(goal);
    const ratio = roundRatio(row, floor);
    const note = caveats(row);
    return { goal, measured: `${ratio.toFixed(2)}x (median of per-round ratios)`, verdict: verdict(ratio >= min, note !== null), note };
  };
  const p99Goal = ((): GoalCheck => {
    const goal = `mcp-warden + Redis${redis?.target === 'warden-redis-cached' ? ' (clientCache)' : ''}: p99 overhead vs bare-undici <= 1 ms (${connections} connections)`;
    if (!floor || !redis) return notMeasured(goal);
    const overhead = redis.p99Ms - floor.p99Ms;
    const note = caveats(redis);
    return { goal, measured: `${overhead >= 0 ? '+' : ''}${overhead.toFixed(2)} ms`, verdict: verdict(overhead <= 1, note !== null), note };
  })();
  return [
    ratioGoal(`mcp-warden + Redis${redis?.target === 'warden-redis-cached' ? ' (clientCache)' : ''}: >= 0.90x bare-undici req/s`, redis, 0.9),
    p99Goal,
    ratioGoal('mcp-warden memory store: >= 0.95x bare-undici req/s', memory, 0.95),
  ];
}

/** Issue 21: no feature of the other open issues may take the Redis store (clientCache) below 0.80x bare-undici. */
function featureGoals(results: BenchResults): GoalCheck[] {
  const connections = results.options.connections;
  const goal = (label: string): string => `>= 0.80x bare-undici req/s (${connections} connections), Redis + clientCache + ${label}`;
  if (!results.features) return FEATURES.map((f) => notMeasured(goal(f.label)));
  return results.features.filter((row) => row.feature !== null).map((row) => {
    const note = caveats(row);
    return {
      goal: goal(row.feature ?? row.target),
      measured: `${row.vsFloor.toFixed(2)}x (median of per-round ratios; ${row.vsFeatureOff.toFixed(2)}x feature-off, CPU ${row.cpuMicrosPerRequest.toFixed(0)} µs/req)`,
      verdict: verdict(row.vsFloor >= 0.8, note !== null),
      note,
    };
  });
}

function sessionGoals(results: BenchResults): GoalCheck[] {
  const out: GoalCheck[] = [];
  const levels = results.sessionScale;
  const goal = 'Latency flat from 1e3 to 1e6 stored sessions';
  const first = levels?.[0];
  const last = levels?.at(-1);
  if (!first || !last || levels.length < 2) out.push(notMeasured(goal));
  else {
    // The levels share rounds, so each round's difference has the machine's drift taken out.
    const extra = median(last.roundP50Ms.map((ms, i) => ms - (first.roundP50Ms[i] ?? ms)));
    const allowed = first.p50Ms * (FLAT_RATIO - 1) + FLAT_SLACK_MS;
    const unused = levels.every((l) => l.storeCommandsPerRequest < 0.01);
    const script = (l: typeof first): string => (l.redisMicrosPerScript === null ? '?' : l.redisMicrosPerScript.toFixed(1));
    out.push({
      goal,
      measured: `1e6 over 1e3, median of the rounds: ${extra >= 0 ? '+' : ''}${extra.toFixed(2)} ms (p50 ${first.p50Ms.toFixed(2)} -> ${last.p50Ms.toFixed(2)} ms; Redis ${script(first)} -> ${script(last)} µs per state script)`,
      verdict: verdict(extra <= allowed, unused),
      note: [`flat = at most +10% of the 1e3 level's p50 +0.1 ms (${allowed.toFixed(2)} ms here)`, unused ? 'mcp-warden sent no commands to Redis: sessions are not stored there yet' : null].filter(Boolean).join('; '),
    });
  }
  const memory = results.redisMemory;
  const memoryGoal = '<= 300 bytes of Redis per session';
  if (!memory) out.push(notMeasured(memoryGoal));
  else {
    out.push({
      goal: memoryGoal,
      measured: `${memory.bytesPerSession.toFixed(0)} B (MEMORY USAGE of one key: ${memory.memoryUsageOneKey ?? '?'} B)`,
      verdict: verdict(memory.bytesPerSession <= 300, false),
      note: `records made with mcp-warden's own key layout and encoder (~${memory.valueBytes}-byte value), 10 per client with their index entries`,
    });
  }
  return out;
}

// What each reference in the idle-stream measurement stands for.
const FLOOR_NAMES: Partial<Record<TargetName, string>> = {
  direct: 'Node HTTP server alone (no upstream socket)',
  bare: 'bare http-proxy-3',
  'bare-undici': 'bare undici proxy',
};

function streamGoals(results: BenchResults): GoalCheck[] {
  const noAuth = results.warden.auth === 'none';
  // Per store design, as the throughput targets: the memory store, and Redis with store.clientCache
  // (issue 21's design). Redis without the cache makes one round trip more (the PING in the note).
  const floor = results.firstEvent?.find((r) => r.target === FLOOR);
  const uncached = results.firstEvent?.find((r) => r.target === 'warden-redis');
  const uncachedOverhead = uncached && floor ? pairedOverheadMs(uncached, floor) : null;
  const sseGoalOf = (target: TargetName, label: string): GoalCheck => {
    const goal = `SSE first event <= +0.3 ms over bare-undici (${label})`;
    const row = results.firstEvent?.find((r) => r.target === target);
    const overhead = row && floor ? pairedOverheadMs(row, floor) : null;
    if (overhead === null) return notMeasured(goal);
    const notes = [
      noAuth ? NO_AUTH : null,
      target === 'warden-redis-cached' && uncachedOverhead !== null ? `Redis without the cache: ${signed(uncachedOverhead)} ms` : null,
      target === 'warden-redis-cached' && results.firstEventRedisPingMs !== null ? `a Redis PING at the same pacing: ${results.firstEventRedisPingMs.toFixed(3)} ms` : null,
    ].filter(Boolean);
    return {
      goal,
      measured: `${signed(overhead)} ms (median of per-round differences)`,
      verdict: verdict(overhead <= 0.3, noAuth),
      note: notes.length ? notes.join('; ') : null,
    };
  };
  const sse = [sseGoalOf('warden-memory', 'memory store'), sseGoalOf('warden-redis-cached', 'Redis + clientCache')];

  const rssGoal = '10,000 idle streams <= 1.05x bare-undici RSS (mcp-warden, memory store)';
  const held = results.idleStreams?.find((r) => r.target === 'warden-memory');
  const undici = results.idleStreams?.find((r) => r.target === FLOOR);
  if (!held || held.opened === 0 || !undici || undici.opened === 0) return [...sse, notMeasured(rssGoal)];
  const at10k = (r: { rssBeforeMB: number; rssPerStreamKB: number }): number => r.rssBeforeMB + (r.rssPerStreamKB * 1000 * 10_000) / MB;
  const floors = (results.idleStreams ?? [])
    .filter((r) => r.target !== 'warden-memory' && r.opened > 0)
    .map((r) => `${FLOOR_NAMES[r.target] ?? r.target} ${at10k(r).toFixed(1)} MB (${r.rssPerStreamKB.toFixed(1)} KB per stream)`);
  const notes = [
    held.opened === 10_000 ? null : `extrapolated from ${held.opened} streams (${held.rssAfterMB.toFixed(1)} MB measured)`,
    held.cappedBy ? `capped by ${held.cappedBy}` : null,
    noAuth ? NO_AUTH : null,
    floors.length ? `floors at 10,000: ${floors.join(', ')}` : null,
  ].filter(Boolean);
  return [
    ...sse,
    { goal: rssGoal, measured: `${at10k(held).toFixed(1)} MB, ${(at10k(held) / at10k(undici)).toFixed(2)}x`, verdict: verdict(at10k(held) <= 1.05 * at10k(undici), noAuth), note: notes.length ? notes.join('; ') : null },
  ];
}

/** Every target of the issue, in the order the issue lists them. */
export function checkGoals(results: BenchResults): GoalCheck[] {
  const [redisRatio, redisP99, memoryRatio] = throughputGoals(results.throughput, results.options.connections);
  // The p99 target is read at the regular load only: at saturation every latency is queueing.
  const [redisSaturated, , memorySaturated] = results.throughputSaturated ? throughputGoals(results.throughputSaturated, results.options.saturate) : [];
  const [flat, memory] = sessionGoals(results);
  const [sseMemory, sseCached, rss] = streamGoals(results);
  return [redisRatio, redisSaturated, redisP99, memoryRatio, memorySaturated, flat, memory, sseMemory, sseCached, rss, ...featureGoals(results)].filter((g): g is GoalCheck => g !== undefined);
}
