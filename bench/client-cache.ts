/**
 * `npx tsx bench/client-cache.ts [seconds] [rounds]`: the Redis store with `store.clientCache`
 * against the Redis store without it (issue 21), interleaved in one run, each proxy with its own
 * key prefix on the Redis at MCP_WARDEN_BENCH_REDIS (default 127.0.0.1:6379). `npm run build` first.
 */
import { compareConfigs } from './policy.js';

const url = process.env.MCP_WARDEN_BENCH_REDIS ?? 'redis://127.0.0.1:6379';
const store = (target: 'off' | 'on') => ({ type: 'redis', url, keyPrefix: `mcpw-cc-${process.pid}-${target}:` });
await compareConfigs({
  off: 'redis',
  on: 'redis + clientCache',
  shared: (target) => ({ store: store(target) }),
  extra: { store: { ...store('on'), clientCache: true } },
  target: 1,
  durationSeconds: Number(process.argv[2] ?? 3),
  rounds: Number(process.argv[3] ?? 6),
});
