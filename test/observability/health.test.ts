import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createReadiness } from '../../src/observability/health.js';
import { createMemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';
import { freePort } from '../fixtures/redis.js';

t.test('readiness: the store must answer; upstreams only when asked', async (t) => {
  const store = createMemoryStore({ maxEntries: 10, clock: Date.now });
  t.teardown(() => store.close());
  const down: Store = { ...store, ping: () => Promise.reject(new Error('down')) };
  const listening = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  t.teardown(() => listening.close());
  const up = `http://127.0.0.1:${(listening.address() as AddressInfo).port}/mcp`;
  const dead = `http://127.0.0.1:${await freePort()}/mcp`;

  t.same(await createReadiness({ store, upstreams: [dead], checkUpstream: false })(), { ready: true, store: 'ok', persistence: 'memory', upstream: 'unchecked', transports: {} });
  t.same(await createReadiness({ store: down, upstreams: [up], checkUpstream: false })(), { ready: false, store: 'unreachable', persistence: 'unchecked', upstream: 'unchecked', transports: {} });
  t.same(await createReadiness({ store, upstreams: [dead, up], checkUpstream: true })(), { ready: true, store: 'ok', persistence: 'memory', upstream: 'ok', transports: {} }, 'one reachable upstream is enough');
  t.same(await createReadiness({ store, upstreams: [dead], checkUpstream: true })(), { ready: false, store: 'ok', persistence: 'memory', upstream: 'unreachable', transports: {} });
});
