/**
 * The systems under test, each in its own process: the upstream itself ("direct"), a bare
 * http-proxy-3 in front of it (the floor), a bare proxy on undici's dispatcher (the floor
 * of mcp-warden's own forwarding engine, for reference), and mcp-warden started through its real
 * CLI with the memory store and with a private Redis.
 */
import path from 'node:path';
import { FEATURES } from './features.js';
import type { FeatureTargetName } from './features.js';
import { startOtlpSink } from './otlp-sink.js';
import { initializeOnly, tokenThenInitialize } from './prepare.js';
import type { Prepare } from './prepare.js';
import { freePort, HOST } from './ports.js';
import { onCleanup, startChild, startScript, waitHealthy } from './processes.js';
import type { Child } from './processes.js';
import type { PrivateRedis } from './redis-server.js';
import { writeWardenConfig } from './warden-config.js';
import type { BenchClient } from './warden-config.js';

/** In round-1 order; the feature targets (features.ts) are measured in rounds of their own. */
export type TargetName = 'direct' | 'bare' | 'bare-undici' | 'warden-memory' | 'warden-redis' | 'warden-redis-cached' | FeatureTargetName;

export interface Target {
  readonly name: TargetName;
  readonly mcpUrl: string;
  /** The process answering this target's requests (its RSS is read, it may be profiled). */
  readonly child: Child;
  readonly store: 'memory' | 'redis' | null;
  readonly prepare: Prepare;
  /** Redis commands processed so far, for the target backed by the private Redis. */
  readonly storeCommands: (() => Promise<number>) | null;
}

export interface RigOptions {
  /** Scratch directory for the generated config. */
  readonly dir: string;
  readonly redis: PrivateRedis;
  /** When set, the mcp-warden and bare-proxy children write a V8 CPU profile there on exit. */
  readonly profileDir: string | null;
  /** Start one more Redis + clientCache mcp-warden per feature (`--only features`). */
  readonly features: boolean;
}

// One directory per target and V8's default file names: a process with a tsx loader thread writes
// one profile per thread, and a fixed name would let the threads overwrite each other.
function profileArgs(name: TargetName, profileDir: string | null): string[] {
  return profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, name)}`] : [];
}

function startWarden(name: TargetName, port: number, upstream: string, config: string, storeArgs: string[], profileDir: string | null, env: Record<string, string> = {}): Child {
  return startChild(name, process.execPath, [
    ...profileArgs(name, profileDir), 'dist/cli/index.js', 'serve',
    '--host', HOST, '--port', String(port), '--upstream', upstream, '--config', config, '--log-level', 'warn', ...storeArgs,
  ], { env: { ...process.env, ...env } });
}

/** The started targets, and a way to start more mcp-warden processes like `warden-redis`. */
export interface Rig {
  readonly targets: Target[];
  /** One per feature of features.ts, when asked for; not in `targets`, so no other measurement sees them. */
  readonly features: Target[];
  /** Another Redis-backed mcp-warden, same upstream, config and flags, on its own Redis. */
  startRedisWarden(redis: PrivateRedis): Promise<Target>;
}

/** Starts every target and resolves once each answers its health check, in round order. */
export async function startTargets(options: RigOptions): Promise<Rig> {
  const [upstreamPort, barePort, undiciPort, memoryPort, redisPort, cachedPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const origin = (port: number): string => `http://${HOST}:${port}`;
  const upstreamOrigin = origin(upstreamPort);
  const upstream = startScript('upstream', 'upstream.ts', [String(upstreamPort)], { leash: true });
  await waitHealthy(`${upstreamOrigin}/healthz`, upstream);

  const { file, client } = await writeWardenConfig(options.dir);
  const bare = startScript('bare', 'bare-proxy.ts', [String(barePort), upstreamOrigin], { leash: true, nodeArgs: profileArgs('bare', options.profileDir) });
  const bareUndici = startScript('bare-undici', 'bare-undici.ts', [String(undiciPort), upstreamOrigin], { leash: true, nodeArgs: profileArgs('bare-undici', options.profileDir) });
  const features = options.features ? await startFeatureWardens(options, `${upstreamOrigin}/mcp`) : [];
  const memory = startWarden('warden-memory', memoryPort, `${upstreamOrigin}/mcp`, file, [], options.profileDir);
  const redis = startWarden('warden-redis', redisPort, `${upstreamOrigin}/mcp`, file, ['--store', 'redis', '--redis-url', options.redis.url], options.profileDir);
  // Issue 21's design: the same Redis, its own keys, store.clientCache on.
  const cached = startWarden('warden-redis-cached', cachedPort, `${upstreamOrigin}/mcp`, file, ['--store', 'redis', '--redis-url', options.redis.url], options.profileDir, {
    MCP_WARDEN_REDIS_CLIENT_CACHE: 'true', MCP_WARDEN_REDIS_KEY_PREFIX: 'mcpw-cached:',
  });
  await Promise.all([
    waitHealthy(`${origin(cachedPort)}/healthz`, cached),
    waitHealthy(`${origin(barePort)}/healthz`, bare),
    waitHealthy(`${origin(undiciPort)}/healthz`, bareUndici),
    waitHealthy(`${origin(memoryPort)}/healthz`, memory),
    waitHealthy(`${origin(redisPort)}/healthz`, redis),
  ]);

  const reference = (name: TargetName, child: Child, port: number): Target => ({
    name, child, mcpUrl: `${origin(port)}/mcp`, store: null, prepare: initializeOnly(), storeCommands: null,
  });
  const warden = (name: TargetName, child: Child, port: number, store: PrivateRedis | null): Target => ({
    name, child, mcpUrl: `${origin(port)}/mcp`, store: store ? 'redis' : 'memory',
    prepare: tokenThenInitialize(origin(port), client),
    // INFO itself is one command; the caller's delta includes it, which is noise at these counts.
    storeCommands: store ? () => store.info('stats', 'total_commands_processed') : null,
  });
  const targets = [
    reference('direct', upstream, upstreamPort),
    reference('bare', bare, barePort),
    reference('bare-undici', bareUndici, undiciPort),
    warden('warden-memory', memory, memoryPort, null),
    warden('warden-redis', redis, redisPort, options.redis),
    warden('warden-redis-cached', cached, cachedPort, options.redis),
  ];
  return {
    targets,
    features: await Promise.all(features.map(async ({ name, child, port, client }) => {
      await waitHealthy(`${origin(port)}/healthz`, child);
      return { ...warden(name, child, port, options.redis), prepare: tokenThenInitialize(origin(port), client) };
    })),
    async startRedisWarden(store) {
      const port = await freePort();
      const child = startWarden('warden-redis', port, `${upstreamOrigin}/mcp`, file, ['--store', 'redis', '--redis-url', store.url], null);
      await waitHealthy(`${origin(port)}/healthz`, child);
      return warden('warden-redis', child, port, store);
    },
  };
}

/**
 * Starts one mcp-warden per feature, each like warden-redis-cached (the private Redis,
 * store.clientCache on, its own key prefix) with the feature's section in its config. The
 * tracing one exports to a receiver in this process that drops the spans.
 */
async function startFeatureWardens(options: RigOptions, upstream: string): Promise<{ name: TargetName; child: Child; port: number; client: BenchClient }[]> {
  const otlp = await startOtlpSink();
  onCleanup(() => otlp.close());
  return Promise.all(FEATURES.map(async (feature) => {
    const [port, { file, client }] = await Promise.all([
      freePort(),
      writeWardenConfig(options.dir, feature.config({ scratch: options.dir, otlpUrl: otlp.url }), `${feature.target}.config.json`),
    ]);
    const child = startWarden(feature.target, port, upstream, file, ['--store', 'redis', '--redis-url', options.redis.url], options.profileDir, {
      MCP_WARDEN_REDIS_CLIENT_CACHE: 'true', MCP_WARDEN_REDIS_KEY_PREFIX: feature.keyPrefix,
    });
    return { name: feature.target, child, port, client };
  }));
}

/** The target with this name; throws if it was not started (a bug in the caller). */
export function byName(targets: readonly Target[], name: TargetName): Target {
  const target = targets.find((t) => t.name === name);
  if (!target) throw new Error(`target ${name} not started`);
  return target;
}
