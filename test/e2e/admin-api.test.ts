/**
 * The admin API (DESIGN §13) on a proxy with the memory store, the store the CLI cannot reach:
 * who may call it, revocation, sessions by their listed hash, address blocks, signing keys,
 * reload, RFC 9457 problems, `admin.*` events naming the actor, and an OpenAPI document that
 * describes exactly the routes there are.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { ADMIN_OPENAPI } from '../../src/admin/openapi.js';
import { adminApiRoutes } from '../../src/features/admin.js';
import type { AdminHandlers } from '../../src/features/admin.js';
import { initialize, rpc } from '../fixtures/probe.js';
import { freePort } from '../fixtures/redis.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import type { TestWarden } from '../fixtures/warden.js';

const KEY = 'admin-key-for-tests-0123456789abcdef-0123';

async function setup(t: Test, raw: Record<string, unknown> = {}): Promise<{ proxy: TestWarden; admin: (path: string, init?: { method?: string; body?: unknown; key?: string | null }) => Promise<{ status: number; type: string | null; body: Record<string, unknown>; headers: Headers }> }> {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const proxy = await startWarden({
    upstreams: [upstream.url],
    admin: { listen: `127.0.0.1:${await freePort()}`, key: KEY },
    clients: [...Object.entries(TEST_CLIENTS).map(([id, secret]) => ({ id, secret, scopes: ['mcp'] })), { id: 'ops', secret: 'ops-secret-0123456789abcdef', scopes: ['mcp', 'admin'] }],
    ...raw,
  });
  t.teardown(() => proxy.close());
  const admin = async (path: string, init: { method?: string; body?: unknown; key?: string | null } = {}) => {
    const key = init.key === undefined ? KEY : init.key;
    const res = await fetch(`${proxy.warden.adminUrl ?? ''}/admin/v1${path}`, {
      method: init.method ?? 'GET',
      headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  };
  return { proxy, admin };
}

t.test('only the admin key or an admin-scoped token; refusals are problem details; actions name their actor', async (t) => {
  const { proxy, admin } = await setup(t);
  const none = await admin('/sessions', { key: null });
  t.equal(none.status, 401);
  t.equal(none.type, 'application/problem+json');
  t.match(none.body, { type: 'urn:mcp-warden:error:admin_unauthorized', status: 401, code: 'ADMIN_UNAUTHORIZED' });
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="mcp-warden-admin"');
  t.equal((await admin('/sessions', { key: `${KEY}x` })).status, 401, 'a wrong key');
  const plain = await admin('/sessions', { key: await proxy.token('alice') });
  t.equal(plain.status, 401, 'a token without the admin scope');
  t.match(plain.body.detail, /"admin" scope/);
  t.equal((await admin('/sessions', { key: await proxy.token('ops', 'mcp admin') })).status, 200, 'a token with it');
  t.equal((await admin('/sessions')).status, 200, 'the key');
  t.match(proxy.logs.events('admin.action'), [{ reason: 'sessions.list', principal: 'ops' }, { reason: 'sessions.list', principal: 'admin-key' }]);
  t.equal(proxy.logs.events('admin.refused').length, 3);
  t.notOk(proxy.logs.text().includes(KEY), 'the key is never logged');
  t.equal((await fetch(`${proxy.url}/admin/v1/sessions`, { headers: { authorization: `Bearer ${KEY}` } })).status, 404, 'never on the public listener');
  const bad = await admin('/revoke', { method: 'POST', body: { client: 'alice', user: 'x' } });
  t.equal(bad.status, 400);
  t.match(bad.body, { code: 'ADMIN_INVALID', detail: /Give one of/ });
});

t.test('revocation works on the memory store: a client, one token, a person id checked', async (t) => {
  const { proxy, admin } = await setup(t);
  const alice = await proxy.token('alice');
  const bob1 = await proxy.token('bob');
  const bob2 = await proxy.token('bob');
  t.equal((await rpc(proxy.mcpUrl, { token: alice, body: initialize(1) })).status, 200);
  const client = await admin('/revoke', { method: 'POST', body: { client: 'alice' } });
  t.match(client, { status: 200, body: { clientId: 'alice', what: 'client' } });
  t.equal((await rpc(proxy.mcpUrl, { token: alice, body: initialize(2) })).status, 401, 'alice\'s token is refused at once');
  const one = await admin('/revoke', { method: 'POST', body: { token: bob1 } });
  t.match(one, { status: 200, body: { clientId: 'bob', what: 'token' } });
  t.equal((await rpc(proxy.mcpUrl, { token: bob1, body: initialize(3) })).status, 401, 'that token');
  t.equal((await rpc(proxy.mcpUrl, { token: bob2, body: initialize(4) })).status, 200, 'not bob\'s other one');
  t.match(await admin('/revoke', { method: 'POST', body: { client: 'nobody' } }), { status: 404, body: { code: 'ADMIN_NOT_FOUND' } });
  t.match(await admin('/revoke', { method: 'POST', body: { user: 'alice' } }), { status: 400, body: { detail: /not a person's id/ } });
  t.match(proxy.logs.events('admin.action').map((e) => e.name), ['alice', 'bob']);
});

t.test('sessions are listed by hash and ended by it', async (t) => {
  const { proxy, admin } = await setup(t);
  const token = await proxy.token('alice');
  const sessionId = (await rpc(proxy.mcpUrl, { token, body: initialize(1) })).headers.get('mcp-session-id') ?? '';
  const listed = (await admin('/sessions?client=alice')).body.sessions as { session: string; clientId: string }[];
  t.equal(listed.length, 1);
  t.notOk(JSON.stringify(listed).includes(sessionId), 'never the session id itself');
  const hash = listed[0]?.session ?? '';
  t.ok(proxy.logs.events('session.created').some((e) => e.session === hash), 'the hash security events log as "session"');
  t.match(await admin(`/sessions?session=${hash}`, { method: 'DELETE' }), { status: 200, body: { ended: true, client: 'alice' } });
  t.equal((await rpc(proxy.mcpUrl, { token, sessionId, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } })).status, 404, 'the client is told its session is gone');
  t.match(await admin(`/sessions?session=${hash}`, { method: 'DELETE' }), { status: 404, body: { code: 'ADMIN_NOT_FOUND' } });
});

t.test('address blocks are listed and lifted', async (t) => {
  const { proxy, admin } = await setup(t, { rateLimits: { failedAttempts: { points: 2, duration: '1m', block: '5m' } } });
  for (let i = 0; i < 2; i++) await rpc(proxy.mcpUrl, { token: 'bad' });
  const token = await proxy.token('alice');
  t.equal((await rpc(proxy.mcpUrl, { token, body: initialize(1) })).status, 429, 'blocked');
  const blocks = (await admin('/blocks')).body.blocks as { address: string; remainingMs: number }[];
  t.match(blocks, [{ address: '127.0.0.1/32' }], 'the blocked address, as people write it');
  t.ok((blocks[0]?.remainingMs ?? 0) > 290_000);
  t.match(await admin('/blocks?address=127.0.0.1%2F32', { method: 'DELETE' }), { status: 200, body: { lifted: true } });
  t.equal((await rpc(proxy.mcpUrl, { token, body: initialize(2) })).status, 200, 'served again');
  t.same((await admin('/blocks')).body.blocks, []);
  t.equal((await admin('/blocks?address=127.0.0.1', { method: 'DELETE' })).status, 404, 'nothing to lift');
});

t.test('signing keys rotate and retire; the signing key cannot be retired', async (t) => {
  const { proxy, admin } = await setup(t, { tokens: { secret: null, algorithm: 'ES256' } });
  const before = await proxy.token('alice');
  const first = await admin('/keys/rotate', { method: 'POST' });
  t.equal(first.status, 200);
  const signedByFirst = await proxy.token('alice');
  const second = await admin('/keys/rotate', { method: 'POST' });
  t.not(second.body.kid, first.body.kid);
  t.match(await admin('/keys/retire', { method: 'POST', body: { kid: second.body.kid } }), { status: 409, body: { code: 'ADMIN_CONFLICT' } });
  t.match(await admin('/keys/retire', { method: 'POST', body: { kid: first.body.kid } }), { status: 200, body: { retired: first.body.kid } });
  t.equal((await rpc(proxy.mcpUrl, { token: signedByFirst, body: initialize(1) })).status, 401, 'a token of the retired key stops working');
  t.equal((await rpc(proxy.mcpUrl, { token: before, body: initialize(2) })).status, 200, 'the original key still verifies');
  t.equal((await rpc(proxy.mcpUrl, { token: await proxy.token('alice'), body: initialize(3) })).status, 200, 'new tokens use the newest key');
  t.match(await admin('/keys/retire', { method: 'POST', body: { kid: 'nope' } }), { status: 404 });
});

t.test('reload without a config file is refused as such; no audit key without a trail', async (t) => {
  const { admin } = await setup(t);
  t.match(await admin('/audit-key', { key: null }), { status: 404, body: { detail: /no audit trail/ } });
  t.match(await admin('/reload', { method: 'POST' }), { status: 409, body: { detail: /without a config file/ } });
});

t.test('the OpenAPI document describes exactly the routes', async (t) => {
  const { admin } = await setup(t);
  const doc = await admin('/openapi.json', { key: null });
  t.equal(doc.status, 200, 'readable without credentials');
  t.same(doc.body, JSON.parse(JSON.stringify(ADMIN_OPENAPI)));
  const noop = (): void => {};
  const handlers = new Proxy({}, { get: () => noop }) as unknown as AdminHandlers;
  const table = adminApiRoutes(handlers);
  const routes = table.flatMap((r) => Object.keys(r.methods).map((m) => `${m} ${r.path}`)).sort();
  const documented = Object.entries(ADMIN_OPENAPI.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
  t.same(routes, documented);
});
