/**
 * `mcp-warden session list|revoke`, the built binary, against a private redis-server that a
 * running proxy shares: what the CLI lists and ends is what the proxy serves.
 */
import t from 'tap';
import { startDemoServer } from '../../demo/mcp-server.js';
import { runCli as run, writeConfig } from '../fixtures/cli.js';
import { startRedis } from '../fixtures/redis.js';
import { freshPrefix, SHARED_SECRET, startReplicas } from '../fixtures/replicas.js';
import { openSession, send } from '../fixtures/session-http.js';
import { startWarden } from '../fixtures/warden.js';

const redis = await startRedis();
t.teardown(() => redis.stop());
const upstream = await startDemoServer();
t.teardown(() => upstream.close());

const configFile = (name: string, config: Record<string, unknown>): string => writeConfig(name, { upstreams: [upstream.url], ...config });

t.test('list shows short hashes, never ids; revoke by id or by client ends sessions the running proxy then refuses', async (t) => {
  const keyPrefix = freshPrefix();
  const [proxy] = await startReplicas(t, 1, { url: redis.url }, { upstreams: [upstream.url] }, keyPrefix);
  if (!proxy) throw new Error('a proxy');
  const config = configFile('shared', { store: { type: 'redis', url: redis.url, keyPrefix }, tokens: { secret: SHARED_SECRET } });
  const alice = await proxy.token('alice');
  const bob = await proxy.token('bob');
  const alices = [(await openSession(proxy.mcpUrl, alice)).sessionId ?? '', (await openSession(proxy.mcpUrl, alice)).sessionId ?? ''];
  const b1 = (await openSession(proxy.mcpUrl, bob)).sessionId ?? '';
  // An id is random base64url, so 1 in 64 starts with "-", which the CLI takes only as --id=<id>
  // (tested below): the positional revoke gets one that does not, when either does (4095 in 4096).
  const [a1 = '', a2 = ''] = alices[0]?.startsWith('-') ? [alices[1], alices[0]] : alices;
  const status = async (token: string, sessionId: string) => (await send(proxy.mcpUrl, { token, sessionId })).status;

  // Independent of each other and changing nothing: run at once (each spawn costs about a second).
  const [listed, table, dashes, foreign] = await Promise.all([
    run(['session', 'list', '--config', config, '--json']),
    run(['session', 'list', '--config', config, '--client', 'alice']),
    run(['session', 'revoke', '--config', config, '--client', 'alice', '--', a1]),
    run(['session', 'revoke', `--id=${a2}`, '--config', config, '--client', 'bob']),
  ]);
  t.equal(listed.status, 0, listed.stderr);
  const rows = JSON.parse(listed.stdout) as { session: string; clientId: string; upstream: number; createdAt: number; expiresAt: number }[];
  t.same(rows.map((r) => r.clientId), ['alice', 'alice', 'bob'], 'oldest first');
  t.same(rows.map((r) => r.session).sort(), proxy.logs.events('session.created').map((e) => String(e.session)).sort(), 'the hashes the security events log');
  t.ok(rows.every((r) => r.upstream === 0 && r.expiresAt > r.createdAt && r.createdAt > Date.now() - 60_000));
  for (const id of [a1, a2, b1]) t.notOk(listed.stdout.includes(id) || listed.stdout.includes(id.slice(0, 16)), 'no id, not even its random part');

  t.equal(table.status, 0);
  const lines = table.stdout.trim().split('\n');
  t.match(lines[0], /^SESSION\s+CLIENT\s+UPSTREAM\s+CREATED\s+EXPIRES$/);
  t.equal(lines.length, 3, 'a header and alice\'s two sessions');
  t.ok(lines.slice(1).every((l) => /^[A-Za-z0-9_-]{12}\s+alice\s+0\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+\d{4}-/.test(l)));

  t.equal(dashes.status, 2, 'an id after "--" is refused rather than ignored (which would end every session)');
  t.match(dashes.stderr, /--id=<id>/);
  t.equal(foreign.status, 1, 'an id of another client is not one of bob\'s');
  t.match(foreign.stderr, /not a proxy session id of client bob/);
  t.same([await status(alice, a1), await status(alice, a2), await status(bob, b1)], [200, 200, 200], 'none of that ended anything');

  const one = await run(['session', 'revoke', a1, '--config', config, '--client', 'alice']);
  t.same([one.status, one.stdout], [0, 'ended 1 session of client alice\n']);
  t.same([await status(alice, a1), await status(alice, a2)], [404, 200], 'the proxy refuses exactly the revoked one');

  const [twice, all] = await Promise.all([
    run(['session', 'revoke', `--id=${a1}`, '--config', config, '--client', 'alice']),
    run(['session', 'revoke', '--config', config, '--client', 'alice']),
  ]);
  t.equal(twice.status, 1, 'an id already ended');
  t.match(twice.stderr, /no open session with that id for client alice/);
  t.same([all.status, all.stdout], [0, 'ended 1 session of client alice\n'], 'every session of alice: the one left');
  t.equal(await status(alice, a2), 404);
  t.equal(await status(bob, b1), 200, 'bob\'s session is untouched');
  t.equal((await send(proxy.mcpUrl, { token: alice })).status, 400, 'alice\'s token still works (the upstream wants a session): sessions, not tokens, were revoked');
});

t.test('without tokens.secret the CLI derives ids from the tag secret the proxy shares through Redis', async (t) => {
  const keyPrefix = freshPrefix();
  const proxy = await startWarden({ upstreams: [upstream.url], store: { type: 'redis', url: redis.url, keyPrefix }, tokens: { secret: null } });
  t.teardown(() => proxy.close());
  const token = await proxy.token();
  const { sessionId } = await openSession(proxy.mcpUrl, token);
  const config = configFile('no-secret', { store: { type: 'redis', url: redis.url, keyPrefix } });
  const revoked = await run(['session', 'revoke', `--id=${sessionId ?? ''}`, '--config', config, '--client', 'alice']);
  t.same([revoked.status, revoked.stdout], [0, 'ended 1 session of client alice\n'], revoked.stderr);
  t.equal((await send(proxy.mcpUrl, { token, sessionId })).status, 404);
});

t.test('usage and configuration problems exit 2', async (t) => {
  const memory = configFile('memory', { store: { type: 'memory' } });
  const [onMemory, noClient, help] = await Promise.all([
    run(['session', 'list', '--config', memory]),
    run(['session', 'revoke', 'some-id', '--config', memory]),
    run(['session', 'revoke', '--help']),
  ]);
  t.equal(onMemory.status, 2);
  t.match(onMemory.stderr, /need a shared store/);
  t.equal(noClient.status, 2);
  t.match(noClient.stderr, /Missing required argument: client/);
  t.equal(help.status, 0);
  t.match(help.stdout, /Examples:[\s\S]*session revoke <Mcp-Session-Id>/);
});
