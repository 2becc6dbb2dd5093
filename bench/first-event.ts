/**
 * SSE first-event latency: GET streams whose upstream sends one event at once; the time from
 * writing the request to the first `data:` byte. Samples are interleaved across targets (one
 * stream per target in turn), so a burst of other work on the machine hits all of them alike.
 */
import { openEventStream } from './event-stream.js';
import { say } from './progress.js';
import { median, percentile } from './stats.js';
import type { Target, TargetName } from './targets.js';
import { sessionHeaders } from './workload.js';
import type { Credentials } from './workload.js';

export interface FirstEventResult {
  readonly target: TargetName;
  readonly samples: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly minMs: number;
  readonly failures: number;
  /** Every sample in the order taken (null: failed), so targets can be compared round by round. */
  readonly samplesMs: readonly (number | null)[];
}

export interface FirstEventResults {
  readonly rows: FirstEventResult[];
  /**
   * Median of one Redis PING from the bench, timed once per round between the streams: what one
   * round trip to another idle process costs at this pacing (a proxy on Redis pays one more).
   */
  readonly redisPingMs: number;
}

/**
 * `samples` sequential streams per target; each is closed once its first event arrived.
 * `ping` is timed once per round, after the targets.
 */
export async function measureFirstEvent(
  targets: readonly Target[],
  credentials: ReadonlyMap<TargetName, Credentials>,
  samples: number,
  ping: () => Promise<unknown>,
): Promise<FirstEventResults> {
  const times = new Map<TargetName, number[]>(targets.map((t) => [t.name, []]));
  const inOrder = new Map<TargetName, (number | null)[]>(targets.map((t) => [t.name, []]));
  const failures = new Map<TargetName, number>(targets.map((t) => [t.name, 0]));
  const pings: number[] = [];
  for (let i = 0; i < samples; i++) {
    for (const target of targets) {
      // The upstream sends its first event when it sees this header; both proxies forward it.
      const headers = { ...sessionHeaders(credentials.get(target.name) ?? null), 'x-bench-first-event': '1' };
      try {
        const { socket, elapsedMs } = await openEventStream(new URL(target.mcpUrl), headers, 5_000);
        socket.destroy();
        times.get(target.name)?.push(elapsedMs);
        inOrder.get(target.name)?.push(elapsedMs);
      } catch {
        failures.set(target.name, (failures.get(target.name) ?? 0) + 1);
        inOrder.get(target.name)?.push(null);
      }
    }
    const started = performance.now();
    await ping();
    pings.push(performance.now() - started);
  }
  const rows = targets.map((target) => {
    const sorted = [...(times.get(target.name) ?? [])].sort((a, b) => a - b);
    const result = {
      target: target.name,
      samples: sorted.length,
      medianMs: median(sorted),
      p90Ms: percentile(sorted, 90),
      minMs: sorted[0] ?? 0,
      failures: failures.get(target.name) ?? 0,
      samplesMs: inOrder.get(target.name) ?? [],
    };
    say(`sse first event ${target.name}: median ${result.medianMs.toFixed(3)} ms (${result.failures} failed)`);
    return result;
  });
  const redisPingMs = median(pings);
  say(`sse first event: Redis PING at the same pacing, median ${redisPingMs.toFixed(3)} ms`);
  return { rows, redisPingMs };
}

/**
 * The median over rounds of (target's sample - reference's sample), each pair taken one after the
 * other in the same round: a burst of other work on the machine hits both, so this moves far less
 * than the difference of two medians. Null when no round has both.
 */
export function pairedOverheadMs(target: FirstEventResult, reference: FirstEventResult): number | null {
  const diffs: number[] = [];
  target.samplesMs.forEach((ms, i) => {
    const ref = reference.samplesMs[i];
    if (ms !== null && ref !== null && ref !== undefined) diffs.push(ms - ref);
  });
  return diffs.length ? median(diffs.sort((a, b) => a - b)) : null;
}
