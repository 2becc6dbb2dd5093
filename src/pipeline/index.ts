import type { Config } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { checkTransport } from './check-transport.js';
import { forward } from './forward.js';
import { resolveClientAddress } from './resolve-client-address.js';
import type { ResponseStage, Stage } from './stage.js';

export { runStages } from './stage.js';
export type { Stage, ResponseStage } from './stage.js';

/** Dependencies built once by the composition root. */
export interface StageDeps {
  readonly clock: () => number;
}

// Until sessions exist the client's id goes upstream as is and comes back as is.
function passThroughSession(upstreams: readonly string[]) {
  return function passThroughSession(ctx: RequestContext): void {
    const sid = ctx.req.headers['mcp-session-id'];
    ctx.upstreamSessionId = typeof sid === 'string' ? sid : null;
    ctx.upstream = upstreams[0] ?? null;
  };
}

/** The MCP path's response stages, in order (DESIGN §4 step 9). */
export function buildResponseStages(): ResponseStage[] {
  return [];
}

/** The MCP path's request stages, in DESIGN §4 order. A test pins the names. */
export function buildRequestStages(config: Config, deps: StageDeps): Stage[] {
  const { security } = config;
  return [
    checkTransport({ maxBodyBytes: security.maxBodyBytes, requireSecureTransport: security.requireSecureTransport, allowedOrigins: security.allowedOrigins, trustProxy: security.trustProxy }),
    resolveClientAddress({ trustProxy: security.trustProxy }),
    passThroughSession(config.upstreams),
    forward({
      upstreamTimeoutMs: security.upstreamTimeout,
      maxBodyBytes: security.maxBodyBytes,
      upstreamHeaders: config.upstreamHeaders,
      identityHeaders: config.identityHeaders,
      responseStages: buildResponseStages(),
      clock: deps.clock,
    }),
  ];
}
