/**
 * The supported LTS line the image runs (Node 24), beside the Node 20 that runs the rest of the
 * suite here: the official `node` build from the npm registry runs the built CLI, which serves a
 * real SDK client an MCP session, refuses a bad token, and stops cleanly on SIGTERM. A smoke test,
 * not the whole suite on a second Node (that would double CI time); the image's line is the one
 * users run.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemoServer } from '../../demo/mcp-server.js';
import { CLI_BIN, spawnWarden } from '../fixtures/cli.js';
import { connectClient } from '../fixtures/mcp-client.js';

const LTS = '24';
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** `node@<major>` from the npm registry (its platform package holds the official binary), cached across runs. */
function installNode(major: string): string {
  const dir = join(tmpdir(), `mcpw-node-${major}`);
  const bin = join(dir, 'node_modules', '.bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'node-lts', private: true }));
  const r = spawnSync('npm', ['install', `node@${major}`, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`npm install node@${major}: ${r.stderr}`);
  return bin;
}

const node = installNode(LTS);

t.test(`Node ${LTS}: the CLI runs`, async (t) => {
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' });
  t.match(version.stdout, new RegExp(`^v${LTS}\\.`), `the official Node ${LTS} build`);
  const cli = spawnSync(node, [CLI_BIN, '--version'], { encoding: 'utf8' });
  t.equal(cli.stdout.trim(), pkg.version);
});

t.test(`Node ${LTS}: a proxy serves an SDK client, refuses a bad token, and stops on SIGTERM`, async (t) => {
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const proxy = await spawnWarden({ upstreams: [upstream.url] }, 20_000, node);
  t.teardown(() => proxy.kill());
  t.equal(proxy.lines().find((l) => l.msg === 'mcp-warden listening')?.node, spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim(), `running on Node ${LTS}`);

  const { client, transport, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  const result = await client.callTool({ name: 'echo', arguments: { message: 'on the LTS' } });
  t.match(JSON.stringify(result.content), 'on the LTS', 'a tool call through the proxy');
  const sessionId = transport.sessionId ?? '';
  t.ok(sessionId.length > 20 && upstream.sessionIds().length === 1, 'a session on both sides');
  t.notOk(upstream.sessionIds().includes(sessionId), 'the client holds the proxy\'s session id, not the upstream\'s');
  await close();

  const refused = await fetch(proxy.mcpUrl, { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
  t.equal(refused.status, 401);

  proxy.child.kill('SIGTERM');
  t.same(await proxy.exited, { code: 0, signal: null }, 'SIGTERM: a clean exit');
});
