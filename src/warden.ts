import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import type { Problem } from './config/fields.js';
import { parsePolicy } from './policy/config.js';
import { compilePolicy } from './policy/decide.js';
import type { Policy } from './policy/decide.js';
import type { RequestContext, Site } from './context.js';
import { need } from './context.js';
import { createDrain } from './http/drain.js';
import { routeTable } from './http/routes.js';
import type { Feature, RouteTable } from './http/routes.js';
import { adminFeature } from './features/admin.js';
import { healthFeature } from './features/health.js';
import { mcpFeature } from './features/mcp.js';
import { oauthFeature } from './features/oauth.js';
import { createRequestHandler } from './http/server.js';
import type { Outcome } from './http/server.js';
import { logEvent, tapEvents } from './observability/events.js';
import { createLogger } from './observability/logger.js';
import type { Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import type { Metrics } from './observability/metrics.js';
import { createUpstreamAgent, deleteUpstreamSession } from './pipeline/forward.js';
import { buildRefusalHooks, clientIdOf } from './pipeline/index.js';
import type { StageDeps } from './pipeline/index.js';
import { createTokenSigner, createTokenVerifier } from './auth/access-token.js';
import { createClientRegistry } from './auth/clients.js';
import { createExternalIssuers } from './auth/issuers.js';
import { createKeyRing } from './auth/key-ring.js';
import type { KeyRing } from './auth/key-ring.js';
import { createFingerprint } from './session/binding.js';
import { createRelay } from './session/relay.js';
import { createSessionIds, sessionIdSecret } from './session/session-id.js';
import { createStreamGauge } from './session/streams.js';
import { createUpstreamPicker } from './session/upstreams.js';
import { createUpstreamSweeper } from './session/sweep-upstreams.js';
import { createSessionEnder } from './session/end-session.js';
import { createAuditTrail, fileSink, redisSink, stdoutSink } from './audit/trail.js';
import { watchGeneration } from './store/generation.js';
import { createTracing } from './observability/tracing.js';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { createLimiters } from './store/limiters.js';
import { createStore } from './store/create.js';
import type { Store } from './store/types.js';

/** What a policy reload did. */
export type PolicyReload = { readonly ok: true; readonly rules: number } | { readonly ok: false; readonly problems: readonly Problem[] };

/** Options of {@link createWarden} beyond the configuration: test seams. */
export interface WardenOptions {
  readonly logger?: Logger;
  readonly clock?: () => number;
  readonly metrics?: Metrics;
  /** Extra CA certificates (PEM) trusted when fetching client metadata documents (tests; operators set NODE_EXTRA_CA_CERTS). */
  readonly metadataCa?: string;
  /** What SIGHUP does (reload the config file), for the admin API; absent without a config file. */
  readonly reload?: () => Promise<boolean>;
  /** Tracing on, with spans sent here rather than to tracing.otlpEndpoint (tests: an in-memory exporter). */
  readonly spanExporter?: SpanExporter;
}

/** A running proxy. */
export interface Warden {
  /** Public origin, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Public MCP URL. */
  readonly mcpUrl: string;
  /** Base URL of the admin listener (`admin.listen`), or null. */
  readonly adminUrl: string | null;
  readonly server: http.Server;
  readonly logger: Logger;
  readonly store: Store;
  readonly keyRing: KeyRing;
  readonly metrics: Metrics;
  /** Issues an access token for a client, as the token endpoint would (demo, tests). */
  issueToken(clientId: string, scope: string, ttlMs?: number): Promise<string>;
  /**
   * Replaces the policy with a new `policy` section (raw, as in the file), for SIGHUP and the admin
   * API. A bad one keeps the policy in force and logs every problem; requests already past the
   * authorize stage are not touched. A proxy started without a policy needs a restart to get one
   * (its MCP path has no authorize stage at all).
   */
  reloadPolicy(raw: unknown): PolicyReload;
  /** Replaces the config file's clients (SIGHUP; the config was validated by the caller). */
  reloadClients(clients: Config['clients']): void;
  /** One pass of the upstream session sweeper now (it also runs every 30 s): the number ended upstream. */
  sweepUpstreams(): Promise<number>;
  /** Stops accepting, ends GET streams, lets in-flight requests finish within `shutdownGrace`, closes the store. */
  close(): Promise<void>;
}

function siteOf(config: Config, address: AddressInfo, secure: boolean): Site {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = (config.publicUrl ?? `${secure ? 'https' : 'http'}://${host}:${address.port}`).replace(/\/+$/, '');
  return {
    origin,
    resource: `${origin}${config.mcpPath}`,
    // RFC 9728 §3.1: the well-known segment goes between the origin and the resource path.
    resourceMetadataUrl: `${origin}/.well-known/oauth-protected-resource${config.mcpPath}`,
    issuer: (config.tokens.issuer ?? origin).replace(/\/+$/, ''),
    requiredScope: config.tokens.requiredScope,
  };
}

function listen(server: http.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** How long the sessions gauge reuses a count: counting scans the store. */
const SESSION_COUNT_TTL_MS = 30_000;

/**
 * Composition root: builds everything from a validated config, listens, and returns the running
 * proxy. Bad settings throw here, at startup, never per request.
 */
export async function createWarden(config: Config, options: WardenOptions = {}): Promise<Warden> {
  // Security events also feed the metrics that count them (sessions created and ended).
  const log = tapEvents(options.logger ?? createLogger(config.log.level), (event, fields) => metrics.securityEvent(event, fields));
  const clock = options.clock ?? Date.now;
  const stopwatch = (): number => performance.now();
  const { security, sessions, tokens } = config;
  let sessionCount: { value: number; at: number } | null = null;
  let counted: Store | null = null;
  let counting: Promise<number> | null = null;
  const metrics = options.metrics ?? createMetrics(undefined, {
    sessionsActive: async () => {
      if (!counted || (sessionCount && clock() - sessionCount.at <= SESSION_COUNT_TTL_MS)) return sessionCount?.value ?? 0;
      // One count at a time: concurrent scrapes (anyone may ask /metrics) share it instead of each
      // scanning the whole keyspace.
      counting ??= counted.countAllSessions(clock()).then(
        (value) => {
          sessionCount = { value, at: clock() };
          counting = null;
          return value;
        },
        (err: unknown) => {
          counting = null;
          throw err;
        },
      );
      return counting;
    },
  });
  const store = await createStore(config.store, { clock, onError: () => metrics.storeError() });
  counted = store;
  const keyRing = await createKeyRing({
    store,
    algorithm: tokens.algorithm,
    configuredSecret: tokens.secret,
    clock,
    refreshIntervalMs: 30_000,
    onRotated: (kid) => logEvent(log, 'keys.rotated', { kid }),
    onGenerated: (kid) => {
      if (store.kind === 'memory') logEvent(log, 'keys.generated', { kid, reason: 'no tokens.secret: generated per process; tokens end with it' });
    },
  });
  const clients = await createClientRegistry(config.clients, store, clock);
  const limiters = createLimiters(store, config.rateLimits, { onStoreError: () => metrics.storeError() });
  const idSecret = await sessionIdSecret(config, store);
  const sessionIds = createSessionIds(idSecret);
  const generation = await watchGeneration({
    store,
    clock,
    intervalMs: 5_000,
    onLoss: (since) => {
      metrics.storeDataLost();
      logEvent(log, 'store.data_lost', { reason: 'marker_changed', since: new Date(since).toISOString() });
      void restoreShared().catch((err: unknown) => log.error({ err: String(err) }, 'could not put the shared secrets back after the store lost its data'));
    },
  });
  /** What every replica must agree on, put back into an emptied store (the first replica's copy wins; all hold the same). */
  async function restoreShared(): Promise<void> {
    await keyRing.refresh();
    if (config.tokens.secret !== null) return;
    const ours = Buffer.from(idSecret).toString('base64url');
    if ((await store.initSecret('session-id', ours)) !== ours) {
      log.error('a replica that started while the store was empty made a new session-id secret: restart this replica (or set tokens.secret, from which it is derived)');
    }
  }
  const relay = createRelay({ replicaId: config.replica.id, advertiseUrl: config.replica.advertiseUrl, mcpPath: config.mcpPath, secret: idSecret, store, clock });
  const upstreams = createUpstreamPicker(config.upstreams, clock);
  // Metrics name an upstream by host and path (closed: from config; never its credentials).
  const upstreamNames = config.upstreams.map((u) => {
    const url = new URL(u);
    return `${url.host}${url.pathname}`;
  });
  const upstreamLabel = (ctx: RequestContext): string => (ctx.relayTo !== null ? 'relay' : upstreamNames[ctx.upstreamIndex ?? -1] ?? 'legacy');
  const drain = createDrain();
  const agent = createUpstreamAgent(security.upstreamTimeout);

  const serverOptions: http.ServerOptions = {
    headersTimeout: security.headersTimeout,
    requestTimeout: security.requestTimeout,
    maxHeaderSize: security.maxHeaderBytes,
    keepAliveTimeout: 5_000,
    // Node checks the two timeouts above only this often (default 30 s): slowloris needs it tighter.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, security.headersTimeout / 4)),
  };
  const secure = config.tls.certFile !== null && config.tls.keyFile !== null;
  const server = secure
    ? https.createServer({ ...serverOptions, cert: readFileSync(config.tls.certFile ?? ''), key: readFileSync(config.tls.keyFile ?? '') })
    : http.createServer(serverOptions);
  // A proxy that fails to start (a port taken) must not leave a listener, the store or the key refresh running.
  const abandon = async (err: unknown, listening: readonly http.Server[]): Promise<never> => {
    for (const s of listening) {
      s.closeAllConnections();
      await closeServer(s);
    }
    keyRing.close();
    await store.close();
    throw err;
  };
  const address = await listen(server, config.listen.host, config.listen.port).catch((err: unknown) => abandon(err, []));
  const site = siteOf(config, address, secure);

  const external = createExternalIssuers(tokens.trustedIssuers, { clockSkewMs: tokens.clockSkew, clock });
  const verify = createTokenVerifier({ keyRing, issuer: site.issuer, audience: site.resource, clockSkewMs: tokens.clockSkew, clock, external, cacheSize: 10_000 });
  const sign = createTokenSigner({ keyRing, issuer: site.issuer, audience: site.resource, accessTtlMs: tokens.accessTtl, clock });
  let policy: Policy | null = config.policy ? compilePolicy(config.policy) : null;
  const reloadPolicy = (raw: unknown): PolicyReload => {
    const problems: Problem[] = [];
    const parsed = parsePolicy(raw ?? null, 'policy', problems);
    if (parsed === undefined || problems.length > 0) {
      logEvent(log, 'policy.reload_failed', { reason: 'invalid', problems: problems.map((p) => `${p.path}: ${p.message}`) });
      return { ok: false, problems };
    }
    // No policy before and none now: nothing to reload (a SIGHUP for the clients alone).
    if (policy === null && parsed === null) return { ok: true, rules: 0 };
    if (policy === null || parsed === null) {
      const problem = { path: 'policy', message: policy === null ? 'the proxy started without a policy: restart to add one' : 'removing the policy needs a restart' };
      logEvent(log, 'policy.reload_failed', { reason: 'restart', problems: [`${problem.path}: ${problem.message}`] });
      return { ok: false, problems: [problem] };
    }
    policy = compilePolicy(parsed);
    logEvent(log, 'policy.reloaded', { count: parsed.rules.length });
    return { ok: true, rules: parsed.rules.length };
  };
  const audit = config.audit.sinks.length === 0 ? null : createAuditTrail({
    replica: relay.replicaId,
    sinks: config.audit.sinks.map((name) => (name === 'stdout' ? stdoutSink() : name === 'redis' ? redisSink(store, relay.replicaId) : fileSink(config.audit.file ?? '', config.audit.rotateBytes, config.audit.keep))),
    clock,
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: config.audit.checkpointInterval,
    maxQueue: config.audit.maxQueue,
    onLoss: (count, reason, sink) => {
      metrics.auditLost(count);
      logEvent(log, 'audit.failed', { reason, count, limiter: sink ?? undefined });
    },
  });
  if (audit) log.info({ replica: relay.replicaId, kid: audit.kid, publicKey: audit.publicKey.x }, 'audit trail: checkpoints are signed with this Ed25519 key (keep it to verify the trail)');
  const tracing = await createTracing(config, options.spanExporter ? { exporter: options.spanExporter } : {});
  const endUpstreamSession = (upstreamIndex: number, upstreamSessionId: string): void => {
    const url = upstreams.url(upstreamIndex);
    if (url) void deleteUpstreamSession(agent, url, config.upstreamHeaders, upstreamSessionId, security.upstreamTimeout);
  };
  const ender = createSessionEnder({ store, owner: relay.enabled ? relay.replicaId : '', endUpstream: endUpstreamSession, clock, log });
  const deps: StageDeps = {
    tracing,
    ender,
    generation,
    audit,
    onStoreError: () => metrics.storeError(),
    policy: () => need(policy, 'policy'),
    onPolicyDecision: (method, outcome, tool) => metrics.policyDecision(method, outcome, tool),
    store,
    limiters,
    clients,
    verify,
    sessionIds,
    upstreams,
    streams: createStreamGauge(sessions.maxStreams),
    relay,
    fingerprint: createFingerprint(sessions),
    endUpstreamSession,
    onStreamStart: (ctx, end) => {
      metrics.openStreams(1);
      // GET streams never end by themselves; POST streams are in-flight requests and may finish.
      const forget = ctx.req.method === 'GET' ? drain.stream(end) : null;
      // `on`: a response's 'close' comes once (see forward.ts); `once` would keep a wrapper per stream.
      ctx.res.on('close', () => {
        metrics.openStreams(-1);
        forget?.();
      });
    },
    agent,
    clock,
    stopwatch,
  };

  const sweeper = createUpstreamSweeper({
    store,
    owner: relay.enabled ? relay.replicaId : '',
    clock,
    intervalMs: 30_000,
    ender,
    onError: () => metrics.storeError(),
  });

  // The parts this config turns on; each brings its routes (with their stages) and its close().
  const health = healthFeature(config, { store, metrics, log });
  const features: Feature[] = [
    mcpFeature(config, deps, log),
    oauthFeature(config, { store, limiters, clients, verify, ender, clock, site, keyRing, sign, ...(options.metadataCa ? { metadataCa: options.metadataCa } : {}) }),
    health,
  ];
  if (config.admin.listen) {
    const { reload } = options;
    features.push(adminFeature(config, {
      config, store, ender, keyRing, verify, limiters, clock, reload: reload ? async () => ({ ok: await reload() }) : null,
      audit: audit && { replica: relay.replicaId, kid: audit.kid, publicKey: audit.publicKey },
    }));
  }

  const refusals = buildRefusalHooks({ metrics, limiters, upstreams, failedAttemptPoints: config.rateLimits.failedAttempts.points, upstreamLabel });
  const onDone = ({ ctx, error }: Outcome): void => {
    const { timing } = ctx;
    metrics.request(ctx.route, ctx.req.method ?? '', ctx.res.statusCode);
    if (ctx.message) for (const call of ctx.message.calls) metrics.mcpMessage(call.method);
    if (ctx.route === '/oauth/token' && ctx.req.method === 'POST') metrics.tokenRequest(ctx.grantType, error?.code ?? null);
    if (timing.upstreamHead > 0) {
      metrics.upstreamLatency((timing.upstreamHead - timing.forwarded) / 1000, upstreamLabel(ctx));
      metrics.overhead((timing.forwarded - timing.received + timing.clientHead - timing.upstreamHead) / 1000);
    }
    if (log.isLevelEnabled('info')) ctx.log.info({ method: ctx.req.method, route: ctx.route, status: ctx.res.statusCode, ms: Math.round(stopwatch() - timing.received), clientId: clientIdOf(ctx), code: error?.code }, 'request');
  };
  const traceRequests = tracing ? { onStart: (ctx: RequestContext) => tracing.begin(ctx) } : {};
  const finish = tracing ? (outcome: Outcome): void => {
    tracing.end(outcome.ctx, outcome.error);
    onDone(outcome);
  } : onDone;
  const handlerFor = (table: RouteTable) => createRequestHandler({ routes: table, site, log, clock, stopwatch, drain, refusals, onDone: finish, ...traceRequests });
  server.on('request', handlerFor(routeTable(features, 'public')));

  let admin: http.Server | null = null;
  let adminUrl: string | null = null;
  if (config.admin.listen) {
    admin = http.createServer(handlerFor(routeTable(features, 'admin')));
    const a = await listen(admin, config.admin.listen.host, config.admin.listen.port).catch((err: unknown) => abandon(err, [server]));
    adminUrl = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  // Start-up reports what each upstream speaks (bounded by PROBE_TIMEOUT_MS).
  await health.probed;

  // Announced once listening: other replicas may relay to this one from then on.
  await relay.start((err) => {
    metrics.storeError();
    log.warn({ err: String(err) }, 'could not announce this replica to the others');
  }).catch((err: unknown) => abandon(err, admin ? [server, admin] : [server]));

  return {
    url: site.origin,
    mcpUrl: site.resource,
    adminUrl,
    server,
    logger: log,
    store,
    keyRing,
    metrics,
    reloadPolicy,
    sweepUpstreams: () => sweeper.sweep(),
    reloadClients: (list) => {
      clients.replaceConfigured(list);
      logEvent(log, 'clients.reloaded', { count: list.length });
    },
    issueToken: async (clientId, scope, ttlMs) => (await sign({ clientId, scope, grantId: randomBytes(16).toString('base64url') }, ttlMs)).token,
    close: async () => {
      // First, so other replicas stop relaying here and send this replica's clients to re-initialize.
      await relay.close();
      const closing = closeServer(server);
      const cut = await drain.drain(config.shutdownGrace);
      if (cut > 0) log.warn({ cut }, 'requests still running at the end of the shutdown grace were cut');
      server.closeAllConnections();
      for (const feature of [...features].reverse()) await feature.close?.();
      // Idle keep-alive connections to the upstreams would otherwise outlive the proxy.
      await agent.destroy();
      generation.close();
      sweeper.close();
      await audit?.close();
      await tracing?.close();
      await closing;
      if (admin) {
        admin.closeAllConnections();
        await closeServer(admin);
      }
      keyRing.close();
      await store.close();
    },
  };
}
