/**
 * `npx tsx bench/policy.ts [duration] [rounds]`: the cost of a 50-rule policy. Two mcp-warden
 * processes (memory store) in front of the bench upstream, one without a policy and one with 50
 * rules that a tools/call of `echo` must all be checked against (default deny, the allowing rule
 * last), measured in interleaved, rotated rounds like the throughput measurement. Prints req/s,
 * p50/p99 and CPU µs/req per target and the policy-on / policy-off ratio. Run `npm run build` first.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cpuSeconds } from './cpu-time.js';
import { measureLoad } from './measure.js';
import type { LoadResult } from './measure.js';
import { HOST, freePort } from './ports.js';
import { tokenThenInitialize } from './prepare.js';
import { cleanup, installCleanupHandlers, startChild, startScript, waitHealthy } from './processes.js';
import type { Child } from './processes.js';
import { median } from './stats.js';
import { rotate } from './throughput.js';
import { writeWardenConfig } from './warden-config.js';
import { postHeaders, TOOLS_CALL } from './workload.js';
import { policyConfig } from './feature-configs.js';
import { fiftyRules } from './policy-rules.js';

/**
 * Two mcp-warden processes (memory store) in front of the bench upstream, the second with `extra`
 * merged into its config (the first may be another build: `offCli`), measured with tools/call of `echo` in interleaved, rotated rounds like
 * the throughput measurement. Prints req/s, p50/p99 and CPU µs/req per target and on / off.
 */
export async function compareConfigs(opts: { off: string; on: string; extra: Record<string, unknown>; target: number; durationSeconds: number; rounds: number; offCli?: string; shared?: (target: 'off' | 'on') => Record<string, unknown> }): Promise<void> {
  installCleanupHandlers();
  const { durationSeconds, rounds } = opts;
  const connections = 10;
  const dir = await mkdtemp(path.join(tmpdir(), 'mcpw-bench-compare-'));
  const [upstreamPort, offPort, onPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const upstreamOrigin = `http://${HOST}:${upstreamPort}`;
  const upstream = startScript('upstream', 'upstream.ts', [String(upstreamPort)], { leash: true });
  await waitHealthy(`${upstreamOrigin}/healthz`, upstream);
  const { file, client } = await writeWardenConfig(dir);
  const withExtra = path.join(dir, 'on.config.json');
  const withShared = path.join(dir, 'off.config.json');
  const base = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  // `shared` goes into both configs (a store both use, each with its own part of it).
  await writeFile(withExtra, JSON.stringify({ ...base, ...opts.shared?.('on'), ...opts.extra }), { mode: 0o600 });
  await writeFile(withShared, JSON.stringify({ ...base, ...opts.shared?.('off') }), { mode: 0o600 });
  const start = (name: string, port: number, config: string, cli = 'dist/cli/index.js'): Child =>
    startChild(name, process.execPath, [cli, 'serve', '--host', HOST, '--port', String(port), '--upstream', `${upstreamOrigin}/mcp`, '--config', config, '--log-level', 'warn']);
  const targets = [
    { name: opts.off, port: offPort, child: start('off', offPort, withShared, opts.offCli) },
    { name: opts.on, port: onPort, child: start('on', onPort, withExtra) },
  ];
  await Promise.all(targets.map((t) => waitHealthy(`http://${HOST}:${t.port}/healthz`, t.child)));
  const credentials = new Map<string, Awaited<ReturnType<ReturnType<typeof tokenThenInitialize>>>>();
  for (const t of targets) credentials.set(t.name, await tokenThenInitialize(`http://${HOST}:${t.port}`, client)(`http://${HOST}:${t.port}/mcp`));
  const spec = (t: (typeof targets)[number], seconds: number) => ({ url: `http://${HOST}:${t.port}/mcp`, method: 'POST' as const, headers: postHeaders(credentials.get(t.name) ?? null), body: TOOLS_CALL, connections, durationSeconds: seconds });
  for (const t of targets) await measureLoad(spec(t, 1));
  const results = new Map<string, { load: LoadResult[]; cpu: number[] }>(targets.map((t) => [t.name, { load: [], cpu: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const t of rotate(targets, round)) {
      const before = await cpuSeconds(t.child.pid);
      const load = await measureLoad(spec(t, durationSeconds));
      const row = results.get(t.name);
      row?.load.push(load);
      row?.cpu.push((((await cpuSeconds(t.child.pid)) - before) * 1e6) / Math.max(1, load.requests));
      process.stderr.write(`round ${round + 1}/${rounds} ${t.name}: ${Math.round(load.requestsPerSecond)} req/s (${load.non2xx + load.errors} failures)\n`);
    }
  }
  const lines = ['| target | req/s (median) | per round | p50 ms | p99 ms | CPU µs/req | failures |', '|---|---|---|---|---|---|---|'];
  const rps = new Map<string, number>();
  for (const t of targets) {
    const r = results.get(t.name) ?? { load: [], cpu: [] };
    const value = median(r.load.map((l) => l.requestsPerSecond));
    rps.set(t.name, value);
    lines.push(`| ${t.name} | ${Math.round(value)} | ${r.load.map((l) => Math.round(l.requestsPerSecond)).join(', ')} | ${median(r.load.map((l) => l.p50Ms)).toFixed(2)} | ${median(r.load.map((l) => l.p99Ms)).toFixed(2)} | ${Math.round(median(r.cpu))} | ${r.load.reduce((s, l) => s + l.errors + l.non2xx, 0)} |`);
  }
  const [off, on] = targets.map((t) => rps.get(t.name) ?? 0);
  lines.push('', `${opts.on} / ${opts.off}: ${((on ?? 0) / Math.max(1, off ?? 0)).toFixed(3)}x (target >= ${opts.target.toFixed(2)}x); ${rounds} rounds of ${durationSeconds} s, ${connections} connections, ${String((opts.shared?.('on').store as { type?: string } | undefined)?.type ?? 'memory')} store`);
  process.stdout.write(`${lines.join('\n')}\n`);
  await cleanup();
  await rm(dir, { recursive: true, force: true });
}


const isMain = process.argv[1]?.endsWith('policy.ts') ?? false;
if (isMain) {
  await compareConfigs({ off: 'policy-off', on: `policy-on (${fiftyRules().length} rules)`, extra: policyConfig(), target: 0.9, durationSeconds: Number(process.argv[2] ?? 3), rounds: Number(process.argv[3] ?? 4) });
}
