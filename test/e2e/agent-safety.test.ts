/**
 * Agent safety (DESIGN §14): budgets shared by replicas on one Redis, per-tool budgets, calls in
 * flight, the loop breaker against an agent-like SDK client loop, failing closed when the store
 * is gone, and the tamper-evident audit trail checked by `audit verify` (tampering in each way
 * it must catch, tested in test/audit/verify.test.ts).
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemoServer } from '../../demo/mcp-server.js';
import type { DemoServer } from '../../demo/mcp-server.js';
import { verifyTrail } from '../../src/audit/verify.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { initialize, rpc } from '../fixtures/probe.js';
import { freePort, startRedis } from '../fixtures/redis.js';
import { startReplicas } from '../fixtures/replicas.js';
import { startWarden } from '../fixtures/warden.js';
import { runCli } from '../fixtures/admin-cli.js';
import type { TestWarden } from '../fixtures/warden.js';

const upstream: DemoServer = await startDemoServer();
t.teardown(() => upstream.close());

const call = (c: Awaited<ReturnType<typeof connectClient>>, name: string, args: Record<string, unknown> = {}) => c.client.callTool({ name, arguments: args });

t.test('a client\'s budget is shared by the replicas on one Redis; over it, a JSON-RPC error names the budget and its reset', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const [a, b] = await startReplicas(t, 2, { url: redis.url }, { upstreams: [upstream.url], budgets: { principal: { points: 3, duration: '1m' } } }) as [TestWarden, TestWarden];
  const token = await a.token('alice');
  const onA = await connectClient(a.mcpUrl, { token });
  t.teardown(onA.close);
  const onB = await connectClient(b.mcpUrl, { token });
  t.teardown(onB.close);
  await call(onA, 'echo', { message: '1' });
  await call(onB, 'echo', { message: '2' });
  await call(onA, 'echo', { message: '3' });
  await t.rejects(call(onB, 'echo', { message: '4' }), /Budget exceeded: tool calls per client \(3 per 1m\); resets in \d+ s/, 'the fourth call, on the other replica');
  t.match(b.logs.events('budget.exceeded'), [{ principal: 'alice', name: 'echo', rule: 'tool calls per client', code: 'BUDGET_EXCEEDED' }]);
  const bob = await connectClient(a.mcpUrl, { token: await a.token('bob') });
  t.teardown(bob.close);
  t.ok(await call(bob, 'echo', { message: 'x' }), 'another client has its own budget');
  await onA.client.listTools();
  t.pass('requests that are not tool calls are not counted');
});

t.test('per-tool budgets, a session\'s total and calls in flight', async (t) => {
  const proxy = await startWarden({ upstreams: [upstream.url], budgets: { tools: [{ tools: ['ad*'], points: 1, duration: '1h' }], sessionTotal: 5, concurrent: 1 } });
  t.teardown(() => proxy.close());
  const c = await connectClient(proxy.mcpUrl, { token: await proxy.token('alice') });
  t.teardown(c.close);
  await call(c, 'add', { a: 1, b: 2 });
  await t.rejects(call(c, 'add', { a: 2, b: 3 }), /Budget exceeded: calls of ad\* \(1 per 1h\)/, 'a dear tool');
  const gated = call(c, 'gated');
  await new Promise((r) => setTimeout(r, 200));
  await t.rejects(call(c, 'echo', { message: 'meanwhile' }), /tool calls in flight per session \(1 per/, 'one call in flight at a time');
  upstream.gate().release();
  await gated;
  await new Promise((r) => setTimeout(r, 100)); // its slot is given back when its response closes
  await call(c, 'echo', { message: 'after' });
  await t.rejects(call(c, 'echo', { message: 'fifth' }), /tool calls over the session's life/, 'the session\'s total (5 calls, refused ones included) is spent');
});

t.test('the loop breaker stops an agent calling the same tool with the same arguments', async (t) => {
  const proxy = await startWarden({ upstreams: [upstream.url], loopBreaker: { maxRepeats: 3, window: '1m', coolDown: '5m' } });
  t.teardown(() => proxy.close());
  const agent = await connectClient(proxy.mcpUrl, { token: await proxy.token('alice') });
  t.teardown(agent.close);
  const outcomes: string[] = [];
  // An agent stuck in a loop: it retries the same call whatever it gets back.
  for (let i = 0; i < 6; i++) outcomes.push(await call(agent, 'echo', { message: 'same' }).then(() => 'ok', (err: Error) => err.message));
  t.same(outcomes.slice(0, 3), ['ok', 'ok', 'ok']);
  t.ok(outcomes.slice(3).every((o) => /repeated more than 3 times in 1m; refused for 5m/.test(o)), 'then refused for the cool-down');
  t.match(proxy.logs.events('loop.broken')[0], { name: 'echo', count: 4, session: /^[A-Za-z0-9_-]+$/, principal: 'alice' }, 'the event names the session, the tool and the count');
  t.ok(await call(agent, 'echo', { message: 'different' }), 'other arguments are another call');
});

t.test('budgets fail closed when the store is gone', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const proxy = await startWarden({ upstreams: [upstream.url], store: { type: 'redis', url: redis.url }, budgets: { session: { points: 100, duration: '1m' } } });
  t.teardown(() => proxy.close());
  const c = await connectClient(proxy.mcpUrl, { token: await proxy.token('alice') });
  t.teardown(c.close);
  await call(c, 'echo', { message: 'before' });
  const seen = upstream.requests.length;
  await redis.stop();
  await t.rejects(call(c, 'echo', { message: 'during' }), /Service temporarily unavailable/, 'no budget check, no call (503)');
  t.equal(upstream.requests.length, seen, 'nothing reached the upstream');
});

t.test('the audit trail: a record per message with the decision, digests not arguments, signed checkpoints; verify passes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mcpw-audit-'));
  const file = join(dir, 'audit.jsonl');
  const proxy = await startWarden({
    upstreams: [upstream.url],
    policy: { default: 'allow', rules: [{ id: 'no-add', effect: 'deny', tools: ['add'] }] },
    audit: { sinks: ['file'], file, key: 'audit-hmac-key-0123456789abcdef-012345', rawArguments: ['whoami'], checkpointEvery: 3 },
  });
  const c = await connectClient(proxy.mcpUrl, { token: await proxy.token('alice') });
  await call(c, 'echo', { message: 'secret-value' });
  await call(c, 'echo', { message: 'secret-value' });
  await t.rejects(call(c, 'add', { a: 1, b: 2 }));
  await call(c, 'whoami');
  await c.close();
  await proxy.close();

  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.notOk(readFileSync(file, 'utf8').includes('secret-value'), 'arguments are never written, only their HMAC');
  const calls = parsed.filter((l) => l.type === 'record' && l.method === 'tools/call');
  t.equal(calls.length, 4);
  t.equal(calls[0]?.args, calls[1]?.args, 'equal arguments have equal digests');
  t.match(calls[2], { name: 'add', decision: 'deny', rule: 'no-add', refusal: 'POLICY_DENIED' });
  t.match(calls[3], { name: 'whoami', arguments: {} }, 'raw arguments only for the tools listed');
  t.match(calls[0], { principal: 'alice', client: 'alice', session: /^[A-Za-z0-9_-]+$/, decision: 'allow', status: 200, ms: /\d/ });
  t.equal(parsed[0]?.type, 'start');
  t.match(parsed.at(-1), { type: 'checkpoint', reason: 'stop' }, 'a clean stop ends with a checkpoint');
  t.ok(parsed.some((l) => l.type === 'checkpoint' && l.reason === 'count'), 'checkpoints every 3 records');
  const report = verifyTrail(lines);
  t.same(report.problems, [], 'audit verify finds nothing wrong');
  t.ok(report.ok);
});

t.test('with failClosed, a trail that cannot be written refuses requests (503) instead of losing records', async (t) => {
  const proxy = await startWarden({
    upstreams: [upstream.url],
    audit: { sinks: ['file'], file: '/nonexistent-dir/audit.jsonl', key: 'audit-hmac-key-0123456789abcdef-012345', failClosed: true },
  });
  t.teardown(() => proxy.close());
  await new Promise((r) => setTimeout(r, 100)); // the start line's write has failed by now
  const seen = upstream.requests.length;
  const refused = await rpc(proxy.mcpUrl, { token: await proxy.token('alice'), body: initialize(1) });
  t.equal(refused.status, 503, 'refused while the trail fails');
  t.ok(Number(refused.headers.get('retry-after')) > 0, 'with Retry-After');
  t.match(refused.json, { error: { message: 'The audit trail cannot be written; try again later' } });
  t.equal(upstream.requests.length, seen, 'nothing went upstream unrecorded');
  t.ok(proxy.logs.events('audit.failed').length > 0, 'the loss is an event');
});

t.test('the Redis sink: one stream per replica, verified with mcp-warden audit verify --replica', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const proxy = await startWarden({ upstreams: [upstream.url], store: { type: 'redis', url: redis.url }, replica: { id: 'pod-a' }, admin: { listen: `127.0.0.1:${await freePort()}` }, audit: { sinks: ['redis'], key: 'audit-hmac-key-0123456789abcdef-012345' } });
  // The checkpoint key, as an operator keeps it: published on the admin listener.
  const published = (await (await fetch(`${proxy.warden.adminUrl ?? ''}/admin/v1/audit-key`)).json()) as { replica: string; kid: string; jwk: { x: string } };
  t.equal(published.replica, 'pod-a');
  const c = await connectClient(proxy.mcpUrl, { token: await proxy.token('alice') });
  await call(c, 'echo', { message: 'to the stream' });
  await c.close();
  await proxy.close();
  const cli = await runCli(['audit', 'verify', '--replica', 'pod-a', '--store', 'redis', '--redis-url', redis.url, `--public-key=${published.jwk.x}`, '--json']);
  t.equal(cli.error, null, cli.stderr);
  const report = JSON.parse(cli.stdout) as { ok: boolean; records: number; replicas: string[] };
  t.match(report, { ok: true, replicas: ['pod-a'] }, 'the stream verifies, ending with the stop checkpoint');
  t.ok(report.records >= 2, 'initialize and the tool call (and what the client sent between) were recorded');
  t.equal(Number(process.exitCode ?? 0), 0);
});
