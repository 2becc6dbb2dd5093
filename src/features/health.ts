import type { Config } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { sendJson } from '../http/reply.js';
import type { Feature, RouteTable } from '../http/routes.js';
import type { Handler } from '../http/server.js';
import { createReadiness } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { probeTransport } from '../session/probe-transport.js';
import type { TransportKind } from '../session/probe-transport.js';
import type { Store } from '../store/types.js';

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
 * Health and metrics: `/healthz`, `/readyz` (store, upstreams, what each upstream speaks) and
 * `/metrics`, unauthenticated and outside every limit. With `admin.listen` the metrics move to the
 * admin listener; health is on both. Start-up waits for `probed` (each probe is bounded).
 */
export function healthFeature(config: Config, deps: { readonly store: Store; readonly metrics: Metrics; readonly log: Logger }): Feature & { readonly probed: Promise<void> } {
  const { store, metrics } = deps;
  const probes = probeUpstreams(config, deps.log);
  const readiness = createReadiness({ store, upstreams: config.upstreams, checkUpstream: config.health.checkUpstream, transports: probes.found });
  const healthz: Handler = (ctx: RequestContext) => sendJson(ctx.res, 200, { status: 'ok' });
  const readyz: Handler = async (ctx: RequestContext) => {
    const state = await readiness();
    sendJson(ctx.res, state.ready ? 200 : 503, state, state.ready ? { 'cache-control': 'no-store' } : { 'cache-control': 'no-store', 'retry-after': '2' });
  };
  const metricsHandler: Handler = async (ctx) => {
    metrics.storeUp(await answersWithin(store, 1_000));
    const text = await metrics.registry.metrics();
    ctx.res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
    ctx.res.end(text);
  };
  const health: RouteTable = [
    { path: '/healthz', template: '/healthz', kind: 'plain', methods: { GET: healthz } },
    { path: '/readyz', template: '/readyz', kind: 'plain', methods: { GET: readyz } },
  ];
  const metricsRoute: RouteTable = [{ path: '/metrics', template: '/metrics', kind: 'plain', methods: { GET: metricsHandler } }];
  return {
    name: 'health',
    routes: config.admin.listen ? health : [...health, ...metricsRoute],
    adminRoutes: [...health, ...metricsRoute],
    probed: probes.settled,
  };
}
