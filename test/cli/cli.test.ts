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
