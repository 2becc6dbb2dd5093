import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import type { Site } from './context.js';
import { createRequestHandler } from './http/server.js';
import type { Outcome, Route } from './http/server.js';
import { sendJson } from './http/reply.js';
import { createLogger } from './observability/logger.js';
import type { Logger } from './observability/logger.js';
import { logEvent } from './observability/events.js';
import { ERROR_CATALOG } from './errors.js';
import { buildRequestStages, runStages } from './pipeline/index.js';

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
    issuer: config.tokens.issuer ?? origin,
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
  const { security } = config;
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

  const requestStages = buildRequestStages(config, { clock });
  const mcp = (ctx: Parameters<typeof runStages>[1]) => runStages(requestStages, ctx);
  const routes: (Route & { path: string })[] = [
    { path: config.mcpPath, template: 'mcp', kind: 'mcp', methods: { POST: mcp, GET: mcp, DELETE: mcp, OPTIONS: mcp } },
    { path: '/healthz', template: '/healthz', kind: 'plain', methods: { GET: (ctx) => sendJson(ctx.res, 200, { status: 'ok' }) } },
    { path: '/readyz', template: '/readyz', kind: 'plain', methods: { GET: (ctx) => sendJson(ctx.res, 200, { status: 'ready' }) } },
  ];
  const onDone = ({ ctx, error }: Outcome): void => {
    ctx.log.info({ method: ctx.req.method, route: ctx.route, status: ctx.res.statusCode, ms: clock() - ctx.startedAt, clientId: ctx.identity?.clientId ?? null, code: error?.code ?? undefined }, 'request');
  };
  server.on('request', createRequestHandler({
    routes,
    site,
    log,
    clock,
    onRefusal: (ctx, err) => logEvent(ctx.log, ERROR_CATALOG[err.code].event, { reason: err.detail.reason, address: ctx.clientAddress, route: ctx.route, code: err.code, clientId: ctx.identity?.clientId ?? null }),
    onDone,
  }));

  return {
    url: site.origin,
    mcpUrl: site.resource,
    server,
    logger: log,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
