/**
 * Fills Redis with session records exactly as mcp-warden writes them: the key layout and record
 * encoding come from src/store/keys.ts, and each client's sessions are also in its index (the
 * sorted set the session cap uses). Clients hold `SESSIONS_PER_CLIENT` sessions each, as a
 * deployment with many agents would.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { encodeSession, keyLayout } from '../src/store/keys.js';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { HOST } from './ports.js';
import { startChild } from './processes.js';

const BATCH = 10_000;
const KEY_BYTES = 12; // a store key is 16 base64url characters (src/session/session-id.ts keyOf)
const SESSIONS_PER_CLIENT = 10;

export interface FillOptions {
  /** Records already written: numbering continues from there, so clients are not refilled. */
  readonly start?: number;
  readonly prefix?: string;
  readonly clientId?: string;
  readonly ttlMs?: number;
}

/** One record as mcp-warden stores it: created, upstream index, grant, fingerprint, upstream session id. */
export function recordValue(): string {
  return encodeSession({ createdAt: Date.now(), upstream: 0, grantId: randomBytes(16).toString('base64url'), fingerprint: '', upstreamSessionId: randomUUID(), owner: null });
}

/** One RESP bulk string. */
const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/**
 * Adds `count` records with `SET key value PX ttl`, streamed as raw RESP into `redis-cli --pipe`
 * in batches of 10,000: a client library would spend more CPU building command objects than
 * Redis spends storing them, and on a small machine that CPU is the bottleneck.
 */
export async function fillSessions(port: number, count: number, options: FillOptions = {}): Promise<void> {
  const { prefix = 'mcpw:', clientId = 'bench', ttlMs = 3_600_000, start = 0 } = options;
  const keys = keyLayout(prefix);
  const rest = bulk(recordValue()) + bulk('PX') + bulk(String(ttlMs));
  const created = String(Date.now());
  const cli = startChild('redis-cli --pipe', 'redis-cli', ['-h', HOST, '-p', String(port), '--pipe'], { leash: true, collectStdout: true });
  const stdin = cli.stdin;
  if (!stdin) throw new Error('redis-cli has no stdin');
  // If redis-cli dies, writes fail with EPIPE; its exit code and output below say why.
  stdin.on('error', () => {});
  let replies = 0;
  for (let done = 0; done < count; done += BATCH) {
    const size = Math.min(BATCH, count - done);
    const ids = randomBytes(size * KEY_BYTES);
    let chunk = '';
    for (let i = 0; i < size; i++) {
      const n = start + done + i;
      const principal = `${clientId}${Math.floor(n / SESSIONS_PER_CLIENT)}`;
      const key = ids.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES).toString('base64url');
      chunk += `*5\r\n$3\r\nSET\r\n${bulk(keys.session(principal, key))}${rest}`;
      chunk += `*4\r\n$4\r\nZADD\r\n${bulk(keys.sessionIndex(principal))}${bulk(created)}${bulk(key)}`;
      replies += 2;
      if (n % SESSIONS_PER_CLIENT === SESSIONS_PER_CLIENT - 1 || done + i === count - 1) {
        chunk += `*3\r\n$7\r\nPEXPIRE\r\n${bulk(keys.sessionIndex(principal))}${bulk(String(ttlMs))}`;
        replies += 1;
      }
    }
    if (!stdin.write(chunk)) await once(stdin, 'drain');
  }
  stdin.end();
  const code = await cli.exited;
  // redis-cli --pipe ends with "errors: <n>, replies: <n>".
  const summary = /errors: (\d+), replies: (\d+)/.exec(cli.stdout());
  if (code !== 0 || summary?.[1] !== '0' || Number(summary[2]) !== replies) {
    throw new Error(`redis-cli --pipe failed (exit ${code}): ${cli.output().slice(-500)}`);
  }
}

/** One key the filler wrote, for `MEMORY USAGE`. */
export async function sampleSessionKey(redis: Redis, options: FillOptions = {}): Promise<string | null> {
  const { prefix = 'mcpw:', clientId = 'bench' } = options;
  const [, found] = await redis.scan('0', 'MATCH', `${prefix}{${clientId}*}:s:*`, 'COUNT', 1000);
  return found[0] ?? null;
}
