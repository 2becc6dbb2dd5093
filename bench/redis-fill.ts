/**
 * Fills Redis with dummy session records, shaped like mcp-warden's (DESIGN §5, §6): key
 * `mcpw:{<client>}:s:<43 base64url chars>` -> a ~150-byte record with a PX TTL. The key layout
 * may still change; this is the one place that has to follow it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { HOST } from './ports.js';
import { startChild } from './processes.js';

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

/** One RESP bulk string. */
const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/**
 * Adds `count` records with `SET key value PX ttl`, streamed as raw RESP into `redis-cli --pipe`
 * in batches of 10,000: a client library would spend more CPU building command objects than
 * Redis spends storing them, and on a small machine that CPU is the bottleneck.
 */
export async function fillSessions(port: number, count: number, options: FillOptions = {}): Promise<void> {
  const { prefix = 'mcpw:', clientId = 'bench', ttlMs = 3_600_000 } = options;
  const rest = bulk(recordValue(clientId)) + bulk('PX') + bulk(String(ttlMs));
  const cli = startChild('redis-cli --pipe', 'redis-cli', ['-h', HOST, '-p', String(port), '--pipe'], { leash: true, collectStdout: true });
  const stdin = cli.stdin;
  if (!stdin) throw new Error('redis-cli has no stdin');
  // If redis-cli dies, writes fail with EPIPE; its exit code and output below say why.
  stdin.on('error', () => {});
  for (let done = 0; done < count; done += BATCH) {
    const size = Math.min(BATCH, count - done);
    const ids = randomBytes(size * ID_BYTES);
    let chunk = '';
    for (let i = 0; i < size; i++) {
      chunk += `*5\r\n$3\r\nSET\r\n${bulk(`${prefix}{${clientId}}:s:${ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES).toString('base64url')}`)}${rest}`;
    }
    if (!stdin.write(chunk)) await once(stdin, 'drain');
  }
  stdin.end();
  const code = await cli.exited;
  // redis-cli --pipe ends with "errors: <n>, replies: <n>".
  const summary = /errors: (\d+), replies: (\d+)/.exec(cli.stdout());
  if (code !== 0 || summary?.[1] !== '0' || Number(summary[2]) !== count) {
    throw new Error(`redis-cli --pipe failed (exit ${code}): ${cli.output().slice(-500)}`);
  }
}

/** One key the filler wrote, for `MEMORY USAGE`. */
export async function sampleSessionKey(redis: Redis, options: FillOptions = {}): Promise<string | null> {
  const { prefix = 'mcpw:', clientId = 'bench' } = options;
  const [, keys] = await redis.scan('0', 'MATCH', `${prefix}{${clientId}}:s:*`, 'COUNT', 1000);
  return keys[0] ?? null;
}
