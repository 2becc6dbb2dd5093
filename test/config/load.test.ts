import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { parseDuration } from '../../src/config/duration.js';
import { configJsonSchema, exampleConfig, referenceTable } from '../../src/config/reference.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';

// ajv-formats is CommonJS with a `default` export: what the import gives differs by loader.
const addFormats = (formats as unknown as { default?: typeof formats.default }).default ?? (formats as unknown as typeof formats.default);

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
  ['bad health settings', { health: { probeTransports: 'yes', checkUpstream: 1 } }, ['health.probeTransports', 'health.checkUpstream']],
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

t.test('the configuration reference (docs/configuration.md) is generated from the schema', async (t) => {
  const readme = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  t.ok(readme.includes(referenceTable()), 'regenerate with `npm run docs`');
});

t.test('mcp-warden.schema.json: generated from the schema; editors validate the example with it and catch typos', async (t) => {
  const published = JSON.parse(readFileSync(new URL('../../mcp-warden.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  t.same(published, configJsonSchema(), 'regenerate with `npm run docs`');
  // ajv (the validator editors and CI linters use) compiles it in strict mode: no keyword it does not know.
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(published);
  const example = JSON.parse(readFileSync(new URL('../../proxy.config.example.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  t.ok(validate(example), `the example validates: ${ajv.errorsText(validate.errors)}`);
  t.equal(example.$schema, './mcp-warden.schema.json', 'the example points editors at the schema');
  const typo = { ...example, sesions: {}, listen: { host: '127.0.0.1', prot: 1 }, tracing: { sampleRatio: 2 }, sessions: { idleTimeout: 'soon' } };
  t.notOk(validate(typo), 'typos and bad values are flagged');
  const flagged = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`).join('\n');
  for (const hit of ['additionalProperty":"sesions', 'additionalProperty":"prot', '/tracing/sampleRatio maximum', '/sessions/idleTimeout']) t.match(flagged, hit, `schema flags ${hit}`);
});

t.test('"$schema" in a file is accepted and ignored; anything but a string there is a problem', async (t) => {
  const ok = await loadConfig({ file: file('with-schema.json', { $schema: './mcp-warden.schema.json', listen: { port: 9123 } }) });
  t.ok(ok.ok && ok.config.listen.port === 9123);
  t.notOk(ok.ok && '$schema' in ok.config, 'not part of the config');
  const bad = validateConfig({ $schema: 42 });
  t.same(!bad.ok && bad.problems.map((p) => p.path), ['$schema']);
});

t.test('YAML config files: the same config as JSON, YAML 1.2 semantics, clear errors', async (t) => {
  const yaml = [
    '# a comment',
    'listen:',
    '  port: 9124',
    'upstreams:',
    '  - http://127.0.0.1:3000/mcp',
    'sessions:',
    '  idleTimeout: 10m',
    'health:',
    '  checkUpstream: true',
    'mcpPath: /mcp',
  ].join('\n');
  const fromYaml = await loadConfig({ file: file('proxy.yaml', yaml) });
  const fromJson = await loadConfig({ file: file('proxy.json', { listen: { port: 9124 }, upstreams: ['http://127.0.0.1:3000/mcp'], sessions: { idleTimeout: '10m' }, health: { checkUpstream: true }, mcpPath: '/mcp' }) });
  t.ok(fromYaml.ok && fromJson.ok);
  if (fromYaml.ok && fromJson.ok) t.same(fromYaml.config, fromJson.config, '.yaml and .json give the same config');
  // YAML 1.1 would read `no` as false: 1.2 keeps it a string, which the schema then refuses clearly.
  const norway = await loadConfig({ file: file('bool.yml', 'health:\n  checkUpstream: no\n') });
  t.same(!norway.ok && norway.problems.map((p) => `${p.path}: ${p.message}`), ['health.checkUpstream: must be true or false']);
  const broken = await loadConfig({ file: file('broken.yaml', 'listen:\n  port: [1,\n') });
  t.match(!broken.ok && broken.problems[0], { path: '(file)', message: /broken\.yaml is not valid YAML/ });
  const dup = await loadConfig({ file: file('dup.yaml', 'listen:\n  port: 1\nlisten:\n  port: 2\n') });
  t.match(!dup.ok && dup.problems[0]?.message, /not valid YAML/, 'a key given twice is an error, not a silent override');
  const list = await loadConfig({ file: file('list.yaml', '- a\n- b\n') });
  t.match(!list.ok && list.problems[0]?.message, /must hold a YAML mapping/);
  const typo = await loadConfig({ file: file('typo.yaml', 'listen:\n  prot: 1\n') });
  t.same(!typo.ok && typo.problems.map((p) => `${p.path}: ${p.message}`), ['listen.prot: is not a known key; did you mean "port"?']);
});

t.test('did you mean: unknown keys name the nearest known key; unknown MCP_WARDEN_* variables are problems too', async (t) => {
  const result = validateConfig({ sesions: {}, sessions: { maxConcurent: 3 }, rateLimits: { client: { points: 1, duraton: '1m' } }, zzzzzz: 1 });
  t.same(!result.ok && result.problems.map((p) => `${p.path}: ${p.message}`).sort(), [
    'rateLimits.client.duration: must be a duration such as "90s", "15m", "1h", "30d" or milliseconds',
    'rateLimits.client.duraton: is not a known key; did you mean "duration"?',
    'sesions: is not a known key; did you mean "sessions"?',
    'sessions.maxConcurent: is not a known key; did you mean "maxConcurrent"?',
    'zzzzzz: is not a known key',
  ].sort(), 'nothing suggested when nothing is near');
  const env = await loadConfig({ env: { MCP_WARDEN_PROT: '1', MCP_WARDEN_UPSTREAM: 'http://x/mcp', MCP_WARDEN_TOTALLY_MADE_UP_THING: 'x', MCP_WARDEN_PORT: '9000', OTHER_PROGRAM_SETTING: 'x' } });
  t.same(!env.ok && env.problems.map((p) => `${p.path}: ${p.message}`).sort(), [
    '(env) MCP_WARDEN_PROT: is not a variable mcp-warden reads; did you mean "MCP_WARDEN_PORT"?',
    '(env) MCP_WARDEN_TOTALLY_MADE_UP_THING: is not a variable mcp-warden reads',
    '(env) MCP_WARDEN_UPSTREAM: is not a variable mcp-warden reads; did you mean "MCP_WARDEN_UPSTREAMS"?',
  ].sort(), 'other programs\' variables are not ours to judge');
  const fine = await loadConfig({ env: { MCP_WARDEN_CONFIG: '', MCP_WARDEN_ADMIN_URL: 'http://127.0.0.1:9090', MCP_WARDEN_DOCTOR_SECRET: 's', MCP_WARDEN_TRACING_SAMPLE_RATIO: '0.25' } });
  t.ok(fine.ok, fine.ok ? 'the variables the CLI reads outside the schema are known' : JSON.stringify(fine.problems));
  t.equal(fine.ok && fine.config.tracing.sampleRatio, 0.25, 'a ratio from the environment');
});
