/**
 * A private, throw-away redis-server for one bench run: free loopback port, no persistence,
 * stopped with everything else when the run ends.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { onCleanup, startChild } from './processes.js';
import type { Child } from './processes.js';
import { freePort, HOST } from './ports.js';

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  readonly child: Child;
  /** A connection of our own, for filling and for INFO. */
  readonly client: Redis;
  /** A numeric field of `INFO <section>`, e.g. `used_memory` or `total_commands_processed`. */
  info(section: string, field: string): Promise<number>;
  readonly version: string;
}

/** Starts redis-server and resolves once it answers PING. */
export async function startRedis(): Promise<PrivateRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-warden-bench-redis-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const child = startChild('redis-server', 'redis-server', [
    '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir,
    // DEBUG HTSTATS tells when a fill's rehash is over (session-scale.ts); loopback only.
    '--enable-debug-command', 'local',
  ]);
  // Fail fast rather than queue: a bench against a dead Redis must stop, not hang.
  const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  // Failures surface as rejected commands; the event would only print noise while it starts.
  client.on('error', () => {});
  onCleanup(() => {
    client.disconnect();
  });
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING: ${(err as Error).message}\n${child.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const info = async (section: string, field: string): Promise<number> => {
    const text = await client.info(section);
    const match = new RegExp(`^${field}:(\\d+)`, 'm').exec(text);
    if (!match?.[1]) throw new Error(`INFO ${section} has no ${field}`);
    return Number(match[1]);
  };
  const server = await client.info('server');
  const version = /^redis_version:(\S+)/m.exec(server)?.[1] ?? 'unknown';
  return { url: `redis://${HOST}:${port}`, port, child, client, info, version };
}
