/**
 * What `mcp-warden serve` says as it starts: one line with what runs where, and a warning, with
 * the way out, when nobody could ever get a token.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawnWarden } from '../fixtures/cli.js';
import { freePort } from '../fixtures/redis.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

t.test('the start line names the version, Node, addresses, store and upstreams', async (t) => {
  const proxy = await spawnWarden({ upstreams: ['http://127.0.0.1:9/mcp'], admin: { listen: `127.0.0.1:${await freePort()}` } });
  t.teardown(() => proxy.kill());
  const start = proxy.lines().find((l) => l.msg === 'mcp-warden listening');
  t.match(start, { version: VERSION, node: process.version, url: proxy.url, mcp: proxy.mcpUrl, store: 'memory', upstreams: ['http://127.0.0.1:9/mcp'] });
  t.match(start?.admin, /^http:\/\/127\.0\.0\.1:\d+$/, 'the admin listener\'s address');
  t.notOk(proxy.lines().some((l) => String(l.msg).startsWith('nobody can authenticate')), 'clients exist: no warning');
});

t.test('no client, issuer or sign-in: a warning that says how to add one, and the proxy refuses as it warns', async (t) => {
  const proxy = await spawnWarden({ upstreams: ['http://127.0.0.1:9/mcp'], clients: [] });
  t.teardown(() => proxy.kill());
  const warning = proxy.lines().find((l) => String(l.msg).startsWith('nobody can authenticate'));
  t.equal(warning?.level, 'warn');
  for (const way of ['mcp-warden init', 'tokens.trustedIssuers', 'login.oidc']) t.match(warning?.msg, way, `names ${way}`);
  const res = await fetch(proxy.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
  t.equal(res.status, 401);
});
