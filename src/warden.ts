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
import { countsAsFailedAttempt, ERROR_CATALOG } from './errors.js';
import type { WardenError } from './errors.js';
import { createDrain } from './http/drain.js';
import { sendJson } from './http/reply.js';
import { adminRoutes, mainRoutes } from './http/routes.js';
import type { AdminHandlers } from './http/routes.js';
import { adminApi } from './admin/api.js';
import type { RouteTable } from './http/routes.js';
import { createRequestHandler } from './http/server.js';
import type { Handler, Outcome } from './http/server.js';
import { logEvent, tapEvents } from './observability/events.js';
import { createReadiness } from './observability/health.js';
import { probeTransport } from './session/probe-transport.js';
import type { TransportKind } from './session/probe-transport.js';
import { createLogger } from './observability/logger.js';
import type { Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import type { Metrics } from './observability/metrics.js';
import { createUpstreamAgent, deleteUpstreamSession } from './pipeline/forward.js';
import { buildEntryStages, buildLegacyStages, buildRequestStages, createUpstreamTransport, runStages } from './pipeline/index.js';
import type { Stage, StageDeps } from './pipeline/index.js';
import { createTokenSigner, createTokenVerifier } from './auth/access-token.js';
import { createClientRegistry } from './auth/clients.js';
import { createExternalIssuers } from './auth/issuers.js';
import { createKeyRing } from './auth/key-ring.js';
import type { KeyRing } from './auth/key-ring.js';
import { metadataHandlers } from './oauth/metadata.js';
import { authorizeEndpoints } from './oauth/authorize.js';
import { peopleGrants } from './oauth/code-grant.js';
import { createLoginClients } from './login/clients.js';
import { createMetadataDocuments } from './login/metadata-document.js';
import { compileRedirectPolicy } from './login/redirect-uris.js';
import { createRegistrations } from './login/registration.js';
import { registerEndpoint } from './oauth/register.js';
import { createOidcLogin } from './login/oidc.js';
import { revokeEndpoint } from './oauth/revoke.js';
import { tokenEndpoint } from './oauth/token.js';
import { createFingerprint } from './session/binding.js';
import { createRelay } from './session/relay.js';
import { createSessionIds, sessionIdSecret } from './session/session-id.js';
import { createStreamGauge } from './session/streams.js';
import { createUpstreamPicker } from './session/upstreams.js';
import { createUpstreamSweeper } from './session/sweep-upstreams.js';
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
 * Asks each upstream which transport it speaks, logs what it found, and warns where the config
 * says otherwise: a legacy server among `upstreams`, or a Streamable HTTP one as
 * `legacySse.upstream`. `settled` resolves when every probe answered; `found` is what is known so
 * far (for /readyz).
 */
function probeUpstreams(config: Config, log: Logger): { found: () => Readonly<Record<string, TransportKind>>; settled: Promise<void> } {
  const found: Record<string, TransportKind> = {};
  const targets: [string, string, TransportKind][] = config.upstreams.map((url, i) => [`upstreams[${i}]`, url, 'streamable-http']);
  if (config.legacySse.upstream !== null) targets.push(['legacySse.upstream', config.legacySse.upstream, 'legacy-sse']);
  if (!config.health.probeTransports) targets.length = 0;
  const probes = targets.map(([key, url, expected]) =>
    probeTransport(url, config.upstreamHeaders, PROBE_TIMEOUT_MS).then(({ kind, detail }) => {
      found[key] = kind;
      log.info({ upstream: key, transport: kind, detail }, 'upstream transport');
      if (kind === 'legacy-sse' && expected !== 'legacy-sse') {
        log.warn({ upstream: key }, `${key} speaks legacy HTTP+SSE (2024-11-05), not Streamable HTTP: its clients will fail. Set legacySse.upstream to it, with legacySse.bridge: true to serve Streamable HTTP clients (docs/legacy-sse.md)`);
      } else if (kind === 'streamable-http' && expected === 'legacy-sse') {
        log.warn({ upstream: key }, `${key} speaks Streamable HTTP, not legacy HTTP+SSE (${detail}): list it in upstreams instead`);
      }
    }));
  return { found: () => found, settled: Promise.all(probes).then(() => undefined) };
}

// How long a start-up probe may take: an upstream that is up answers at once; one that is not yet
// up is reported as such, and start-up goes on.
const PROBE_TIMEOUT_MS = 2_000;

/** Whether the store answers a ping within `ms`. */
async function answersWithin(store: Store, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([store.ping().then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

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
  const signInOn = config.login.oidc.issuer !== null;
  const { registration } = config.login;
  const redirectPolicy = compileRedirectPolicy(registration.redirectUris);
  const registrations = signInOn && registration.dynamic ? createRegistrations({ store, unusedTtlMs: registration.unusedTtl, ttlMs: registration.ttl, clock }) : null;
  const metadataDocuments = signInOn && registration.metadataDocuments
    ? createMetadataDocuments({ policy: redirectPolicy, store, allowPrivate: registration.allowPrivateMetadataHosts, ...(options.metadataCa ? { ca: options.metadataCa } : {}) })
    : null;
  const loginClients = createLoginClients(config.login.clients, { registrations, metadataDocuments });
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
  const deps: StageDeps = {
    tracing,
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
    endUpstreamSession: (upstreamIndex, upstreamSessionId) => {
      const url = upstreams.url(upstreamIndex);
      if (url) void deleteUpstreamSession(agent, url, config.upstreamHeaders, upstreamSessionId, security.upstreamTimeout);
    },
    onStreamStart: (ctx, end) => {
      metrics.openStreams(1);
      // GET streams never end by themselves; POST streams are in-flight requests and may finish.
      const forget = ctx.req.method === 'GET' ? drain.stream(end) : null;
      ctx.res.once('close', () => {
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
    end: deps.endUpstreamSession,
    onError: () => metrics.storeError(),
  });

  const run = (stages: readonly Stage[]): Handler => (ctx) => runStages(stages, ctx);
  const entry = buildEntryStages(config, deps);
  const legacy = buildLegacyStages(config, deps);
  const upstreamTransport = createUpstreamTransport(config, deps);
  // A Streamable HTTP upstream at a path that reads like a legacy SSE endpoint is most likely one.
  for (const url of config.upstreams) {
    if (/\/sse\/?$/.test(new URL(url).pathname)) log.warn({ upstream: url }, 'this upstream looks like a legacy HTTP+SSE endpoint (path /sse); it is forwarded as Streamable HTTP. For a legacy server set legacySse.upstream instead');
  }
  const scopes = [...new Set([...(tokens.requiredScope ? [tokens.requiredScope] : []), ...config.clients.flatMap((c) => c.scopes)])];
  const signIn = !signInOn ? null : authorizeEndpoints({
    login: config.login, clients: loginClients, oidc: createOidcLogin(config.login.oidc), store, resource: site.resource, origin: site.origin, issuer: site.issuer,
  });
  // Sign-in pages are the proxy's own: the only Origin a browser may send them is the proxy's (the
  // consent form posting back), so a form on another site is refused before anything is read.
  const pageEntry = buildEntryStages({ ...config, security: { ...config.security, allowedOrigins: [site.origin] } }, deps);
  const people = signIn === null ? null : peopleGrants({ clients: loginClients, store, sign, resource: site.resource, refreshTtlMs: tokens.refreshTtl, clock });
  const metadata = metadataHandlers({ site, scopes: [...new Set([...scopes, ...config.login.scopes.filter(() => signIn !== null)])], keyRing, login: signInOn ? { dynamic: registrations !== null, metadataDocuments: metadataDocuments !== null } : null });
  const probed = probeUpstreams(config, log);
  const readiness = createReadiness({ store, upstreams: config.upstreams, checkUpstream: config.health.checkUpstream, transports: probed.found });
  const health = {
    healthz: (ctx: RequestContext) => sendJson(ctx.res, 200, { status: 'ok' }),
    readyz: async (ctx: RequestContext) => {
      const state = await readiness();
      sendJson(ctx.res, state.ready ? 200 : 503, state, state.ready ? { 'cache-control': 'no-store' } : { 'cache-control': 'no-store', 'retry-after': '2' });
    },
  };
  const metricsHandler: Handler = async (ctx) => {
    metrics.storeUp(await answersWithin(store, 1_000));
    const text = await metrics.registry.metrics();
    ctx.res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
    ctx.res.end(text);
  };
  const routes = mainRoutes(
    { mcpPath: config.mcpPath, issuerPath: new URL(site.issuer).pathname.replace(/\/$/, '') },
    {
      mcp: run(buildRequestStages(config, { ...deps, upstreamTransport })),
      token: run([...entry, tokenEndpoint({ people, clients, limiters, store, sign, resource: site.resource, accessTtlMs: tokens.accessTtl, refreshTtlMs: tokens.refreshTtl, issueRefreshTokens: tokens.issueRefreshTokens, clock })]),
      revoke: run([...entry, revokeEndpoint({ clients, limiters, store, verify, refreshTtlMs: tokens.refreshTtl, clock })]),
      authorize: signIn ? run([...pageEntry, signIn.authorize]) : metadata.authorize,
      login: signIn && { callback: run([...pageEntry, signIn.callback]), consent: run([...pageEntry, signIn.consent]) },
      register: registrations && run([...entry, registerEndpoint({ registrations, policy: redirectPolicy, limiters })]),
      authorizationServer: metadata.authorizationServer,
      protectedResource: metadata.protectedResource,
      jwks: metadata.jwks,
      metadataPreflight: metadata.preflight,
      ...health,
      metrics: config.admin.listen ? null : metricsHandler,
      legacy: legacy && { ssePath: config.legacySse.ssePath, messagePath: config.legacySse.messagePath, stream: run(legacy.stream), message: run(legacy.message) },
    },
  );

  // The caller's client id when known: a verified token (MCP path) or an authenticated client (OAuth endpoints).
  const clientIdOf = (ctx: RequestContext): string | null => ctx.identity?.clientId ?? ctx.client?.id ?? null;
  const onRefusal = async (ctx: RequestContext, err: WardenError): Promise<void> => {
    const entry = ERROR_CATALOG[err.code];
    const reason = err.detail.reason;
    const clientId = clientIdOf(ctx);
    const { denial } = err.detail;
    if (denial) logEvent(ctx.log, entry.event, { reason, address: ctx.clientAddress, route: ctx.route, code: err.code, clientId, principal: ctx.identity?.principal, sessionId: ctx.session?.key, method: denial.method, name: denial.name?.slice(0, 256), rule: denial.rule });
    else logEvent(ctx.log, entry.event, { reason, address: ctx.clientAddress, route: ctx.route, code: err.code, clientId });
    metrics.refusal(err.code, reason);
    if (entry.event === 'auth.failed') metrics.authFailure(reason ?? 'unknown');
    const limiter = { RATE_LIMITED: reason ?? 'client', ADDRESS_BLOCKED: 'failed_attempts', SESSION_LIMIT: 'sessions', STREAM_LIMIT: 'streams' }[err.code as string];
    if (limiter) metrics.rateLimited(limiter);
    if (err.code.startsWith('UPSTREAM_') && ctx.upstreamIndex !== null) metrics.upstreamError(upstreamLabel(ctx), reason ?? err.code.slice('UPSTREAM_'.length).toLowerCase());
    // A refused relay says the owner replica is down, not this replica's upstream.
    if (err.code === 'UPSTREAM_UNAVAILABLE' && reason === 'refused' && ctx.upstreamIndex !== null && ctx.relayTo === null) upstreams.markDown(ctx.upstreamIndex);
    if (countsAsFailedAttempt(err) && ctx.clientAddress && (await limiters.failedAttempt(ctx.clientAddress))) {
      // The moment the budget is spent, not only later refusals: the block starts with this request.
      logEvent(ctx.log, 'address.blocked', { reason: 'threshold', count: config.rateLimits.failedAttempts.points, address: ctx.clientAddress, route: ctx.route, clientId });
    }
  };
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
  const handlerFor = (table: RouteTable) => createRequestHandler({ routes: table, site, log, clock, stopwatch, drain, onRefusal, onDone: finish, ...traceRequests });
  server.on('request', handlerFor(routes));

  let admin: http.Server | null = null;
  let adminUrl: string | null = null;
  if (config.admin.listen) {
    const { reload } = options;
    const api = adminApi({
      config, store, keyRing, verify, limiters, clock, reload: reload ? async () => ({ ok: await reload() }) : null,
      audit: audit && { replica: relay.replicaId, kid: audit.kid, publicKey: audit.publicKey },
    });
    // The admin listener's own entry stages: its plain-HTTP listener, no browsers, the caller's
    // address. No address block: an operator must be able to lift one from the address it hit.
    const adminEntry = buildEntryStages({ ...config, security: { ...security, allowedOrigins: [], requireSecureTransport: false } }, deps).filter((s) => s.name !== 'rejectBlocked');
    const guarded = Object.fromEntries(Object.entries(api).map(([name, handler]) => [name, run([...adminEntry, handler])])) as unknown as AdminHandlers;
    admin = http.createServer(handlerFor(adminRoutes({ ...health, metrics: metricsHandler, admin: guarded })));
    const a = await listen(admin, config.admin.listen.host, config.admin.listen.port).catch((err: unknown) => abandon(err, [server]));
    adminUrl = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  // Start-up reports what each upstream speaks (bounded by PROBE_TIMEOUT_MS).
  await probed.settled;

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
      upstreamTransport.close();
      // Idle keep-alive connections to the upstreams would otherwise outlive the proxy.
      await agent.destroy();
      await metadataDocuments?.close();
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
