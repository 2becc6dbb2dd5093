import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import type { RequestContext, Site } from './context.js';
import { ERROR_CATALOG } from './errors.js';
import type { WardenError } from './errors.js';
import { createRequestHandler } from './http/server.js';
import type { Handler, Outcome, Route } from './http/server.js';
import { sendJson } from './http/reply.js';
import { createLogger } from './observability/logger.js';
import type { Logger } from './observability/logger.js';
import { logEvent } from './observability/events.js';
import { buildEntryStages, buildRequestStages, runStages } from './pipeline/index.js';
import type { Stage } from './pipeline/index.js';
import { createTokenSigner, createTokenVerifier } from './auth/access-token.js';
import { createClientRegistry } from './auth/clients.js';
import { createExternalIssuers } from './auth/issuers.js';
import { createKeyRing } from './auth/key-ring.js';
import type { KeyRing } from './auth/key-ring.js';
import { metadataHandlers } from './oauth/metadata.js';
import { revokeEndpoint } from './oauth/revoke.js';
import { tokenEndpoint } from './oauth/token.js';
import { createFingerprint } from './session/binding.js';
import { createSessionIds, sessionIdSecret } from './session/session-id.js';
import { createStreamGauge } from './session/streams.js';
import { createUpstreamPicker } from './session/upstreams.js';
import { createLimiters } from './store/limiters.js';
import { createStore } from './store/store.js';
import type { Store } from './store/store.js';

/** Options of {@link createWarden} beyond the configuration: test seams. */
export interface WardenOptions {
  readonly logger?: Logger;
  readonly clock?: () => number;
}

/** A running proxy. */
export interface Warden {
  /** Public origin, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Public MCP URL. */
  readonly mcpUrl: string;
  readonly server: http.Server;
  readonly logger: Logger;
  readonly store: Store;
  readonly keyRing: KeyRing;
  /** Issues an access token for a client, as the token endpoint would (CLI `init`, tests). */
  issueToken(clientId: string, scope: string, ttlMs?: number): Promise<string>;
  /** Stops accepting, lets in-flight requests finish within `shutdownGrace`, then closes everything. */
  close(): Promise<void>;
}

function siteOf(config: Config, address: AddressInfo, secure: boolean): Site {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = (config.publicUrl ?? `${secure ? 'https' : 'http'}://${host}:${address.port}`).replace(/\/+$/, '');
  const resource = `${origin}${config.mcpPath}`;
  return {
    origin,
    resource,
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

/**
 * Composition root: builds everything from a validated config, listens, and returns the running
 * proxy. Bad settings throw here, at startup, never per request.
 */
export async function createWarden(config: Config, options: WardenOptions = {}): Promise<Warden> {
  const log = options.logger ?? createLogger(config.log.level);
  const clock = options.clock ?? Date.now;
  const { security, sessions, tokens } = config;
  const store = await createStore(config.store, { clock, onError: (err) => log.debug({ err }, 'store error') });
  const keyRing = await createKeyRing({
    store,
    algorithm: tokens.algorithm,
    configuredSecret: tokens.secret,
    clock,
    refreshIntervalMs: 30_000,
    onGenerated: (kid) => {
      if (store.kind === 'memory') logEvent(log, 'keys.generated', { kid, reason: 'no tokens.secret: generated per process; tokens end with it' });
    },
  });
  const clients = await createClientRegistry(config.clients, store, clock);
  const limiters = createLimiters(store, config.rateLimits);
  const sessionIds = createSessionIds(await sessionIdSecret(config, store));
  const upstreams = createUpstreamPicker(config.upstreams, clock);

  const serverOptions: http.ServerOptions = {
    headersTimeout: security.headersTimeout,
    requestTimeout: security.requestTimeout,
    maxHeaderSize: security.maxHeaderBytes,
    keepAliveTimeout: 5_000,
  };
  const secure = config.tls.certFile !== null && config.tls.keyFile !== null;
  const server = secure
    ? https.createServer({ ...serverOptions, cert: readFileSync(config.tls.certFile ?? ''), key: readFileSync(config.tls.keyFile ?? '') })
    : http.createServer(serverOptions);
  const address = await listen(server, config.listen.host, config.listen.port);
  const site = siteOf(config, address, secure);

  const external = createExternalIssuers(tokens.trustedIssuers, { clockSkewMs: tokens.clockSkew, clock });
  const verify = createTokenVerifier({ keyRing, issuer: site.issuer, audience: site.resource, clockSkewMs: tokens.clockSkew, clock, external, cacheSize: 10_000 });
  const sign = createTokenSigner({ keyRing, issuer: site.issuer, audience: site.resource, accessTtlMs: tokens.accessTtl, clock });
  const streams = createStreamGauge(sessions.maxStreams);
  const endUpstreamSession = (ctx: RequestContext, upstreamSessionId: string): void => {
    if (!ctx.upstream) return;
    fetch(ctx.upstream, { method: 'DELETE', headers: { ...config.upstreamHeaders, 'mcp-session-id': upstreamSessionId } }).catch(() => {});
  };
  const deps = { store, limiters, clients, verify, sessionIds, upstreams, streams, fingerprint: createFingerprint(sessions), endUpstreamSession, clock };

  const requestStages = buildRequestStages(config, deps);
  const entry = buildEntryStages(config, deps);
  const run = (stages: readonly Stage[]): Handler => (ctx) => runStages(stages, ctx);
  const oauth = (handler: Stage): Handler => run([...entry, handler]);
  const scopes = [...new Set([...(tokens.requiredScope ? [tokens.requiredScope] : []), ...config.clients.flatMap((c) => c.scopes)])];
  const metadata = metadataHandlers({ site, scopes, keyRing });
  const mcp = run(requestStages);
  const token = oauth(tokenEndpoint({ clients, limiters, store, sign, resource: site.resource, accessTtlMs: tokens.accessTtl, refreshTtlMs: tokens.refreshTtl, issueRefreshTokens: tokens.issueRefreshTokens, clock }));
  const revoke = oauth(revokeEndpoint({ clients, limiters, store, verify, refreshTtlMs: tokens.refreshTtl, clock }));
  const prmPath = `/.well-known/oauth-protected-resource${config.mcpPath}`;
  const issuerPath = new URL(site.issuer).pathname.replace(/\/$/, '');

  const routes: (Route & { path: string })[] = [
    { path: config.mcpPath, template: 'mcp', kind: 'mcp', methods: { POST: mcp, GET: mcp, DELETE: mcp, OPTIONS: mcp } },
    { path: '/oauth/token', template: '/oauth/token', kind: 'oauth', methods: { POST: token, OPTIONS: token } },
    { path: '/oauth/revoke', template: '/oauth/revoke', kind: 'oauth', methods: { POST: revoke, OPTIONS: revoke } },
    { path: '/oauth/authorize', template: '/oauth/authorize', kind: 'oauth', methods: { GET: metadata.authorize, POST: metadata.authorize } },
    { path: '/.well-known/oauth-authorization-server', template: '/.well-known/oauth-authorization-server', kind: 'plain', methods: { GET: metadata.authorizationServer } },
    { path: '/.well-known/oauth-protected-resource', template: '/.well-known/oauth-protected-resource', kind: 'plain', methods: { GET: metadata.protectedResource } },
    { path: prmPath, template: '/.well-known/oauth-protected-resource{mcpPath}', kind: 'plain', methods: { GET: metadata.protectedResource } },
    { path: '/.well-known/jwks.json', template: '/.well-known/jwks.json', kind: 'plain', methods: { GET: metadata.jwks } },
    { path: '/healthz', template: '/healthz', kind: 'plain', methods: { GET: (ctx) => sendJson(ctx.res, 200, { status: 'ok' }) } },
    {
      path: '/readyz',
      template: '/readyz',
      kind: 'plain',
      methods: {
        GET: async (ctx) => {
          const ready = await store.ping().then(() => true, () => false);
          sendJson(ctx.res, ready ? 200 : 503, { status: ready ? 'ready' : 'store unreachable' }, ready ? {} : { 'retry-after': '2' });
        },
      },
    },
  ];
  if (issuerPath) routes.push({ path: `/.well-known/oauth-authorization-server${issuerPath}`, template: '/.well-known/oauth-authorization-server{issuerPath}', kind: 'plain', methods: { GET: metadata.authorizationServer } });

  const onRefusal = async (ctx: RequestContext, err: WardenError): Promise<void> => {
    const entry = ERROR_CATALOG[err.code];
    logEvent(ctx.log, entry.event, { reason: err.detail.reason, address: ctx.clientAddress, route: ctx.route, code: err.code, clientId: ctx.identity?.clientId ?? null });
    if (err.code === 'UPSTREAM_UNAVAILABLE' && err.detail.reason === 'refused' && ctx.upstreamIndex !== null) upstreams.markDown(ctx.upstreamIndex);
    if (entry.failedAttempt && ctx.clientAddress) await limiters.failedAttempt(ctx.clientAddress);
  };
  const onDone = ({ ctx, error }: Outcome): void => {
    ctx.log.info({ method: ctx.req.method, route: ctx.route, status: ctx.res.statusCode, ms: clock() - ctx.startedAt, clientId: ctx.identity?.clientId ?? null, code: error?.code }, 'request');
  };
  server.on('request', createRequestHandler({ routes, site, log, clock, onRefusal, onDone }));

  return {
    url: site.origin,
    mcpUrl: site.resource,
    server,
    logger: log,
    store,
    keyRing,
    issueToken: async (clientId, scope, ttlMs) => (await sign({ clientId, scope, grantId: randomBytes(16).toString('base64url') }, ttlMs)).token,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      keyRing.close();
      await store.close();
    },
  };
}
