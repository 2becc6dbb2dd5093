import t from 'tap';
import { spawn } from 'node:child_process';
import { startDemoServer } from '../../demo/mcp-server.js';
import { runDoctor } from '../../src/doctor.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';
import { freePort } from '../fixtures/redis.js';

const bin = new URL('../../dist/cli/index.js', import.meta.url).pathname;

function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

t.test('doctor walks a healthy deployment end to end', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url], health: { probeTransports: true } });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const results = await runDoctor({ url: proxy.mcpUrl, clientId: 'alice', clientSecret: TEST_CLIENTS.alice });
  t.same(results.map((r) => r.ok), [true, true, true, true, true, true, true, true], JSON.stringify(results, null, 1));
  t.equal(results[3]?.detail, 'upstreams[0]: streamable-http', 'it says which transport the proxy found the upstream speaking');
  t.match(results[5]?.detail, /echo/);
  t.equal(results[7]?.detail, 'memory', 'it says where state lives and whether it survives a restart');
  t.equal(upstream.sessionIds().length, 0, 'the session it made is gone');

  const cli = await runCli(['doctor', '--url', proxy.mcpUrl, '--client', 'alice', '--secret', TEST_CLIENTS.alice]);
  t.equal(cli.code, 0, cli.out);
});

t.test('doctor reports the first failing step with expected and got', async (t) => {
  const upstream = await startDemoServer();
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const badSecret = await runDoctor({ url: proxy.mcpUrl, clientId: 'alice', clientSecret: 'wrong-secret' });
  t.same(badSecret.map((r) => r.ok), [true, true, false], 'stops at the token step');
  t.match(badSecret[2], { expected: '200 with an access_token', got: /^HTTP 401 .*invalid_client/ });

  const badUrl = await runDoctor({ url: `${proxy.url}/not-mcp`, clientId: 'alice', clientSecret: TEST_CLIENTS.alice });
  t.same(badUrl.map((r) => r.ok), [false]);
  t.match(badUrl[0], { expected: '401', got: /^HTTP 404/ });

  // Nothing listens there: the cause, not fetch's bare "fetch failed".
  const closed = await freePort();
  const refused = await runDoctor({ url: `http://127.0.0.1:${closed}/mcp`, clientId: 'alice', clientSecret: TEST_CLIENTS.alice });
  t.match(refused[0], { ok: false, got: new RegExp(`^fetch failed: .*ECONNREFUSED 127\\.0\\.0\\.1:${closed}`) });
  const unknownHost = await runDoctor({ url: 'http://no-such-host.invalid/mcp', clientId: 'alice', clientSecret: TEST_CLIENTS.alice });
  t.match(unknownHost[0]?.got, /ENOTFOUND no-such-host\.invalid/);

  const cli = await runCli(['doctor', '--url', proxy.mcpUrl, '--client', 'alice', '--secret', 'nope']);
  t.equal(cli.code, 1);
  t.match(cli.out, /FAIL token/);
  t.notMatch(cli.out, /nope/, 'the secret is not printed');
});
