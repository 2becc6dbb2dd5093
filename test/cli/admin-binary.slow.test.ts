/**
 * The built binary: each admin command group once per exit code it can give, and the commands
 * taking effect on a running proxy that shares the Redis (no restart). The further steps of a
 * scenario run in-process (same CLI, same core; test/cli/admin-commands.test.ts covers every
 * refusal there) to keep the number of processes down; independent refusals run in parallel.
 */
import t from 'tap';
import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startDemoServer } from '../../demo/mcp-server.js';
import { basic, mcpPost, postForm } from '../fixtures/http.js';
import { fields, runCli, spawnCli, tempDir, writeConfig } from '../fixtures/admin-cli.js';
import type { Spawned } from '../fixtures/admin-cli.js';
import { leakGuard } from '../fixtures/leaks.js';
import { startRedis } from '../fixtures/redis.js';
import { claimsOf, kidOf } from '../fixtures/tokens.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';

const redis = await startRedis();
const upstream = await startDemoServer();
const dir = tempDir();
const raw = {
  upstreams: [upstream.url],
  store: { type: 'redis', url: redis.url, keyPrefix: `bin-${randomBytes(4).toString('hex')}:` },
  tokens: { secret: 'binary-signing-secret-0123456789abcdef' },
  clients: Object.entries(TEST_CLIENTS).map(([id, secret]) => ({ id, secret, scopes: ['mcp', 'extra'] })),
};
const proxy = await startWarden(raw);
const leaks = leakGuard();
leaks.watch(proxy.logs);
leaks.add(...Object.values(TEST_CLIENTS), raw.tokens.secret);
// The CLI names the running proxy's public URL: tokens it makes carry that audience.
const cfg = writeConfig(dir, 'proxy.json', { ...raw, publicUrl: proxy.url });
const memoryCfg = writeConfig(dir, 'memory.json', { ...raw, publicUrl: proxy.url, store: { type: 'memory' } });
t.teardown(async () => {
  await proxy.close();
  await upstream.close();
  await redis.stop();
});

async function cli(t: Test, args: string[], status: number, input?: string): Promise<Spawned> {
  const run = await spawnCli(args, { input });
  t.equal(run.status, status, `exit ${status}: mcp-warden ${args.filter((a) => !a.startsWith('eyJ')).join(' ')}`);
  if (status !== 0) t.match(run.stderr, /\S/, 'says why on stderr');
  return run;
}

/** Refusals that do not depend on each other: one process each, all at once. */
async function refusals(t: Test, cases: [string[], number][]): Promise<void> {
  await Promise.all(cases.map(([args, status]) => cli(t, args, status)));
}

/** The same CLI in this process (for the extra steps of a scenario). */
async function inProcess(t: Test, args: string[]): Promise<string> {
  const run = await runCli(args);
  t.equal(run.error, null, `in-process: mcp-warden ${args.filter((a) => !a.startsWith('eyJ')).join(' ')}`);
  return run.stdout;
}

const mcpStatus = async (token: string): Promise<number> => (await mcpPost(proxy.mcpUrl, `Bearer ${token}`)).status;
const tokenFor = async (id: string, secret: string) => postForm(`${proxy.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basic(id, secret) });
const issue = async (t: Test, client: string): Promise<string> => {
  const token = (await inProcess(t, ['token', 'issue', '--client', client, '--config', cfg])).trim();
  leaks.add(token);
  return token;
};

t.test('token issue → accepted by the running proxy; token revoke → refused at once', async (t) => {
  const token = (await cli(t, ['token', 'issue', '--client', 'alice', '--config', cfg], 0)).stdout.trim();
  leaks.add(token);
  t.equal(await mcpStatus(token), 200, 'a token from the binary works on the proxy with the same config');
  await cli(t, ['token', 'revoke', '--token', token, '--config', cfg], 0);
  t.equal(await mcpStatus(token), 401, 'revoked by token');
  t.match(proxy.logs.events('auth.failed').at(-1), { reason: 'revoked' });

  const byGrant = await issue(t, 'alice');
  await inProcess(t, ['token', 'revoke', `--grant=${String(claimsOf(byGrant).gid)}`, '--client', 'alice', '--config', cfg]);
  t.equal(await mcpStatus(byGrant), 401, 'revoked by grant');
  const byJti = await issue(t, 'alice');
  await inProcess(t, ['token', 'revoke', `--jti=${String(claimsOf(byJti).jti)}`, '--client', 'alice', '--config', cfg]);
  t.equal(await mcpStatus(byJti), 401, 'revoked by jti');
  const bobs = await issue(t, 'bob');
  t.equal(await mcpStatus(bobs), 200);
  await inProcess(t, ['token', 'revoke', '--client', 'bob', '--config', cfg]);
  t.equal(await mcpStatus(bobs), 401, 'revoked with everything bob holds');

  await refusals(t, [
    [['token', 'issue', '--client', 'alice', '--scope', 'admin', '--config', cfg], 2],
    [['token', 'revoke', '--client', 'nobody', '--config', cfg], 1],
  ]);
});

t.test('client add / rotate-secret / remove take effect on the running proxy', async (t) => {
  const added = await cli(t, ['client', 'add', '--id', 'agent-7', '--config', cfg], 0);
  const secret = fields(added.stdout).client_secret ?? '';
  leaks.add(secret);
  const first = await tokenFor('agent-7', secret);
  t.equal(first.status, 200, 'the new client gets tokens from the running proxy');
  const access = String(first.json().access_token);
  leaks.add(access);
  t.equal(await mcpStatus(access), 200);

  const rotated = fields(await inProcess(t, ['client', 'rotate-secret', '--id', 'agent-7', '--config', cfg])).client_secret ?? '';
  leaks.add(rotated);
  t.equal((await tokenFor('agent-7', secret)).status, 401, 'the old secret stops working at once');
  t.equal((await tokenFor('agent-7', rotated)).status, 200, 'the new one works');

  await cli(t, ['client', 'remove', '--id', 'agent-7', '--config', cfg], 0);
  t.equal(await mcpStatus(access), 401, 'its tokens are refused at once');
  t.equal((await tokenFor('agent-7', rotated)).status, 401, 'and it cannot get new ones');

  await refusals(t, [
    [['client', 'add', '--id', 'alice', '--config', cfg], 1],
    [['client', 'rotate-secret', '--id', 'alice', '--config', memoryCfg], 2],
    [['client', 'list', '--config', join(dir, 'missing.json')], 2],
  ]);
});

t.test('client hash-secret reads stdin; the hash works as a config secretHash', async (t) => {
  const run = await cli(t, ['client', 'hash-secret'], 0, 'a-piped-secret-0123456789\n');
  const hash = run.stdout.trim();
  t.match(hash, /^scrypt\$/);
  t.notOk(run.stdout.includes('a-piped-secret'), 'only the hash is printed');
  const hashed = await startWarden({ upstreams: [upstream.url], clients: [{ id: 'hashed', secretHash: hash, scopes: ['mcp'] }] });
  t.teardown(() => hashed.close());
  const res = await postForm(`${hashed.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basic('hashed', 'a-piped-secret-0123456789') });
  t.equal(res.status, 200);
  leaks.add(String(res.json().access_token));
});

t.test('keys rotate: old tokens still work; the proxy takes the new kid without restart', async (t) => {
  const before = await issue(t, 'alice');
  const [rotated] = await Promise.all([cli(t, ['keys', 'rotate', '--config', cfg], 0), cli(t, ['keys', 'rotate', '--config', memoryCfg], 2)]);
  const kid = rotated.stdout.trim();
  t.not(kidOf(before), kid);
  t.equal(await mcpStatus(before), 200, 'a token signed before the rotation still works');
  const after = await issue(t, 'alice');
  t.equal(kidOf(after), kid, 'new CLI tokens carry the new kid');
  t.equal(await mcpStatus(after), 200, 'the running proxy finds the new key on first sight');
  const served = await tokenFor('alice', TEST_CLIENTS.alice);
  leaks.add(String(served.json().access_token));
  t.equal(kidOf(String(served.json().access_token)), kid, 'and signs its own tokens with it from then on');
});

t.test('init: exit 0 writes a config a proxy runs with; 2 on an existing file; 1 when it cannot write', async (t) => {
  const out = join(tempDir(), 'proxy.json');
  const run = await cli(t, ['init', '--out', out, '--upstream', upstream.url], 0);
  const printed = fields(run.stdout);
  leaks.add(printed.client_secret, printed.access_token);
  await refusals(t, [
    [['init', '--out', out], 2],
    [['init', '--out', join(dir, 'no-such-dir', 'proxy.json')], 1],
  ]);

  // A proxy started from the file (listening on a free port; its public URL is the file's) accepts
  // the printed token and the printed client secret.
  const file = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
  const fromFile = await startWarden({ ...file, listen: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => fromFile.close());
  leaks.watch(fromFile.logs);
  const local = `http://127.0.0.1:${(fromFile.warden.server.address() as AddressInfo).port}`;
  t.equal(fromFile.mcpUrl, 'http://127.0.0.1:8080/mcp');
  t.equal((await mcpPost(`${local}/mcp`, `Bearer ${printed.access_token ?? ''}`)).status, 200, 'the first token works');
  const res = await postForm(`${local}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basic(printed.client_id ?? '', printed.client_secret ?? '') });
  t.equal(res.status, 200, 'the printed client secret matches the stored hash');
  leaks.add(String(res.json().access_token));
});

t.test('usage errors exit 2; --help exits 0 with examples', async (t) => {
  await refusals(t, [[['token', 'issue', '--client', 'alice', '--bogus', '--config', cfg], 2]]);
  const help = await cli(t, ['token', 'revoke', '--help'], 0);
  t.match(help.stdout, /Examples:\n\s+mcp-warden token revoke/);
});

t.test('logs: no token or secret the commands made appears in the proxy logs', async (t) => {
  const scan = leaks.scan();
  t.ok(scan.credentials > 10, `${scan.credentials} credentials in ${scan.lines} lines`);
  t.same(scan.leaked, []);
});
