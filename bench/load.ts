/**
 * The load generator, run as its own process so it never competes with a target for an event
 * loop: `node --import tsx bench/load.ts '<LoadSpec as JSON>'` prints one LoadResult as JSON.
 * autocannon's own latency histogram has 1 ms resolution, too coarse for "p99 overhead <= 1 ms",
 * so latencies are taken from its `response` events (hrtime-based, fractional ms) instead.
 */
import autocannon from 'autocannon';
import { percentile } from './stats.js';

/** One bounded measurement against one URL, loopback only. */
export interface LoadSpec {
  readonly url: string;
  readonly method: 'POST' | 'GET';
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly connections: number;
  readonly durationSeconds: number;
}

export interface LoadResult {
  /** Responses per second over the whole run (autocannon's per-second average). */
  readonly requestsPerSecond: number;
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
  /** Socket errors, timeouts included. */
  readonly errors: number;
  readonly non2xx: number;
  readonly statusCodes: Record<string, number>;
}

function parseSpec(raw: string | undefined): LoadSpec {
  const spec = JSON.parse(raw ?? 'null') as LoadSpec | null;
  if (!spec || typeof spec.url !== 'string') throw new Error('usage: load.ts <LoadSpec JSON>');
  const host = new URL(spec.url).hostname;
  // The bench measures this machine's proxies; it must never be pointed at someone else's.
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') throw new Error(`refusing non-loopback target ${spec.url}`);
  return spec;
}

function run(spec: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: spec.method,
        headers: spec.headers,
        ...(spec.body === undefined ? {} : { body: spec.body }),
        connections: spec.connections,
        duration: spec.durationSeconds,
      },
      (err, result) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        latencies.sort((a, b) => a - b);
        const statusCodes: Record<string, number> = {};
        for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0;
        resolve({
          requestsPerSecond: result.requests.average,
          requests: result.requests.total,
          p50Ms: percentile(latencies, 50),
          p99Ms: percentile(latencies, 99),
          meanMs: latencies.reduce((sum, v) => sum + v, 0) / Math.max(1, latencies.length),
          maxMs: latencies.at(-1) ?? 0,
          errors: result.errors,
          non2xx: result.non2xx,
          statusCodes,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
}

const result = await run(parseSpec(process.argv[2]));
process.stdout.write(`${JSON.stringify(result)}\n`);
