import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = new URL('../../dist/cli/index.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mcpw-cli-'));

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('config check: exit 0 when valid, 2 with every problem when not', async (t) => {
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ upstreams: ['http://127.0.0.1:3000/mcp'] }));
  const ok = run(['config', 'check', '--config', good]);
  t.equal(ok.status, 0);
  t.match(ok.stdout, /configuration is valid/);

  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ listen: { port: 'x' }, sesions: {}, tokens: { accessTtl: 'soon' } }));
  const r = run(['config', 'check', '--config', bad]);
  t.equal(r.status, 2);
  t.match(r.stderr, /3 problems/);
  for (const path of ['listen.port', 'sesions', 'tokens.accessTtl']) t.match(r.stderr, new RegExp(`^  ${path.replace('.', '\\.')}: `, 'm'));

  const env = run(['config', 'check'], { MCP_WARDEN_PORT: 'nope' });
  t.equal(env.status, 2, 'env values are validated too');
  t.match(env.stderr, /listen\.port/);
});

t.test('usage errors exit 2; --help shows examples on each command', async (t) => {
  t.equal(run(['frobnicate', 'x']).status, 2);
  t.equal(run(['--no-such-flag']).status, 2);
  // The error comes first, with a guess, and no page of help before it.
  const flag = run(['--prot', '9000']);
  t.equal(flag.status, 2);
  t.match(flag.stderr, /^mcp-warden: unknown argument: prot\n"prot": did you mean --port\?\nSee "mcp-warden --help"/);
  t.notMatch(flag.stderr, /Examples:|Configuration:/, 'no help page');
  const command = run(['sevre']);
  t.match(command.stderr, /^mcp-warden: unknown argument: sevre\n"sevre": did you mean serve\?/);
  const sub = run(['config', 'chek']);
  t.equal(sub.status, 2);
  t.match(sub.stderr, /^mcp-warden: Did you mean check\?/);
  const dashed = run(['--upstream-timout', '5s']);
  t.match(dashed.stderr, /^mcp-warden: unknown argument: upstream-timout\n/, 'named once, as typed');
  const variable = run(['config', 'check', '--upstream', 'http://127.0.0.1:3000/mcp'], { MCP_WARDEN_PROT: '9000' });
  t.equal(variable.status, 2, 'an unknown MCP_WARDEN_ variable is a configuration problem');
  t.match(variable.stderr, /\(env\) MCP_WARDEN_PROT: is not a variable mcp-warden reads; did you mean "MCP_WARDEN_PORT"\?/);
  const help = run(['--help']);
  t.equal(help.status, 0);
  t.match(help.stdout, /Examples:/);
  t.match(help.stdout, /--upstream/);
  const checkHelp = run(['config', 'check', '--help']);
  t.equal(checkHelp.status, 0);
  t.match(checkHelp.stdout, /Examples:/);
});

t.test('serve refuses a bad config with exit 2 before listening', async (t) => {
  const r = run(['--port', '99999']);
  t.equal(r.status, 2);
  t.match(r.stderr, /listen\.port/);
});

t.test('config print: the effective config from file, env and flags, secrets redacted', async (t) => {
  const file = join(dir, 'print.yaml');
  writeFileSync(file, ['upstreams: [http://127.0.0.1:3000/mcp]', 'upstreamHeaders:', '  X-Api-Key: upstream-api-key-value', 'clients:', '  - id: robot', '    secret: robot-client-secret-123', 'sessions:', '  idleTimeout: 2m'].join('\n'));
  const r = run(['config', 'print', '--config', file, '--port', '9555'], { MCP_WARDEN_TOKEN_SECRET: 'token-signing-secret-0123456789abcdef', MCP_WARDEN_LOG_LEVEL: 'debug' });
  t.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout) as { listen: { port: number }; log: { level: string }; sessions: { idleTimeout: number }; tokens: { secret: string }; clients: { id: string; secret: string }[]; upstreamHeaders: Record<string, string> };
  t.equal(printed.listen.port, 9555, 'flag');
  t.equal(printed.log.level, 'debug', 'environment');
  t.equal(printed.sessions.idleTimeout, 120_000, 'file (YAML), durations in ms');
  t.equal(printed.tokens.secret, '<redacted>');
  t.same(printed.clients.map((c) => [c.id, c.secret]), [['robot', '<redacted>']]);
  t.same(printed.upstreamHeaders, { 'X-Api-Key': '<redacted>' }, 'upstream header values can be API keys');
  for (const secret of ['token-signing-secret', 'robot-client-secret', 'upstream-api-key-value']) t.notMatch(r.stdout, secret, `${secret} never printed`);
  const redis = run(['config', 'print', '--upstream', 'http://127.0.0.1:3000/mcp', '--store', 'redis', '--redis-url', 'redis://:hunter2-password@127.0.0.1:6379/0']);
  t.notMatch(redis.stdout, 'hunter2');
  t.match(redis.stdout, 'redis://:redacted@127.0.0.1:6379/0');
  const schema = run(['config', 'schema']);
  t.equal(schema.status, 0);
  t.match(JSON.parse(schema.stdout), { title: 'mcp-warden configuration', type: 'object' });
});
