/**
 * The admin commands parsed and run in-process by the real yargs instance, against a private
 * Redis: what each prints, what it leaves in the store, and the error (and exit code) of each
 * refusal. test/cli/admin-binary.slow.test.ts runs the built binary.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { publicSite } from '../../src/admin/common.js';
import { verifySecret } from '../../src/auth/secret-hash.js';
import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { createStore } from '../../src/store/create.js';
import { fields, runCli, tempDir, writeConfig } from '../fixtures/admin-cli.js';
import { startRedis } from '../fixtures/redis.js';
import { claimsOf, kidOf } from '../fixtures/tokens.js';

const SECRET = 'cli-signing-secret-0123456789abcdef';
const PUBLIC_URL = 'http://127.0.0.1:18080';
const redis = await startRedis();
const dir = tempDir();
const storeConfig = { type: 'redis', url: redis.url, keyPrefix: `cli-${randomBytes(4).toString('hex')}:` } as const;
const raw = { publicUrl: PUBLIC_URL, store: storeConfig, tokens: { secret: SECRET }, clients: [{ id: 'alice', secret: 'alice-secret-0123456789', scopes: ['mcp', 'extra'] }] };
const cfg = writeConfig(dir, 'redis.json', raw);
const memoryCfg = writeConfig(dir, 'memory.json', { ...raw, store: { type: 'memory' } });
const memoryNoSecret = writeConfig(dir, 'memory-nosecret.json', { ...raw, store: { type: 'memory' }, tokens: {} });
const parsed = validateConfig(raw);
if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
const store = await createStore(parsed.config.store, { clock: Date.now });
t.teardown(async () => {
  await store.close();
  await redis.stop();
});

const verifyToken = (token: string) => jwtVerify(token, new TextEncoder().encode(SECRET), { issuer: PUBLIC_URL, audience: `${PUBLIC_URL}/mcp`, typ: 'at+jwt' });

t.test('client add: prints a generated secret once, stores only its scrypt hash', async (t) => {
  const run = await runCli(['client', 'add', '--id', 'agent-2', '--scope', 'mcp', '--scope', 'extra', '--max-sessions', '3', '--config', cfg]);
  t.equal(run.error, null);
  const out = fields(run.stdout);
  t.equal(out.client_id, 'agent-2');
  t.match(out.client_secret, /^[A-Za-z0-9_-]{43}$/, '256-bit secret');
  t.match(run.stderr, /not shown again/);
  const stored = await store.getClient('agent-2');
  t.match(stored, { id: 'agent-2', scopes: ['mcp', 'extra'], maxSessions: 3, createdAt: Number });
  t.ok(await verifySecret(out.client_secret ?? '', stored?.secretHash ?? ''), 'the hash verifies the printed secret');
  t.notMatch(JSON.stringify(stored), out.client_secret ?? 'x', 'the secret itself is not stored');

  const errors: [string[], string, number][] = [
    [['client', 'add', '--id', 'agent-2'], 'CLIENT_EXISTS', 1],
    [['client', 'add', '--id', 'alice'], 'CLIENT_EXISTS', 1],
    [['client', 'add', '--id', 'bad id'], 'INVALID_ARGUMENT', 2],
    [['client', 'add', '--id', 'x', '--scope', 'a"b'], 'INVALID_ARGUMENT', 2],
    [['client', 'add', '--id', 'x', '--max-sessions', 'many'], 'INVALID_ARGUMENT', 2],
  ];
  for (const [argv, code, exitCode] of errors) {
    const failed = await runCli([...argv, '--config', cfg]);
    t.match(failed.error, { name: 'AdminError', code, exitCode }, argv.join(' '));
    t.equal(failed.stdout, '', 'nothing printed on stdout');
  }
  t.match((await runCli(['client', 'add', '--id', 'alice', '--config', cfg])).error?.message, /config file/);
  t.match((await runCli(['client', 'add', '--config', cfg])).error, { name: 'UsageError', message: /Missing required argument: id/ });
  t.match((await runCli(['client', 'add', '--id', 'm', '--config', memoryCfg])).error, { code: 'MEMORY_STORE', exitCode: 2, message: /store is "memory"/ });
  t.equal(await store.getClient('x'), null, 'nothing stored by the refused commands');
});

t.test('client list: ids, scopes, source and creation; never a secret or hash', async (t) => {
  const run = await runCli(['client', 'list', '--json', '--config', cfg]);
  const listed = JSON.parse(run.stdout) as Record<string, unknown>[];
  t.match(listed, [{ id: 'alice', source: 'config', scopes: ['mcp', 'extra'], createdAt: null }, { id: 'agent-2', source: 'store', createdAt: Number }]);
  const table = await runCli(['client', 'list', '--config', cfg]);
  t.match(table.stdout, /^ID\s+SOURCE\s+SCOPES\s+CREATED\n/);
  t.match(table.stdout, /^agent-2\s+store\s+mcp extra\s+\d{4}-\d\d-\d\dT/m);
  for (const text of [run.stdout, table.stdout]) t.notMatch(text, /scrypt|secret/i);
  const memory = await runCli(['client', 'list', '--json', '--config', memoryCfg]);
  t.same((JSON.parse(memory.stdout) as { id: string }[]).map((c) => c.id), ['alice'], 'works on the memory store (config clients)');
});

t.test('client rotate-secret and hash-secret', async (t) => {
  const before = (await store.getClient('agent-2'))?.secretHash ?? '';
  const run = await runCli(['client', 'rotate-secret', '--id', 'agent-2', '--config', cfg]);
  const secret = fields(run.stdout).client_secret ?? '';
  const after = (await store.getClient('agent-2'))?.secretHash ?? '';
  t.not(after, before);
  t.ok(await verifySecret(secret, after));
  t.match(run.stderr, /--revoke-tokens/, 'says old tokens stay valid');
  const state = () => store.loadRequestState({ principal: 'agent-2', jti: null, grantId: null, sessionKey: null, now: Date.now(), idleTimeoutMs: 1, maxLifetimeMs: 1 });
  t.equal((await state()).clientCutoff, 0, 'no cut-off without --revoke-tokens');
  await runCli(['client', 'rotate-secret', '--id', 'agent-2', '--revoke-tokens', '--config', cfg]);
  t.ok((await state()).clientCutoff > 0, '--revoke-tokens cuts off every earlier token');
  t.match((await runCli(['client', 'rotate-secret', '--id', 'alice', '--config', cfg])).error, { code: 'CONFIG_CLIENT', exitCode: 2 });
  t.match((await runCli(['client', 'rotate-secret', '--id', 'nobody', '--config', cfg])).error, { code: 'CLIENT_NOT_FOUND', exitCode: 1 });

  const hashed = await runCli(['client', 'hash-secret', '--secret', 'a-long-enough-secret-0123']);
  t.ok(await verifySecret('a-long-enough-secret-0123', hashed.stdout.trim()));
  t.ok(validateConfig({ clients: [{ id: 'h', secretHash: hashed.stdout.trim() }] }).ok, 'accepted as clients[].secretHash');
  t.match((await runCli(['client', 'hash-secret', '--secret', 'short'])).error, { code: 'INVALID_ARGUMENT', exitCode: 2 });
});

t.test('token issue: audience and issuer from publicUrl, scope subset, ttl', async (t) => {
  const run = await runCli(['token', 'issue', '--client', 'alice', '--config', cfg]);
  const token = run.stdout.trim();
  const { payload } = await verifyToken(token);
  t.match(payload, { sub: 'alice', client_id: 'alice', scope: 'mcp extra', gid: String, jti: String });
  t.equal(Number(payload.exp) - Number(payload.iat), 3600, 'default ttl: tokens.accessTtl');
  t.match(run.stderr, new RegExp(`kid ${kidOf(token)}`));
  const narrow = await runCli(['token', 'issue', '--client', 'agent-2', '--scope', 'extra', '--ttl', '15m', '--config', cfg]);
  const claims = claimsOf(narrow.stdout.trim());
  t.match(claims, { sub: 'agent-2', scope: 'extra' }, 'a store client');
  t.equal(Number(claims.exp) - Number(claims.iat), 900);
  const refusals: [string[], string, number][] = [
    [['--client', 'alice', '--scope', 'admin'], 'SCOPE_NOT_ALLOWED', 2],
    [['--client', 'nobody'], 'CLIENT_NOT_FOUND', 1],
    [['--client', 'alice', '--ttl', 'soon'], 'INVALID_ARGUMENT', 2],
    [['--client', 'alice', '--ttl', '90d'], 'INVALID_ARGUMENT', 2],
  ];
  for (const [argv, code, exitCode] of refusals) t.match((await runCli(['token', 'issue', ...argv, '--config', cfg])).error, { code, exitCode }, argv.join(' '));
  const memory = await runCli(['token', 'issue', '--client', 'alice', '--config', memoryCfg]);
  await t.resolves(verifyToken(memory.stdout.trim()), 'the memory store with tokens.secret signs with the configured key');
  t.match((await runCli(['token', 'issue', '--client', 'alice', '--config', memoryNoSecret])).error, { code: 'MEMORY_STORE', exitCode: 2 });
});

t.test('token revoke: by token, jti, grant, client; argument rules', async (t) => {
  const issue = async () => (await runCli(['token', 'issue', '--client', 'alice', '--config', cfg])).stdout.trim();
  const state = (token: string) => {
    const c = claimsOf(token);
    return store.loadRequestState({ principal: 'alice', jti: String(c.jti), grantId: String(c.gid), sessionKey: null, now: Date.now(), idleTimeoutMs: 1, maxLifetimeMs: 1 });
  };
  const [byToken, byJti, byGrant] = [await issue(), await issue(), await issue()];
  t.match((await runCli(['token', 'revoke', '--token', byToken, '--config', cfg])).stdout, /revoked the token of client alice/);
  t.equal((await state(byToken)).revoked, true);
  t.equal((await state(byJti)).revoked, false, 'only that token');
  await runCli(['token', 'revoke', `--jti=${String(claimsOf(byJti).jti)}`, '--client', 'alice', '--config', cfg]);
  t.equal((await state(byJti)).revoked, true);
  await runCli(['token', 'revoke', `--grant=${String(claimsOf(byGrant).gid)}`, '--client', 'alice', '--config', cfg]);
  t.equal((await state(byGrant)).revoked, true);
  const all = await runCli(['token', 'revoke', '--client', 'agent-2', '--config', cfg]);
  t.match(all.stdout, /revoked everything held by client agent-2; 0 session\(s\) ended/);

  // Ids are base64url: one starting with "-" must be given as --jti=ID (the other form is a usage error, nothing revoked).
  t.match((await runCli(['token', 'revoke', '--jti', '-abc', '--client', 'alice', '--config', cfg])).error, { name: 'UsageError' });
  t.equal((await runCli(['token', 'revoke', '--jti=-abc', '--client', 'alice', '--config', cfg])).error, null);
  const usage = [[], ['--jti', 'j'], ['--token', 'x', '--client', 'alice'], ['--jti', 'j', '--grant', 'g', '--client', 'alice']];
  for (const argv of usage) t.match((await runCli(['token', 'revoke', ...argv, '--config', cfg])).error, { name: 'UsageError' }, `usage: ${argv.join(' ') || '(nothing)'}`);
  t.match((await runCli(['token', 'revoke', '--token', 'garbage', '--config', cfg])).error, { code: 'TOKEN_INVALID', exitCode: 2 });
  t.match((await runCli(['token', 'revoke', '--client', 'nobody', '--config', cfg])).error, { code: 'CLIENT_NOT_FOUND', exitCode: 1 });
  t.match((await runCli(['token', 'revoke', '--client', 'alice', '--config', memoryCfg])).error, { code: 'MEMORY_STORE', exitCode: 2 });

  // A signed-in person: everything they hold, in every app, by the id X-MCP-User shows.
  const person = 'u~Ab3dE6~carol';
  const before = Date.now();
  t.match((await runCli(['token', 'revoke', '--user', person, '--config', cfg])).stdout, /revoked everything held by u~Ab3dE6~carol; 0 session\(s\) ended/);
  const cut = await store.loadRequestState({ principal: person, jti: null, grantId: null, sessionKey: null, now: Date.now(), idleTimeoutMs: 1, maxLifetimeMs: 1 });
  t.ok(cut.clientCutoff >= before, 'tokens the person got before now are refused from now on');
  t.match((await runCli(['token', 'revoke', '--user', 'alice', '--config', cfg])).error, { code: 'INVALID_ARGUMENT' }, 'a client id is not a person');
  t.match((await runCli(['token', 'revoke', '--user', person, '--client', 'alice', '--config', cfg])).error, { name: 'UsageError' });
});

t.test('keys rotate: a new kid in the store, used by the next token', async (t) => {
  const before = (await store.getKeys()).length;
  const run = await runCli(['keys', 'rotate', '--config', cfg]);
  const kid = run.stdout.trim();
  t.match(kid, /^[A-Za-z0-9_-]{12}$/);
  t.equal((await store.getKeys()).length, before + 1);
  t.ok((await store.getKeys()).some((k) => k.kid === kid));
  t.equal(kidOf((await runCli(['token', 'issue', '--client', 'alice', '--config', cfg])).stdout.trim()), kid);
  t.match((await runCli(['keys', 'rotate', '--config', memoryCfg])).error, { code: 'MEMORY_STORE', exitCode: 2 });
});

t.test('client remove: deletes the client and cuts off everything it holds', async (t) => {
  const run = await runCli(['client', 'remove', '--id', 'agent-2', '--config', cfg]);
  t.match(run.stdout, /removed client agent-2/);
  t.equal(await store.getClient('agent-2'), null);
  const state = await store.loadRequestState({ principal: 'agent-2', jti: null, grantId: null, sessionKey: null, now: Date.now(), idleTimeoutMs: 1, maxLifetimeMs: 1 });
  t.ok(state.clientCutoff > Date.now() - 5_000, 'tokens issued before now are revoked');
  t.match((await runCli(['client', 'remove', '--id', 'agent-2', '--config', cfg])).error, { code: 'CLIENT_NOT_FOUND', exitCode: 1 });
  t.match((await runCli(['client', 'remove', '--id', 'alice', '--config', cfg])).error, { code: 'CONFIG_CLIENT', exitCode: 2 });
});

t.test('init: a 0600 config with fresh secrets, the client secret and a first token', async (t) => {
  const out = join(tempDir(), 'proxy.json');
  const run = await runCli(['init', '--out', out, '--client-id', 'agent-9', '--upstream', 'http://127.0.0.1:3999/mcp']);
  t.equal(run.error, null);
  t.equal(statSync(out).mode & 0o777, 0o600);
  const file = JSON.parse(readFileSync(out, 'utf8')) as { tokens: { secret: string }; clients: { id: string; secretHash: string; secret?: string }[]; upstreams: string[] };
  const printed = fields(run.stdout);
  t.equal(printed.client_id, 'agent-9');
  t.match(file, { upstreams: ['http://127.0.0.1:3999/mcp'], clients: [{ id: 'agent-9', secretHash: /^scrypt\$/ }] });
  t.ok(Buffer.byteLength(file.tokens.secret) >= 32, 'a 32-byte (or longer) signing secret');
  t.notOk(readFileSync(out, 'utf8').includes(printed.client_secret ?? 'x'), 'the client secret is not in the file');
  t.ok(await verifySecret(printed.client_secret ?? '', file.clients[0]?.secretHash ?? ''));
  const loaded = await loadConfig({ file: out, env: {} });
  t.ok(loaded.ok, 'mcp-warden loads the file as written');
  const { payload } = await jwtVerify(printed.access_token ?? '', new TextEncoder().encode(file.tokens.secret), { issuer: 'http://127.0.0.1:8080', audience: 'http://127.0.0.1:8080/mcp' });
  t.equal(payload.sub, 'agent-9');

  t.match((await runCli(['init', '--out', out])).error, { code: 'FILE_EXISTS', exitCode: 2 });
  t.equal(JSON.parse(readFileSync(out, 'utf8')).tokens.secret, file.tokens.secret, 'untouched without --force');
  const forced = await runCli(['init', '--out', out, '--force']);
  t.equal(forced.error, null);
  t.not(JSON.parse(readFileSync(out, 'utf8')).tokens.secret, file.tokens.secret, 'replaced with --force');
  t.equal(statSync(out).mode & 0o777, 0o600, 'still 0600');
  t.match((await runCli(['init', '--out', join(tempDir(), 'x.json'), '--client-id', 'no spaces'])).error, { code: 'INVALID_ARGUMENT', exitCode: 2 });
  t.match((await runCli(['init', '--out', join(tempDir(), 'y.json'), '--upstream', 'ftp://x'])).error, { code: 'INVALID_ARGUMENT', exitCode: 2 });
});

t.test('publicSite: the issuer and audience a proxy with this config would use', async (t) => {
  const site = (extra: Record<string, unknown>) => {
    const result = validateConfig(extra);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    return publicSite(result.config);
  };
  t.same(site({}), { origin: 'http://127.0.0.1:8080', resource: 'http://127.0.0.1:8080/mcp', issuer: 'http://127.0.0.1:8080' });
  t.same(site({ listen: { host: '::1', port: 9000 }, mcpPath: '/x' }), { origin: 'http://[::1]:9000', resource: 'http://[::1]:9000/x', issuer: 'http://[::1]:9000' });
  t.match(site({ publicUrl: 'https://mcp.example/', tokens: { issuer: 'https://auth.example' } }), { origin: 'https://mcp.example', resource: 'https://mcp.example/mcp', issuer: 'https://auth.example' });
  t.throws(() => site({ listen: { port: 0 } }), { code: 'INVALID_ARGUMENT' });
});

t.test('every admin command has --help with examples', async (t) => {
  for (const command of [['init'], ['client', 'add'], ['client', 'list'], ['client', 'remove'], ['client', 'rotate-secret'], ['client', 'hash-secret'], ['token', 'issue'], ['token', 'revoke'], ['keys', 'rotate'], ['client'], ['token'], ['keys']]) {
    const help = await runCli([...command, '--help']);
    t.equal(help.error, null);
    t.match(help.stdout, /Examples:\n[\s\S]*mcp-warden /, `${command.join(' ')} --help has examples`);
  }
});
