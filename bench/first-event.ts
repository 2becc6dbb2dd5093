/**
 * SSE first-event latency: sequential GET streams whose upstream sends one event at once; the
 * time from writing the request to the first `data:` byte, per target.
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
}

/** `samples` sequential streams against `target`; each is closed once its first event arrived. */
export async function measureFirstEvent(target: Target, credentials: Credentials | null, samples: number): Promise<FirstEventResult> {
  // The upstream sends its first event when it sees this header; both proxies forward it.
  const headers = { ...sessionHeaders(credentials), 'x-bench-first-event': '1' };
  const times: number[] = [];
  let failures = 0;
  for (let i = 0; i < samples; i++) {
    try {
      const { socket, elapsedMs } = await openEventStream(new URL(target.mcpUrl), headers, 5_000);
      socket.destroy();
      times.push(elapsedMs);
    } catch {
      failures++;
    }
  }
  times.sort((a, b) => a - b);
  const result = { target: target.name, samples: times.length, medianMs: median(times), p90Ms: percentile(times, 90), minMs: times[0] ?? 0, failures };
  say(`sse first event ${target.name}: median ${result.medianMs.toFixed(3)} ms (${failures} failed)`);
  return result;
}
