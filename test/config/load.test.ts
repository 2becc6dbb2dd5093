import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { parseDuration } from '../../src/config/duration.js';
import { exampleConfig, referenceTable } from '../../src/config/reference.js';

const dir = mkdtempSync(join(tmpdir(), 'mcpw-config-'));
function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

t.test('durations', async (t) => {
  t.equal(parseDuration('90s'), 90_000);
  t.equal(parseDuration('15m'), 900_000);
  t.equal(parseDuration('1h'), 3_600_000);
  t.equal(parseDuration('30d'), 2_592_000_000);
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration(1500), 1500);
  t.equal(parseDuration('1500'), 1500);
  for (const bad of ['soon', '1y', '-5s', '', '1.5h', 1.5, -1, null, {}]) t.equal(parseDuration(bad), null, `rejects ${JSON.stringify(bad)}`);
});

t.test('defaults apply when nothing is given', async (t) => {
  const result = await loadConfig({});
  t.ok(result.ok);
  if (!result.ok) return;
  t.equal(result.config.listen.port, 8080);
  t.equal(result.config.mcpPath, '/mcp');
  t.equal(result.config.store.type, 'memory');
  t.equal(result.config.sessions.idleTimeout, 3_600_000);
  t.same(result.config.rateLimits.failedAttempts, { points: 20, durationMs: 60_000, blockMs: 300_000 });
  t.ok(Object.isFrozen(result.config.sessions), 'config is frozen');
});

t.test('precedence: flags > env > file > defaults', async (t) => {
  const path = file('layers.json', { listen: { port: 1111, host: '0.0.0.0' }, mcpPath: '/from-file', log: { level: 'debug' } });
  const env = { MCP_WARDEN_PORT: '2222', MCP_WARDEN_MCP_PATH: '/from-env' };
  const result = await loadConfig({ file: path, env, flags: { port: '3333' } });
  t.ok(result.ok);
  if (!result.ok) return;
  t.equal(result.config.listen.port, 3333, 'flag beats env and file');
  t.equal(result.config.mcpPath, '/from-env', 'env beats file');
  t.equal(result.config.listen.host, '0.0.0.0', 'file beats default');
  t.equal(result.config.log.level, 'debug');
  t.equal(result.config.tokens.accessTtl, 3_600_000, 'default when no layer sets it');

  const viaEnvFile = await loadConfig({ env: { MCP_WARDEN_CONFIG: path } });
  t.ok(viaEnvFile.ok && viaEnvFile.config.listen.port === 1111, 'MCP_WARDEN_CONFIG names the file');
  const upstreams = await loadConfig({ flags: { upstream: ['http://a:1/mcp', 'http://b:2/mcp'] }, env: { MCP_WARDEN_UPSTREAMS: 'http://c:3/mcp' } });
  t.same(upstreams.ok && upstreams.config.upstreams, ['http://a:1/mcp', 'http://b:2/mcp'], 'repeatable --upstream');
  const envList = await loadConfig({ env: { MCP_WARDEN_UPSTREAMS: 'http://c:3/mcp, http://d:4/mcp', MCP_WARDEN_TRUST_PROXY: '10.0.0.0/8,192.168.0.1' } });
  t.same(envList.ok && envList.config.upstreams, ['http://c:3/mcp', 'http://d:4/mcp'], 'comma list in env');
  t.same(envList.ok && envList.config.security.trustProxy, { kind: 'cidrs', cidrs: ['10.0.0.0/8', '192.168.0.1'] });
});

t.test('secrets from files', async (t) => {
  const secret = file('token.secret', 'x'.repeat(40) + '\n');
  const clientSecret = file('client.secret', 'client-secret-value-123\n');
  const result = await loadConfig({ file: file('secrets.json', { tokens: { secretFile: secret }, clients: [{ id: 'a', secretFile: clientSecret }] }) });
  t.ok(result.ok);
  if (!result.ok) return;
  t.equal(result.config.tokens.secret, 'x'.repeat(40), 'trailing newline dropped');
  t.equal(result.config.clients[0]?.secret, 'client-secret-value-123');
  const missing = await loadConfig({ file: file('missing.json', { tokens: { secretFile: join(dir, 'nope') } }) });
  t.same(!missing.ok && missing.problems.map((p) => p.path), ['tokens.secretFile']);
  const redisPassword = file('redis.pw', 'hunter2-redis\n');
  const withPassword = await loadConfig({ file: file('pw.json', { store: { passwordFile: redisPassword } }) });
  t.equal(withPassword.ok && withPassword.config.store.password, 'hunter2-redis', 'store.passwordFile');
  const shortClient = await loadConfig({ file: file('short.json', { clients: [{ id: 'a', secretFile: file('short.secret', 'tiny') }] }) });
  t.same(!shortClient.ok && shortClient.problems.map((p) => p.path), ['clients[0].secretFile'], 'a client secret from a file is length-checked too');
  const envSecret = await loadConfig({ env: { MCP_WARDEN_TOKEN_SECRET: 'e'.repeat(32) } });
  t.equal(envSecret.ok && envSecret.config.tokens.secret, 'e'.repeat(32));
});

// A table of bad configs and the exact key paths each must report.
const BAD: [string, unknown, string[]][] = [
  ['unknown top-level key', { lsten: {} }, ['lsten']],
  ['unknown nested key', { sessions: { idleTimout: '1h' } }, ['sessions.idleTimout']],
  ['wrong types', { listen: { port: 'eighty', host: 5 } }, ['listen.host', 'listen.port']],
  ['port out of range', { listen: { port: 70000 } }, ['listen.port']],
  ['bad durations', { sessions: { idleTimeout: 'soon', maxLifetime: '-1h' } }, ['sessions.idleTimeout', 'sessions.maxLifetime']],
  ['bad upstreams', { upstreams: ['ftp://x', 'not a url'] }, ['upstreams[0]', 'upstreams[1]']],
  ['empty upstreams', { upstreams: [] }, ['upstreams']],
  ['bad enum', { store: { type: 'postgres' }, sessions: { onLimit: 'drop' } }, ['store.type', 'sessions.onLimit']],
  ['redis without address', { store: { type: 'redis' } }, ['store']],
  ['legacy paths that collide', { legacySse: { upstream: 'http://127.0.0.1:3001/sse', ssePath: '/mcp', messagePath: '/oauth/x' } }, ['legacySse.ssePath', 'legacySse.messagePath']],
  ['placeholder secrets', { tokens: { secret: 'replace-with-at-least-32-random-bytes-0000' }, clients: [{ id: 'a', secret: 'change-me-to-a-long-random-secret' }, { id: 'b', secret: 'your-secret-goes-here-ok' }] }, ['tokens.secret', 'clients[0].secret', 'clients[1].secret']],
  ['login clients without a provider', { login: { clients: [{ id: 'app', redirectUris: ['http://127.0.0.1/cb'] }] } }, ['login.clients']],
  ['login settings each checked', { clients: [{ id: 'app', secret: 'a-client-secret-0123' }], login: { oidc: { issuer: 'http://idp.example', scopes: ['email'] }, clients: [{ id: 'app', redirectUris: ['http://evil.example/cb', 'https://x.example/cb#frag', 'javascript:alert(1)'] }, { id: 'two', redirectUris: [] }] } },
    ['login.oidc.issuer', 'login.oidc.clientId', 'login.oidc.scopes', 'login.clients[0].id', 'login.clients[0].redirectUris[0]', 'login.clients[0].redirectUris[1]', 'login.clients[0].redirectUris[2]', 'login.clients[1].redirectUris']],
  ['admin key without the admin listener, and too short', { admin: { key: 'short' } }, ['admin.listen', 'admin.key']],
  ['admin key twice', { admin: { listen: '127.0.0.1:9090', key: 'k'.repeat(40), keyFile: '/run/secrets/admin' } }, ['admin.key']],
  ['audit sinks without what they need', { audit: { sinks: ['file', 'redis'] } }, ['audit.key', 'audit.file', 'audit.sinks']],
  ['bad budgets', { budgets: { session: { points: 0, duration: '1m' }, concurrent: 0, tools: [{ tools: ['x'], points: 1 }] }, loopBreaker: { maxRepeats: 1 } }, ['budgets.session.points', 'budgets.concurrent', 'budgets.tools[0].duration', 'loopBreaker.maxRepeats']],
  ['bad tracing settings', { tracing: { otlpEndpoint: 'grpc://collector:4317', sampleRatio: 1.5, acceptParent: 'everyone', serviceName: '' } }, ['tracing.otlpEndpoint', 'tracing.sampleRatio', 'tracing.acceptParent', 'tracing.serviceName']],
  ['registration without a provider', { login: { registration: { dynamic: true } } }, ['login.registration.dynamic']],
  ['bad registration settings', { login: { oidc: { issuer: 'https://idp.example', clientId: 'w' }, registration: { redirectUris: ['javascript:*', 'no scheme', 'https://*'], unusedTtl: '1s', allowPrivateMetadataHosts: 'yes' } }, rateLimits: { register: { points: 0, duration: '1h' } } },
    ['login.registration.redirectUris[1]', 'login.registration.unusedTtl', 'login.registration.allowPrivateMetadataHosts', 'rateLimits.register.points']],
  ['bridge without a legacy upstream', { legacySse: { bridge: true } }, ['legacySse.bridge']],
  ['legacy paths equal', { legacySse: { upstream: 'http://127.0.0.1:3001/sse', ssePath: '/a', messagePath: '/a' } }, ['legacySse.messagePath']],
  ['sidecar relay on the memory store', { replica: { advertiseUrl: 'http://10.0.0.7:8080' } }, ['replica.advertiseUrl']],
  ['bad replica settings', { replica: { id: 'pod a/1', advertiseUrl: 'ftp://x' } }, ['replica.id', 'replica.advertiseUrl']],
  ['redis with two addresses', { store: { type: 'redis', url: 'redis://x:1', cluster: ['a:1'] } }, ['store']],
  ['bad node list', { store: { type: 'redis', cluster: ['nohost', 'h:99999'] } }, ['store.cluster[0]', 'store.cluster[1]']],
  ['short token secret', { tokens: { secret: 'short' } }, ['tokens.secret']],
  ['secret and secretFile', { tokens: { secret: 'y'.repeat(32), secretFile: '/x' } }, ['tokens.secret']],
  ['client without secret', { clients: [{ id: 'a' }] }, ['clients[0]']],
  ['client with two secrets', { clients: [{ id: 'a', secret: 's'.repeat(20), secretHash: 'x' }] }, ['clients[0]', 'clients[0].secretHash']],
  ['duplicate clients', { clients: [{ id: 'a', secret: 's'.repeat(20) }, { id: 'a', secret: 't'.repeat(20) }] }, ['clients[1].id']],
  ['client id shaped like an external identity', { clients: [{ id: 'idp0~alice', secret: 's'.repeat(20) }] }, ['clients[0].id']],
  ['bad client id and key', { clients: [{ id: 'a b', secret: 's'.repeat(20), colour: 'red' }] }, ['clients[0].colour', 'clients[0].id']],
  ['bad rate limit', { rateLimits: { client: { points: 0, duration: 'x', burst: 1 } } }, ['rateLimits.client.burst', 'rateLimits.client.points', 'rateLimits.client.duration']],
  ['bad failed-attempts block', { rateLimits: { failedAttempts: { points: 5, duration: '1m' } } }, ['rateLimits.failedAttempts.block']],
  ['bad trustProxy', { security: { trustProxy: ['10.0.0.0/99', 'x'] } }, ['security.trustProxy[0]', 'security.trustProxy[1]']],
  ['trustProxy true is ambiguous', { security: { trustProxy: true } }, ['security.trustProxy']],
  ['bad origin', { security: { allowedOrigins: ['https://ok.example', 'https://x.example/path'] } }, ['security.allowedOrigins[1]']],
  ['header injection', { upstreamHeaders: { 'X-Key': 'a\r\nX-Evil: 1', 'bad name': 'v' } }, ['upstreamHeaders.X-Key', 'upstreamHeaders.bad name']],
  ['mcpPath reserved', { mcpPath: '/oauth/mcp' }, ['mcpPath']],
  ['tls half given', { tls: { certFile: '/c.pem' } }, ['tls']],
  ['bad identity header', { identityHeaders: { clientId: 'X Client' } }, ['identityHeaders.clientId']],
  ['JWKS over plain http', { tokens: { trustedIssuers: [{ issuer: 'https://idp.example', jwksUri: 'http://idp.example/jwks', audience: 'a', types: ['at+jwt'], scopes: [] }, { issuer: 'https://b.example', jwksUri: 'http://127.0.0.1:9/jwks', audience: 'a', types: ['at+jwt'], scopes: [] }] } }, ['tokens.trustedIssuers[0].jwksUri']],
  ['issuer without explicit types and default scopes', { tokens: { trustedIssuers: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks', audience: 'a' }] } }, ['tokens.trustedIssuers[0].types', 'tokens.trustedIssuers[0].scopes']],
  ['issuer accepting no token type', { tokens: { trustedIssuers: [{ issuer: 'https://b.example', jwksUri: 'https://b.example/jwks', audience: 'a', types: [], scopes: [] }] } }, ['tokens.trustedIssuers[0].types']],
  ['not an object', { store: 'redis' }, ['store']],
  ['prototype keys are unknown keys', JSON.parse('{"__proto__": {"x": 1}, "constructor": 1}'), ['__proto__', 'constructor']],
];

t.test('bad configs report every problem with its key path', async (t) => {
  for (const [name, raw, paths] of BAD) {
    const result = validateConfig(raw);
    t.notOk(result.ok, `${name}: refused`);
    if (result.ok) continue;
    t.same(result.problems.map((p) => p.path).sort(), [...paths].sort(), name);
    for (const p of result.problems) t.ok(p.message.length > 5, `${name}: ${p.path} has a message`);
  }
});

t.test('one run lists problems of several areas at once', async (t) => {
  const result = validateConfig({ listen: { port: -1 }, tokens: { secret: 'short' }, clients: [{ id: 'a' }], bogus: true });
  t.notOk(result.ok);
  if (!result.ok) t.same(result.problems.map((p) => p.path).sort(), ['bogus', 'clients[0]', 'listen.port', 'tokens.secret']);
});

t.test('bad files are problems, not crashes', async (t) => {
  const notJson = await loadConfig({ file: file('bad.json', '{ nope') });
  t.same(!notJson.ok && notJson.problems.map((p) => p.path), ['(file)']);
  const array = await loadConfig({ file: file('array.json', '[1,2]') });
  t.same(!array.ok && array.problems.map((p) => p.path), ['(file)']);
  const absent = await loadConfig({ file: join(dir, 'absent.json') });
  t.match(!absent.ok && absent.problems[0]?.message, /ENOENT/);
});

t.test('proxy.config.example.json holds exactly the schema keys, and is valid but for its placeholder secrets', async (t) => {
  const example = JSON.parse(readFileSync(new URL('../../proxy.config.example.json', import.meta.url), 'utf8')) as { tokens: Record<string, unknown>; clients: Record<string, unknown>[] };
  t.same(example, exampleConfig(), 'regenerate with `npm run docs`');
  const result = validateConfig(example);
  // A proxy started with the published secrets would accept tokens anyone can forge.
  t.same(result.ok ? [] : result.problems.map((p) => p.path), ['tokens.secret', 'clients[0].secret'], 'refused for its placeholders, and only for them');
  if (!result.ok) t.match(result.problems[0]?.message, /placeholder/);
  example.tokens.secret = 'x7Kq2v9Lm4Rt8Wz1Np5Hc3Jd6Fg0Sb2Ye4Ua7Oi9';
  if (example.clients[0]) example.clients[0].secret = 'Qm8Zr2Tx6Vb4Nk1Lp9Hs3';
  const filled = validateConfig(example);
  t.ok(filled.ok, filled.ok ? 'valid once real secrets are filled in' : JSON.stringify(filled.problems));
});

t.test('README configuration reference is generated from the schema', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  t.ok(readme.includes(referenceTable()), 'regenerate with `npm run docs`');
});
