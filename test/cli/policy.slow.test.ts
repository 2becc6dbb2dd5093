/** `mcp-warden policy test`: the built binary prints each message's decision and the rule behind it. */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../fixtures/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'mcpw-policy-cli-'));
const file = join(dir, 'proxy.json');
writeFileSync(file, JSON.stringify({ policy: {
  default: 'allow',
  rules: [
    { id: 'no-deletes', effect: 'deny', tools: ['delete_*'] },
    { id: 'admins-sql', effect: 'allow', when: { groups: ['admins'] }, tools: ['run_sql'] },
    { id: 'sql-admins-only', effect: 'deny', when: { claims: { role: ['guest'] } }, tools: ['run_sql'] },
    { id: 'step-up', effect: 'deny', unlessScopes: ['tools:write'], tools: ['write_*'] },
  ],
} }));
const call = (name: string, id = 1) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name } });

t.test('decisions and rules, exit 0 when all allowed and 1 when anything is refused', async (t) => {
  const denied = await runCli(['policy', 'test', '--config', file, '--client', 'agent-1', '--scope', 'mcp', '--message', JSON.stringify(call('delete_ticket'))]);
  t.equal(denied.status, 1);
  t.equal(denied.stdout, 'deny tools/call "delete_ticket" (rule no-deletes)\n');
  const allowed = await runCli(['policy', 'test', '--config', file, '--client', 'agent-1', '--group', 'admins', '--message', JSON.stringify(call('run_sql'))]);
  t.equal(allowed.status, 0);
  t.equal(allowed.stdout, 'allow tools/call "run_sql" (rule admins-sql)\n');
  const claims = await runCli(['policy', 'test', '--config', file, '--client', 'a', '--group', 'admins', '--claims', '{"role":"guest"}', '--message', JSON.stringify(call('run_sql'))]);
  t.equal(claims.stdout, 'deny tools/call "run_sql" (rule sql-admins-only)\n');
  const batch = await runCli(['policy', 'test', '--config', file, '--client', 'a', '--scope', 'mcp', '--message', JSON.stringify([call('write_file', 1), call('search', 2), { jsonrpc: '2.0', method: 'notifications/initialized' }])]);
  t.equal(batch.stdout, [
    'step-up tools/call "write_file" (rule step-up; allowed with scope tools:write)',
    'allow tools/call "search" (the default)',
    'allow notifications/initialized (the default)',
    '',
  ].join('\n'));
});

t.test('usage errors exit 2; no policy says so', async (t) => {
  const bad = await runCli(['policy', 'test', '--config', file, '--client', 'a', '--message', '{nope']);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /--message: the message is not valid JSON/);
  const claims = await runCli(['policy', 'test', '--config', file, '--client', 'a', '--claims', '[1]', '--message', JSON.stringify(call('x'))]);
  t.equal(claims.status, 2);
  t.match(claims.stderr, /--claims must be a JSON object/);
  const missing = await runCli(['policy', 'test', '--config', file, '--message', JSON.stringify(call('x'))]);
  t.equal(missing.status, 2, '--client is required');
  const none = join(dir, 'none.json');
  writeFileSync(none, '{}');
  const open = await runCli(['policy', 'test', '--config', none, '--client', 'a', '--message', JSON.stringify(call('x'))]);
  t.equal(open.status, 0);
  t.equal(open.stdout, 'no policy configured: every message is allowed\n');
  const invalid = join(dir, 'invalid.json');
  writeFileSync(invalid, JSON.stringify({ policy: { default: 'allow', rules: [{ id: 'x', effect: 'deny', tool: ['y'] }] } }));
  const r = await runCli(['policy', 'test', '--config', invalid, '--client', 'a', '--message', JSON.stringify(call('x'))]);
  t.equal(r.status, 2);
  t.match(r.stderr, /policy\.rules\[0\]\.tool: is not a known key/);
});
