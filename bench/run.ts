/**
 * `npm run bench`: builds mcp-warden, starts the upstream, a bare http-proxy-3, a bare undici
 * proxy, mcp-warden with the memory store and with a private Redis (each its own process),
 * prepares a session on each,
 * runs the selected measurements with the load generator in yet another process, prints the
 * Markdown report and writes bench/results/latest.{md,json}. Every child is stopped on the way
 * out, Ctrl-C and errors included.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseOptions, USAGE } from './args.js';
import type { BenchOptions } from './args.js';
import { measureFeatures } from './features.js';
import { measureFirstEvent } from './first-event.js';
import { checkGoals } from './goals.js';
import { measureIdleStreams } from './idle-streams.js';
import type { IdleStreamsResult } from './idle-streams.js';
import { machineInfo } from './machine.js';
import { cleanup, installCleanupHandlers, interrupted, onCleanup, startChild } from './processes.js';
import { mainThreadProfile, renderProfile, summariseProfile } from './profile.js';
import { say } from './progress.js';
import { startRedis } from './redis-server.js';
import type { PrivateRedis } from './redis-server.js';
import { renderMarkdown, RESULTS_DIR, writeResults } from './report.js';
import type { BenchResults, WardenFacts } from './results.js';
import { measureSessionScale } from './session-scale.js';
import { byName, startTargets } from './targets.js';
import type { Target, TargetName } from './targets.js';
import { measureThroughput } from './throughput.js';
import type { ThroughputRow } from './throughput.js';
import type { Credentials } from './workload.js';

async function build(): Promise<void> {
  say('npm run build');
  const child = startChild('build', 'npm', ['run', '--silent', 'build']);
  if ((await child.exited) !== 0) throw new Error(`npm run build failed:\n${child.output()}`);
}

async function prepareAll(targets: readonly Target[]): Promise<Map<TargetName, Credentials>> {
  const credentials = new Map<TargetName, Credentials>();
  for (const target of targets) {
    credentials.set(target.name, await target.prepare(target.mcpUrl));
    say(`prepared ${target.name}: session ${credentials.get(target.name)?.sessionId.slice(0, 8)}..., token ${credentials.get(target.name)?.token ? 'yes' : 'no'}`);
  }
  return credentials;
}

/** What mcp-warden supports today, and the caveats the report must state. */
async function facts(credentials: ReadonlyMap<TargetName, Credentials>, redis: PrivateRedis): Promise<{ warden: WardenFacts; notes: string[] }> {
  const notes: string[] = [];
  const auth = credentials.get('warden-memory')?.token ? 'bearer' : 'none';
  if (auth === 'none') {
    notes.push('mcp-warden answered 404 on POST /oauth/token, so its requests carried no bearer token (auth: none); the prepare step fetches one as soon as the endpoint exists.');
  }
  // Our own connection is one client; anything beyond is mcp-warden's.
  const redisConnected = (await redis.info('clients', 'connected_clients')) > 1;
  if (!redisConnected) notes.push('mcp-warden --store redis did not connect to Redis during this run: the Redis store is not wired in yet, so warden-redis measures the same code path as warden-memory.');
  notes.push(`The load generator, the upstream and the target share this machine's ${os.cpus().length} cores (and whatever else runs on it: see the load average below), so req/s and latency reflect the whole chain's CPU; CPU µs/req isolates each target's own cost.`);
  notes.push('mcp-warden ran from dist/ through its CLI (`node dist/cli/index.js serve --log-level warn --config <generated>`), with every rate limit raised to 1e9 per minute.');
  return { warden: { auth, redisConnected }, notes };
}

/**
 * Stops the profiled children gracefully so V8 writes their profiles, then summarises them. Per
 * request figures only when throughput and features were the only traffic, so the request count
 * is complete.
 */
async function writeProfiles(targets: readonly Target[], dir: string, options: BenchOptions, runs: readonly (readonly ThroughputRow[] | null)[]): Promise<void> {
  const sections: string[] = [
    '# CPU profiles of the proxies (bare http-proxy-3 and mcp-warden)',
    '',
    `\`npm run bench -- ${process.argv.slice(2).join(' ')}\` on ${new Date().toISOString()}; ${os.cpus().length} cores, 1-minute load average ${os.loadavg()[0]?.toFixed(2)}.`,
    '',
  ];
  const onlyThroughput = [...options.only].every((m) => m === 'throughput' || m === 'features');
  for (const target of targets.filter((t) => t.name !== 'direct')) {
    await target.child.stop(10_000);
    const file = await mainThreadProfile(path.join(dir, target.name));
    const rows = runs.map((run) => run?.find((r) => r.target === target.name));
    const answered = rows.reduce((sum, row) => sum + (row ? row.warmupRequests + row.rounds.reduce((s, r) => s + r.requests, 0) : 0), 0);
    const requests = onlyThroughput ? answered : null;
    if (file) sections.push(renderProfile(target.name, await summariseProfile(file), requests));
  }
  const out = path.join(RESULTS_DIR, 'profile.md');
  await writeFile(out, sections.join('\n'));
  say(`profile summary written to ${path.relative(process.cwd(), out)} (raw profiles in ${path.relative(process.cwd(), dir)})`);
}

async function main(options: BenchOptions): Promise<void> {
  if (!options.skipBuild) await build();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'mcp-warden-bench-'));
  onCleanup(() => rm(scratch, { recursive: true, force: true }));
  const profileDir = options.profile ? path.join(RESULTS_DIR, 'tmp', `profile-${Date.now()}`) : null;
  if (profileDir) await mkdir(profileDir, { recursive: true });

  const redis = await startRedis();
  const rig = await startTargets({ dir: scratch, redis, profileDir, features: options.only.has('features') });
  const { targets } = rig;
  say(`targets up: ${[...targets, ...rig.features].map((t) => `${t.name} ${t.mcpUrl}`).join(', ')}; redis-server ${redis.url} (pid ${redis.child.pid})`);
  const credentials = await prepareAll([...targets, ...rig.features]);
  const { warden, notes } = await facts(credentials, redis);
  const wardenMemory = byName(targets, 'warden-memory');
  const direct = byName(targets, 'direct');

  const throughput = options.only.has('throughput')
    ? await measureThroughput(targets, credentials, { durationSeconds: options.duration, connections: options.connections, rounds: options.rounds, warmupSeconds: options.warmup })
    : null;

  // Closed-loop load at 10 connections is partly latency-bound: a proxy that adds a network hop
  // (Redis) waits more per request and shows lower req/s even with CPU to spare. Enough
  // connections to keep every proxy busy measure what each can carry.
  const throughputSaturated = options.only.has('throughput') && options.saturate > 0
    ? await measureThroughput(targets, credentials, { durationSeconds: options.duration, connections: options.saturate, rounds: options.rounds, warmupSeconds: 0 })
    : null;

  // Each feature on Redis + clientCache, in rounds with bare-undici and the same store without it.
  const features = options.only.has('features')
    ? await measureFeatures(targets, rig.features, credentials, { durationSeconds: options.duration, connections: options.connections, rounds: options.rounds, warmupSeconds: options.warmup })
    : null;

  const firstEvent = options.only.has('sse') ? await measureFirstEvent(targets, credentials, options.sseSamples, () => redis.client.ping()) : null;

  const scale =
    options.only.has('sessions') || options.only.has('memory')
      ? await measureSessionScale(
          { target: byName(targets, 'bare'), credentials: credentials.get('bare') ?? null },
          {
            measureLatency: options.only.has('sessions'),
            durationSeconds: options.sessionDuration,
            connections: options.connections,
            warmupSeconds: options.warmup,
            startWarden: (store) => rig.startRedisWarden(store),
          },
        )
      : null;

  // Last: holding thousands of sockets is the roughest thing the bench does to a process.
  let idleStreams: IdleStreamsResult[] | null = null;
  if (options.only.has('streams')) {
    idleStreams = [];
    // The references show the floor under the target: Node's HTTP server alone (the upstream,
    // one socket per stream) and the two bare proxies (a client and an upstream socket each).
    // The upstream goes first: once it has held the proxies' streams, its heap has room to spare
    // and its RSS would barely grow.
    for (const target of [direct, wardenMemory, byName(targets, 'bare'), byName(targets, 'bare-undici')]) {
      const upstreamPid = target === direct ? null : direct.child.pid;
      idleStreams.push(await measureIdleStreams(target, upstreamPid, credentials.get(target.name) ?? null, options.streams));
    }
  }

  if (profileDir) await writeProfiles([...targets, ...rig.features], profileDir, options, [throughput, throughputSaturated, features]);

  const results: BenchResults = {
    machine: machineInfo(redis.version),
    options: { ...options, only: [...options.only] },
    throughput,
    throughputSaturated,
    features,
    firstEvent: firstEvent?.rows ?? null,
    firstEventRedisPingMs: firstEvent?.redisPingMs ?? null,
    idleStreams,
    sessionScale: scale && options.only.has('sessions') ? scale.levels : null,
    sessionReference: scale?.reference ?? null,
    redisMemory: scale && options.only.has('memory') ? scale.memory : null,
    warden,
    notes,
  };
  const goals = checkGoals(results);
  const markdown = renderMarkdown(results, goals);
  process.stdout.write(`\n${markdown}`);
  const written = await writeResults(results, goals, markdown);
  say(`written: ${written.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
}

installCleanupHandlers();
let options: BenchOptions | 'help';
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (options === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
try {
  await main(options);
} catch (err) {
  if (!interrupted()) process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
