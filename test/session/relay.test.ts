import t from 'tap';
import { createRelay } from '../../src/session/relay.js';
import { createMemoryStore } from '../../src/store/memory.js';

const secret = new Uint8Array(32).fill(7);

function pair(now: () => number) {
  const store = createMemoryStore({ maxEntries: 1000, clock: now });
  const options = { advertiseUrl: 'http://10.0.0.1:8080', mcpPath: '/mcp', secret, store, clock: now };
  return { store, a: createRelay({ ...options, replicaId: 'pod-a' }), b: createRelay({ ...options, replicaId: 'pod-b' }) };
}

t.test('a relay header verifies for the request it was made for, and for nothing else', async (t) => {
  let now = 1_000_000;
  const { store, a, b } = pair(() => now);
  t.teardown(() => store.close());
  const header = b.sign('POST', 'session-1', '198.51.100.4');
  t.same(a.verify(header, 'POST', 'session-1'), { replica: 'pod-b', address: '198.51.100.4' });
  t.equal(a.verify(header, 'DELETE', 'session-1'), null, 'another method');
  t.equal(a.verify(header, 'POST', 'session-2'), null, 'another session');
  t.equal(b.verify(header, 'POST', 'session-1'), null, 'a replica never accepts its own relay (a loop)');
  const [v, from, at, address, tag] = header.split(';');
  t.equal(a.verify([v, from, at, Buffer.from('203.0.113.1').toString('base64url'), tag].join(';'), 'POST', 'session-1'), null, 'another address');
  t.equal(a.verify([v, 'pod-c', at, address, tag].join(';'), 'POST', 'session-1'), null, 'another sender');
  t.equal(a.verify([v, from, String(Number(at) + 1), address, tag].join(';'), 'POST', 'session-1'), null, 'another time');
  t.equal(a.verify(`${header}x`, 'POST', 'session-1'), null, 'a longer tag');
  t.equal(a.verify('x'.repeat(600), 'POST', 'session-1'), null, 'oversized');
  now += 31_000;
  t.equal(a.verify(header, 'POST', 'session-1'), null, 'stale after 30 s');

  const other = createRelay({ replicaId: 'pod-a', advertiseUrl: 'http://10.0.0.1:8080', mcpPath: '/mcp', secret: new Uint8Array(32).fill(8), store, clock: () => now });
  t.equal(other.verify(b.sign('POST', 's', 'x'), 'POST', 's'), null, 'a replica with another secret is not one of ours');
  const gateway = createRelay({ replicaId: 'gw', advertiseUrl: null, mcpPath: '/mcp', secret, store, clock: () => now });
  t.equal(gateway.enabled, false);
  t.equal(gateway.verify(b.sign('POST', 's', 'x'), 'POST', 's'), null, 'the gateway layout accepts no relay at all');
});

t.test('replicas announce themselves while running and withdraw on close', async (t) => {
  const now = 5_000;
  const { store, a, b } = pair(() => now);
  t.teardown(() => store.close());
  t.equal(await b.ownerUrl('pod-a'), null);
  await a.start(() => {});
  t.equal(await store.replicaUrl('pod-a'), 'http://10.0.0.1:8080/mcp', 'announced with its MCP URL');
  await a.close();
  t.equal(await store.replicaUrl('pod-a'), null, 'withdrawn');
  t.match(createRelay({ replicaId: null, advertiseUrl: null, mcpPath: '/mcp', secret, store, clock: () => now }).replicaId, /^[A-Za-z0-9]{8}$/, 'a random name when none is configured');
});
