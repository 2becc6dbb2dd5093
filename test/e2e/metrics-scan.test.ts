/**
 * /metrics may be asked by anyone on the main listener: the sessions gauge counts the whole store,
 * so concurrent scrapes must share one count rather than each scanning the keyspace.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { startRedis } from '../fixtures/redis.js';
import { startWarden } from '../fixtures/warden.js';

const scans = async (redis: Redis): Promise<number> => Number(/cmdstat_scan:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);

t.test('30 concurrent scrapes of /metrics cost one scan of the store', async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const redis = new Redis(server.url);
  t.teardown(() => redis.quit());
  const proxy = await startWarden({ store: { type: 'redis', url: server.url } });
  t.teardown(() => proxy.close());
  const before = await scans(redis);
  // Hold Redis for a moment so that all 30 scrapes are in flight before the first count returns.
  await redis.call('CLIENT', 'PAUSE', '300', 'ALL');
  const replies = await Promise.all(Array.from({ length: 30 }, () => fetch(`${proxy.url}/metrics`).then(async (r) => [r.status, await r.text()] as const)));
  t.ok(replies.every(([status, text]) => status === 200 && /mcp_warden_sessions_active \d+/.test(text)), 'every scrape got the gauge');
  t.equal((await scans(redis)) - before, 1, 'one SCAN for all of them');
});
