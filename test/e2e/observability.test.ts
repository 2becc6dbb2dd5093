/**
 * One captured log over a scenario that provokes every security event of DESIGN §9: each event
 * appears for its scenario with its request id, source address and client id, and no access
 * token, client secret, refresh token or full session id appears anywhere in the raw text.
 */
import t from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { startRedis } from '../fixtures/redis.js';
import { initialize, oauthPost, rpc, tokenRequest } from '../fixtures/probe.js';
import type { Reply, RpcOptions } from '../fixtures/probe.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';

const ROUTES = new Set(['mcp', '/oauth/token', '/oauth/revoke', '/healthz', '/readyz', '/metrics', '(unmatched)']);

t.test('a scenario run logs every security event, and no secret or full id', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const upstream = await startDemoServer();
  const proxy = await startWarden({
    upstreams: [upstream.url],
    store: { type: 'redis', url: redis.url, keyPrefix: 'obs:' },
    tokens: { issueRefreshTokens: true },
    clients: [
      { id: 'alice', secret: TEST_CLIENTS.alice, scopes: ['mcp', 'extra'] },
      { id: 'bob', secret: TEST_CLIENTS.bob, scopes: ['mcp'], rateLimit: { points: 1, duration: '1m' } },
    ],
    sessions: { maxConcurrent: 2, onLimit: 'reject', bindTo: ['client', 'userAgent'] },
    rateLimits: { failedAttempts: { points: 3, duration: '1m', block: '1m' } },
    security: { trustProxy: 1 },
  });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });

  // Everything a log must never hold, collected as the scenario hands it out.
  const secrets: string[] = [TEST_CLIENTS.alice, TEST_CLIENTS.bob];
  let sent = 0;
  const from = (n: number) => ({ 'x-forwarded-for': `198.51.100.${n}` });
  const mcp = (n: number, opts: RpcOptions): Promise<Reply> => {
    sent++;
    return rpc(proxy.mcpUrl, { ...opts, headers: { ...from(n), 'user-agent': 'probe/1', ...opts.headers } });
  };
  const oauth = (n: number, path: string, id: string | null, secret: string, params: Record<string, string>): Promise<Reply> => {
    sent++;
    return oauthPost(`${proxy.url}${path}`, id, secret, params, from(n));
  };
  const issued = (res: Reply): { access: string; refresh: string } => {
    const body = res.json as { access_token: string; refresh_token: string };
    secrets.push(body.access_token, body.refresh_token);
    return { access: body.access_token, refresh: body.refresh_token };
  };

  // token.issued, token.refreshed, refresh.reuse (the reused token revokes its grant).
  const first = issued(await oauth(1, '/oauth/token', 'alice', TEST_CLIENTS.alice, { grant_type: 'client_credentials' }));
  const second = await oauth(1, '/oauth/token', 'alice', TEST_CLIENTS.alice, { grant_type: 'refresh_token', refresh_token: first.refresh });
  t.equal(second.status, 200);
  issued(second);
  t.equal((await oauth(1, '/oauth/token', 'alice', TEST_CLIENTS.alice, { grant_type: 'refresh_token', refresh_token: first.refresh })).status, 400);
  // token.refused (a scope the client may not have), token.revoked.
  t.equal((await oauth(2, '/oauth/token', 'alice', TEST_CLIENTS.alice, { grant_type: 'client_credentials', scope: 'admin' })).status, 400);
  const doomed = issued(await oauth(2, '/oauth/token', 'alice', TEST_CLIENTS.alice, { grant_type: 'client_credentials' }));
  t.equal((await oauth(2, '/oauth/revoke', 'alice', TEST_CLIENTS.alice, { token: doomed.access, token_type_hint: 'access_token' })).status, 200);
  // auth.failed: no token on the MCP path; a bad client secret.
  t.equal((await mcp(3, {})).status, 401);
  t.equal((await oauth(4, '/oauth/token', 'alice', 'wrong-secret', { grant_type: 'client_credentials' })).status, 401);

  // session.created, session.not_found, session.binding_mismatch, session.limited, session.ended.
  sent++;
  const { access } = issued(await tokenRequest(proxy.url, 'alice', TEST_CLIENTS.alice, from(5)));
  const init = await mcp(5, { token: access, body: initialize(1) });
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  t.ok(sessionId.length > 40, 'a proxy session id');
  secrets.push(sessionId);
  t.equal((await mcp(6, { token: access, sessionId: `${sessionId.slice(0, -2)}AA` })).status, 404);
  t.equal((await mcp(7, { token: access, sessionId, headers: { 'user-agent': 'someone-else/2' } })).status, 404);
  const again = await mcp(5, { token: access, body: initialize(2) });
  secrets.push(again.headers.get('mcp-session-id') ?? 'missing');
  t.equal((await mcp(5, { token: access, body: initialize(3) })).status, 429);
  secrets.push(...upstream.sessionIds());
  t.equal((await mcp(5, { token: access, sessionId, method: 'DELETE' })).status, 200);

  // rate.limited: bob's own limit is 1.
  const bob = await proxy.token('bob');
  secrets.push(bob);
  t.equal((await mcp(8, { token: bob })).status, 400, 'admitted and forwarded (the stateful upstream wants a session)');
  t.equal((await mcp(8, { token: bob })).status, 429);

  // address.blocked: three failures from one address, then a valid request from it.
  for (const token of ['bad', 'bad', 'bad']) t.equal((await mcp(9, { token })).status, 401);
  t.equal((await mcp(9, { token: access })).status, 429);

  // store.unavailable.
  await redis.stop();
  t.equal((await mcp(10, { token: access })).status, 503);

  const { logs } = proxy;
  const expect: [string, Record<string, unknown>][] = [
    ['token.issued', { address: '198.51.100.1', clientId: 'alice' }],
    ['token.refreshed', { address: '198.51.100.1', clientId: 'alice' }],
    ['refresh.reuse', { address: '198.51.100.1', clientId: 'alice' }],
    ['token.refused', { address: '198.51.100.2', clientId: 'alice', code: 'OAUTH_INVALID_SCOPE' }],
    ['token.revoked', { address: '198.51.100.2', clientId: 'alice', reason: 'access_token', jti: /^[\w-]{12}$/ }],
    ['auth.failed', { address: '198.51.100.3', clientId: null, reason: 'missing' }],
    ['auth.failed', { address: '198.51.100.4', code: 'OAUTH_INVALID_CLIENT', reason: 'client' }],
    ['session.created', { address: '198.51.100.5', clientId: 'alice', session: /^[\w-]{12}$/ }],
    ['session.not_found', { address: '198.51.100.6', clientId: 'alice' }],
    ['session.binding_mismatch', { address: '198.51.100.7', clientId: 'alice' }],
    ['session.limited', { address: '198.51.100.5', clientId: 'alice' }],
    ['session.ended', { address: '198.51.100.5', clientId: 'alice', reason: 'delete', session: /^[\w-]{12}$/ }],
    ['rate.limited', { address: '198.51.100.8', clientId: 'bob', reason: 'client' }],
    ['address.blocked', { address: '198.51.100.9', reason: 'threshold' }],
    ['address.blocked', { address: '198.51.100.9', code: 'ADDRESS_BLOCKED' }],
    ['store.unavailable', { address: '198.51.100.10', code: 'STORE_UNAVAILABLE' }],
  ];
  for (const [event, fields] of expect) {
    const lines = logs.events(event);
    const line = lines.find((l) => Object.entries(fields).every(([k, v]) => (v instanceof RegExp ? v.test(String(l[k])) : l[k] === v)));
    t.ok(line, `${event} logged for its scenario (${JSON.stringify(fields, (_k, v: unknown) => (v instanceof RegExp ? String(v) : v))})`);
    t.match(line, { reqId: /^[0-9a-f]{8}-[0-9a-z]+$/, level: /^(info|warn|error)$/ }, `${event} carries the request id`);
  }
  const created = logs.events('session.created')[0];
  t.equal(logs.events('session.ended')[0]?.session, created?.session, 'short hashes correlate a session across events');

  const text = logs.text();
  t.ok(text.length > 5_000, 'the log is not empty');
  for (const secret of secrets) t.notOk(text.includes(secret), `never logged: ${secret.slice(0, 6)}...`);
  t.equal(secrets.length, 15, 'client secrets, 4 access + 4 refresh tokens, bob\'s token, 2 proxy and 2 upstream session ids');
  t.ok(secrets.every((s) => s.length >= 20), 'each one long enough to be unmistakable');

  const access_ = logs.lines.filter((l) => l.msg === 'request');
  t.equal(access_.length, sent, 'one access line per request');
  for (const line of access_) {
    t.same(Object.keys(line).filter((k) => !['level', 'time', 'service', 'pid', 'hostname', 'reqId', 'msg'].includes(k)).sort(), ['clientId', 'method', 'ms', 'route', 'status', ...(line.code ? ['code'] : [])].sort(), 'allow-listed fields only');
    t.ok(ROUTES.has(String(line.route)), `route ${String(line.route)} is a template`);
    t.ok(typeof line.ms === 'number' && line.ms >= 0);
  }
  t.ok(access_.some((l) => l.route === '/oauth/token' && l.status === 200 && l.clientId === 'alice'), 'the client id on an OAuth endpoint');
  t.ok(access_.some((l) => l.route === 'mcp' && l.status === 429 && l.clientId === 'bob' && l.code === 'RATE_LIMITED'));
});
