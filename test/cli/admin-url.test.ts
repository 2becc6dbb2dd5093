/**
 * The admin commands through a running proxy's admin API (`--admin-url`): the built binary
 * against a proxy on the memory store, which the CLI could not reach any other way.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDemoServer } from '../../demo/mcp-server.js';
import { runCli, spawnCli, tempDir } from '../fixtures/admin-cli.js';
import { initialize, rpc } from '../fixtures/probe.js';
import { freePort } from '../fixtures/redis.js';
import { startWarden } from '../fixtures/warden.js';

const KEY = 'cli-admin-key-0123456789abcdef-0123456789';

/** The real CLI in this process (fast), with the exit code the binary would have. */
async function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const run = await runCli(args);
  const status = run.error ? (run.error.exitCode ?? (run.error.name === 'UsageError' ? 2 : 1)) : Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { status, stdout: run.stdout, stderr: run.stderr + (run.error ? run.error.message : '') };
}

t.test('token revoke, session list/end, address list/unblock, keys rotate/retire through the admin API', async (t) => {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const proxy = await startWarden({ upstreams: [upstream.url], admin: { listen: `127.0.0.1:${await freePort()}`, key: KEY }, rateLimits: { failedAttempts: { points: 2, duration: '1m', block: '5m' } } });
  t.teardown(() => proxy.close());
  const dir = tempDir();
  const keyFile = join(dir, 'admin.key');
  writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
  const api = ['--admin-url', proxy.warden.adminUrl ?? '', '--admin-key-file', keyFile];

  const alice = await proxy.token('alice');
  const bob = await proxy.token('bob');
  const sessionId = (await rpc(proxy.mcpUrl, { token: bob, body: initialize(1) })).headers.get('mcp-session-id') ?? '';

  const memory = await cli(['address', 'list']);
  t.equal(memory.status, 2, 'without --admin-url the memory store cannot be reached');
  t.match(memory.stderr, /memory/);

  const revoked = await spawnCli(['token', 'revoke', '--client', 'alice', ...api]);
  t.equal(revoked.status, 0, revoked.stderr);
  t.match(revoked.stdout, /revoked everything held by client alice/);
  t.equal((await rpc(proxy.mcpUrl, { token: alice, body: initialize(2) })).status, 401, 'the revocation took effect in the proxy');

  const listed = await cli(['session', 'list', '--json', ...api]);
  t.equal(listed.status, 0, listed.stderr);
  const rows = JSON.parse(listed.stdout) as { session: string; clientId: string }[];
  t.match(rows, [{ clientId: 'bob' }]);
  const ended = await cli(['session', 'end', rows[0]?.session ?? '', ...api]);
  t.equal(ended.status, 0, ended.stderr);
  t.match(ended.stdout, /ended session .* of client bob/);
  t.equal((await rpc(proxy.mcpUrl, { token: bob, sessionId, body: { jsonrpc: '2.0', id: 3, method: 'tools/list' } })).status, 404);
  t.equal((await cli(['session', 'end', rows[0]?.session ?? '', ...api])).status, 1, 'a second time: nothing to end');

  for (let i = 0; i < 2; i++) await rpc(proxy.mcpUrl, { token: 'bad' });
  const blocks = await cli(['address', 'list', ...api]);
  t.match(blocks.stdout, /^127\.0\.0\.1\/32 {2}\d+ s$/m);
  t.equal((await cli(['address', 'unblock', '127.0.0.1', ...api])).status, 0);
  t.equal((await rpc(proxy.mcpUrl, { token: bob, body: initialize(4) })).status, 200, 'unblocked');

  const rotated = await cli(['keys', 'rotate', ...api]);
  t.equal(rotated.status, 0, rotated.stderr);
  const kid = rotated.stdout.trim();
  t.match(kid, /^[A-Za-z0-9_-]+$/);
  const refused = await cli(['keys', 'retire', kid, ...api]);
  t.equal(refused.status, 1, 'the signing key cannot be retired');
  t.match(refused.stderr, /rotate first/);

  const wrong = join(dir, 'wrong.key');
  writeFileSync(wrong, 'x'.repeat(40));
  const unauthorized = await cli(['address', 'list', '--admin-url', proxy.warden.adminUrl ?? '', '--admin-key-file', wrong]);
  t.equal(unauthorized.status, 2, 'a wrong key is the caller\'s to fix');
  t.match(unauthorized.stderr, /admin API refused: The admin API needs the admin key/);
  t.notOk(unauthorized.stderr.includes('x'.repeat(40)), 'the key is not echoed');
  const away = await cli(['address', 'list', '--admin-url', `http://127.0.0.1:${await freePort()}`, '--admin-key-file', keyFile]);
  t.equal(away.status, 1);
  t.match(away.stderr, /did not answer/);
});
