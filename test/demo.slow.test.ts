/**
 * `npm run demo` does what it prints: it is started as a person would start it, and each thing it
 * tells them to try is tried: the printed token with the printed client command, the refusal
 * without it, the sign-in link followed through the development provider and consent, the printed
 * code exchange, and Ctrl-C (SIGTERM here) stopping everything.
 */
import t from 'tap';
import { spawn, execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Browser } from './fixtures/oidc.js';
import { freePort } from './fixtures/redis.js';
import { send } from './fixtures/session-http.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
const run = promisify(execFile);

/** The demo's temporary secret directories that exist now. */
const demoDirs = (): string[] => readdirSync(tmpdir()).filter((d) => d.startsWith('mcp-warden-demo-'));

t.test('npm run demo: everything it prints works', async (t) => {
  const port = await freePort();
  const before = demoDirs();
  const demo = spawn(TSX, ['demo/run.ts'], { cwd: ROOT, env: { ...process.env, MCP_WARDEN_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  demo.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  demo.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (demo.exitCode === null) demo.kill('SIGKILL');
  });
  const until = Date.now() + 60_000;
  while (!out.includes('Ctrl-C stops the demo.') && Date.now() < until && demo.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  t.match(out, /Ctrl-C stops the demo\./, 'it started and printed its instructions');

  const mcpUrl = `http://127.0.0.1:${port}/mcp`;
  const tryIt = new RegExp(`npx tsx demo/client\\.ts ${mcpUrl} (\\S+)`).exec(out);
  t.ok(tryIt, 'a command with a token');
  const withToken = await run(TSX, ['demo/client.ts', mcpUrl, tryIt?.[1] ?? ''], { cwd: ROOT });
  t.match(withToken.stdout, /tools: .*echo/, 'the printed command works with the printed token');
  await t.rejects(run(TSX, ['demo/client.ts', mcpUrl], { cwd: ROOT }), /401/, 'and without the token the proxy refuses');

  const link = /Open in a browser: (\S+)/.exec(out)?.[1] ?? '';
  const back = await new Browser().signIn(link, 'alice', 'http://127.0.0.1:9/');
  const code = new URL(back.location ?? 'http://x/').searchParams.get('code');
  t.ok(code, 'the sign-in link ends at the app with a code');
  const verifier = /code_verifier=(\S+)/.exec(out)?.[1] ?? '';
  const exchange = await fetch(`http://127.0.0.1:${port}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'inspector', redirect_uri: 'http://127.0.0.1:9/callback', code_verifier: verifier, code: code ?? '' }),
  });
  t.equal(exchange.status, 200, 'the printed code exchange gives tokens');
  const person = (await exchange.json()) as { access_token: string };
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
  t.equal((await send(mcpUrl, { token: person.access_token, body: init })).status, 200, 'and the person\'s token works on the MCP path');
  t.match(out, new RegExp(`npx mcp-remote ${mcpUrl}`), 'the mcp-remote line names the proxy');
  const metadata = (await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
  t.equal(metadata.registration_endpoint, `http://127.0.0.1:${port}/oauth/register`, 'clients that register themselves can (mcp-remote, the Inspector)');

  const made = demoDirs().filter((d) => !before.includes(d));
  t.equal(made.length, 1, 'its secrets live in one temporary directory while it runs');
  demo.kill('SIGTERM');
  t.equal(await exited, 0, 'Ctrl-C (SIGTERM) stops it cleanly');
  t.same(demoDirs().filter((d) => made.includes(d)), [], 'and removes its temporary secrets');
});

t.test('npm run demo on a port that is taken says which variable to set, without a stack trace', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const { port } = taken.address() as AddressInfo;
  const before = demoDirs();
  const result = await run(TSX, ['demo/run.ts'], { cwd: ROOT, env: { ...process.env, MCP_WARDEN_PORT: String(port) }, timeout: 60_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
  );
  t.equal(result.code, 1);
  t.match(result.stderr, `port ${port} is taken by another program`);
  t.match(result.stderr, `MCP_WARDEN_PORT=${port + 1} npm run demo`);
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace');
  t.same(demoDirs().filter((d) => !before.includes(d)), [], 'nothing left behind');
});
