/**
 * Fills Redis with dummy session records, shaped like mcp-warden's (DESIGN §5, §6): key
 * `mcpw:{<client>}:s:<43 base64url chars>` -> a ~150-byte record with a TTL. The key layout may
 * still change; this is the one place that has to follow it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

const BATCH = 10_000;
const ID_BYTES = 32; // 43 base64url characters, like a proxy session id without its tag

export interface FillOptions {
  readonly prefix?: string;
  readonly clientId?: string;
  readonly ttlMs?: number;
}

/** What one record looks like (~150 bytes): upstream session id, client, grant, upstream, times. */
export function recordValue(clientId: string): string {
  const now = Date.now();
  return JSON.stringify({ u: randomUUID(), c: clientId, g: randomBytes(16).toString('base64url'), t: 'http://127.0.0.1:3000/mcp', cr: now, ls: now });
}

/** Adds `count` records in pipelined batches of 10,000 SET ... PX. */
export async function fillSessions(redis: Redis, count: number, options: FillOptions = {}): Promise<void> {
  const { prefix = 'mcpw:', clientId = 'bench', ttlMs = 3_600_000 } = options;
  const value = recordValue(clientId);
  for (let done = 0; done < count; done += BATCH) {
    const size = Math.min(BATCH, count - done);
    const ids = randomBytes(size * ID_BYTES);
    const pipeline = redis.pipeline();
    for (let i = 0; i < size; i++) {
      const id = ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES).toString('base64url');
      pipeline.set(`${prefix}{${clientId}}:s:${id}`, value, 'PX', ttlMs);
    }
    const replies = await pipeline.exec();
    const failed = replies?.find(([err]) => err !== null);
    if (failed?.[0]) throw failed[0];
  }
}

/** One key the filler wrote, for `MEMORY USAGE`. */
export async function sampleSessionKey(redis: Redis, options: FillOptions = {}): Promise<string | null> {
  const { prefix = 'mcpw:', clientId = 'bench' } = options;
  const [, keys] = await redis.scan('0', 'MATCH', `${prefix}{${clientId}}:s:*`, 'COUNT', 1000);
  return keys[0] ?? null;
}
