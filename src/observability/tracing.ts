import type { Context, Span, TextMapPropagator, Tracer } from '@opentelemetry/api';
import { defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import type { Config } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { isTrustedPeer } from '../http/headers.js';
import type { Stage } from '../pipeline/stage.js';
import { VERSION } from '../version.js';

/**
 * OpenTelemetry tracing (DESIGN §9): a server span per request, child spans for the pipeline's
 * costly steps, `traceparent` sent upstream. Built only when configured: with tracing off there is
 * no tracing object at all, no stage is wrapped, and the SDK is never loaded.
 */
export interface Tracing {
  /** Starts the request span (the router, as the request arrives). */
  begin(ctx: RequestContext): void;
  /** Wraps a stage in a child span when it is one of the traced steps; returns others unchanged. */
  stage(stage: Stage): Stage;
  /** Ends the request span with what was answered. */
  end(ctx: RequestContext, refusal: WardenError | null): void;
  /** Sends what is buffered and stops. */
  close(): Promise<void>;
}

export interface TracingOptions {
  /** Spans go here instead of OTLP (tests: an in-memory exporter), exported as each ends. */
  readonly exporter?: SpanExporter;
}

/** The stages that get a span, by function name: authentication, the store, policy, the upstream. */
const TRACED: Readonly<Record<string, { readonly name: string; readonly kind: SpanKind }>> = {
  authenticate: { name: 'authenticate', kind: SpanKind.INTERNAL },
  loadState: { name: 'store.load', kind: SpanKind.CLIENT },
  authorize: { name: 'policy.authorize', kind: SpanKind.INTERNAL },
  enforceBudgets: { name: 'budgets', kind: SpanKind.CLIENT },
  forward: { name: 'upstream', kind: SpanKind.CLIENT },
  bridgeToLegacy: { name: 'upstream', kind: SpanKind.CLIENT },
};

/** Attribute values a caller controls are cut: a span is not a place to store a request body. */
const cut = (value: string): string => (value.length > 128 ? value.slice(0, 128) : value);

export async function createTracing(config: Config, options: TracingOptions = {}): Promise<Tracing | null> {
  const { tracing, security } = config;
  if (tracing.otlpEndpoint === null && !options.exporter) return null;
  // Loaded only when tracing is on: a proxy without it never pays for the SDK.
  const [sdk, core, resources] = await Promise.all([import('@opentelemetry/sdk-trace'), import('@opentelemetry/core'), import('@opentelemetry/resources')]);
  const exporter = options.exporter ?? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url: tracing.otlpEndpoint ?? '' });
  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': tracing.serviceName, 'service.version': VERSION }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(tracing.sampleRatio) }),
    // Batched to OTLP (off the request path); an injected exporter sees each span as it ends.
    spanProcessors: [options.exporter ? new sdk.SimpleSpanProcessor({ exporter }) : new sdk.BatchSpanProcessor({ exporter })],
  });
  // Not registered globally: several proxies in one process (tests) each keep their own.
  const tracer: Tracer = provider.getTracer('mcp-warden', VERSION);
  const propagator: TextMapPropagator = new core.W3CTraceContextPropagator();
  const spans = new WeakMap<RequestContext, Span>();

  const parentOf = (ctx: RequestContext): Context => {
    if (tracing.acceptParent === 'never' || ctx.req.headers.traceparent === undefined) return ROOT_CONTEXT;
    if (tracing.acceptParent === 'trusted-proxies' && !isTrustedPeer(ctx.req.socket.remoteAddress ?? '', security.trustProxy)) return ROOT_CONTEXT;
    return propagator.extract(ROOT_CONTEXT, ctx.req.headers, defaultTextMapGetter);
  };

  const headersOf = (context: Context): Record<string, string> => {
    const carrier: Record<string, string> = {};
    propagator.inject(context, carrier, defaultTextMapSetter);
    return carrier;
  };

  const fail = (span: Span, err: unknown): void => {
    const code = err instanceof WardenError ? err.code : 'INTERNAL';
    span.setAttribute('mcp_warden.refusal', code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  };

  return {
    begin(ctx) {
      const span = tracer.startSpan(`${ctx.req.method ?? 'HTTP'} ${ctx.route}`, {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': ctx.req.method ?? '', 'http.route': ctx.route, 'mcp_warden.request_id': ctx.id },
      }, parentOf(ctx));
      spans.set(ctx, span);
      ctx.trace = trace.setSpan(ROOT_CONTEXT, span);
      if (span.isRecording()) ctx.traceId = span.spanContext().traceId;
    },

    stage(stage) {
      const traced = TRACED[stage.name];
      if (!traced) return stage;
      const upstream = traced.name === 'upstream';
      const wrapped = (ctx: RequestContext): ReturnType<Stage> => {
        // Not sampled: no child spans (the cost stays near zero); the upstream still learns the
        // trace and that it is not sampled.
        if (ctx.traceId === null) {
          if (upstream && ctx.trace) ctx.traceHeaders = headersOf(ctx.trace);
          return stage(ctx);
        }
        const span = tracer.startSpan(traced.name, { kind: traced.kind }, ctx.trace ?? ROOT_CONTEXT);
        if (upstream) {
          ctx.traceHeaders = headersOf(trace.setSpan(ROOT_CONTEXT, span));
          if (ctx.upstreamIndex !== null) span.setAttribute('mcp_warden.upstream', ctx.upstreamIndex);
        }
        const finish = (): void => {
          if (upstream && ctx.response) span.setAttribute('http.response.status_code', ctx.response.status);
          // Authentication decides without throwing (its refusal waits for the address block): its span still fails.
          if (ctx.authFailure !== null && traced.name === 'authenticate') fail(span, ctx.authFailure);
          span.end();
        };
        const failed = (err: unknown): never => {
          fail(span, err);
          span.end();
          throw err;
        };
        let result: ReturnType<Stage>;
        try {
          result = stage(ctx);
        } catch (err) {
          return failed(err);
        }
        // A sync stage ends its span at once: wrapping must not add a promise to its path.
        if (!(result instanceof Promise)) {
          finish();
          return result;
        }
        return result.then((value) => {
          finish();
          return value;
        }, failed);
      };
      // The stage order test reads names: a wrapped stage keeps its own.
      Object.defineProperty(wrapped, 'name', { value: stage.name });
      return wrapped;
    },

    end(ctx, refusal) {
      const span = spans.get(ctx);
      if (!span) return;
      spans.delete(ctx);
      const status = ctx.res.statusCode;
      span.setAttribute('http.response.status_code', status);
      if (ctx.message?.method) span.setAttribute('mcp.method.name', cut(ctx.message.method));
      const call = ctx.message?.calls[0];
      if (ctx.message?.method === 'tools/call' && call?.target) span.setAttribute('gen_ai.tool.name', cut(call.target));
      if (ctx.identity) span.setAttribute('mcp_warden.client_id', cut(ctx.identity.clientId));
      if (refusal) span.setAttribute('mcp_warden.refusal', refusal.code);
      // Server spans: only a 5xx is this service's error (OpenTelemetry's HTTP conventions).
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: refusal?.code ?? String(status) });
      span.end();
    },

    close: async () => {
      await provider.shutdown();
    },
  };
}
