import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { buildLegacyStages, buildRequestStages, createUpstreamTransport } from '../pipeline/index.js';
import type { StageDeps } from '../pipeline/index.js';
import { handlerOf } from '../http/routes.js';
import type { Feature, RouteTable } from '../http/routes.js';

/**
 * The MCP path (DESIGN §4): one route whose every method runs the request pipeline, and, with
 * `legacySse.upstream`, the legacy HTTP+SSE stream and message endpoints (DESIGN §16). Its
 * upstream transport is closed with it.
 */
export function mcpFeature(config: Config, deps: StageDeps, log: Logger): Feature {
  const upstreamTransport = createUpstreamTransport(config, deps);
  // A Streamable HTTP upstream at a path that reads like a legacy SSE endpoint is most likely one.
  for (const url of config.upstreams) {
    if (/\/sse\/?$/.test(new URL(url).pathname)) log.warn({ upstream: url }, 'this upstream looks like a legacy HTTP+SSE endpoint (path /sse); it is forwarded as Streamable HTTP. For a legacy server set legacySse.upstream instead');
  }
  const mcp = handlerOf(buildRequestStages(config, { ...deps, upstreamTransport }));
  const routes: RouteTable = [{ path: config.mcpPath, template: 'mcp', kind: 'mcp', methods: { POST: mcp, GET: mcp, DELETE: mcp, OPTIONS: mcp } }];
  const legacy = buildLegacyStages(config, deps);
  if (legacy) {
    // Refusals on both are JSON-RPC bodies, as on the MCP path: legacy clients speak JSON-RPC too.
    routes.push({ path: config.legacySse.ssePath, template: 'legacy-sse', kind: 'mcp', methods: { GET: handlerOf(legacy.stream) } });
    routes.push({ path: config.legacySse.messagePath, template: 'legacy-message', kind: 'mcp', methods: { POST: handlerOf(legacy.message) } });
  }
  return { name: 'mcp', routes, close: () => upstreamTransport.close() };
}
