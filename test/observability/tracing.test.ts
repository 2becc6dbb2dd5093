/**
 * OpenTelemetry tracing: the spans of a request (an in-memory exporter from the SDK), the trace
 * continued upstream, whose `traceparent` is believed, the trace id in the logs, and spans that
 * reach a real OTLP/HTTP receiver.
 */
import t from 'tap';
import type { Test } from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { startDemoServer } from '../../demo/mcp-server.js';
import { initialize, rpc } from '../fixtures/probe.js';
import { startWarden } from '../fixtures/warden.js';

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_PARENT = `00-${CALLER_TRACE}-00f067aa0ba902b7-01`;

const byName = (spans: readonly ReadableSpan[], name: string): ReadableSpan[] => spans.filter((s) => s.name === name);
/** The request spans once there are any: the span ends just after the response is sent. */
async function requestSpans(exporter: InMemorySpanExporter): Promise<ReadableSpan[]> {
  for (let i = 0; i < 100; i++) {
    const found = byName(exporter.getFinishedSpans(), 'POST mcp');
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return [];
}
const parentId = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

/** The demo upstream behind a proxy whose spans go to an in-memory exporter. */
async function traced(t: Test, raw: Record<string, unknown> = {}) {
  const upstream = await startDemoServer();
  const exporter = new InMemorySpanExporter();
  const proxy = await startWarden({ upstreams: [upstream.url], ...raw }, { spanExporter: exporter });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return { upstream, exporter, proxy };
}

t.test('a request is a server span with child spans for authentication, the store and the upstream', async (t) => {
  const { upstream, exporter, proxy } = await traced(t);
  const token = await proxy.token();

  const init = await rpc(proxy.mcpUrl, { token, body: initialize(1) });
  t.equal(init.status, 200);
  const sessionId = init.headers.get('mcp-session-id') ?? '';
  exporter.reset();
  upstream.requests.length = 0;
  const call = await rpc(proxy.mcpUrl, { token, sessionId, body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } } });
  t.equal(call.status, 200);

  const [server] = await requestSpans(exporter);
  const spans = exporter.getFinishedSpans();
  if (!server) throw new Error(`no request span among ${spans.map((s) => s.name).join(', ')}`);
  t.equal(server.kind, 1, 'SERVER kind');
  t.equal(server.attributes['http.response.status_code'], 200);
  t.equal(server.attributes['http.route'], 'mcp', 'the route template of the metrics');
  t.equal(server.attributes['mcp.method.name'], 'tools/call', 'the MCP method of the message');
  t.equal(server.attributes['gen_ai.tool.name'], 'echo');
  t.equal(server.attributes['mcp_warden.client_id'], 'alice');
  t.match(server.attributes['mcp_warden.request_id'], /^[0-9a-f]{8}-/, 'the request id of the logs');
  t.equal(parentId(server), undefined, 'a caller that sent no traceparent starts a trace');
  const traceId = server.spanContext().traceId;
  for (const name of ['authenticate', 'store.load', 'upstream']) {
    const [child] = byName(spans, name);
    t.ok(child, `a ${name} span`);
    t.equal(child?.spanContext().traceId, traceId, `${name} is in the request's trace`);
    t.equal(child && parentId(child), server.spanContext().spanId, `${name} is a child of the request span`);
  }
  const [up] = byName(spans, 'upstream');
  t.equal(up?.attributes['http.response.status_code'], 200);
  // The upstream continues the trace from the upstream span, and sees no session id of ours in it.
  const sent = upstream.requests.find((r) => r.method === 'POST');
  t.equal(sent?.headers.traceparent, `00-${traceId}-${up?.spanContext().spanId}-01`, 'traceparent sent upstream is the upstream span');
  for (const span of spans) t.notMatch(JSON.stringify(span.attributes), sessionId, `${span.name} holds no session id`);

  // The request id of the span and the trace id of the span are in the same request's log line.
  const line = proxy.logs.lines.find((l) => l.msg === 'request' && l.reqId === server.attributes['mcp_warden.request_id']);
  t.equal(line?.traceId, traceId, 'the access log line carries the trace id');
});

t.test('a refusal is on the span: the authenticate span fails with the error code, the request span does not (4xx)', async (t) => {
  const { upstream, exporter, proxy } = await traced(t);
  const res = await rpc(proxy.mcpUrl, { token: 'not-a-token', body: initialize(1) });
  t.equal(res.status, 401);
  const [server] = await requestSpans(exporter);
  const spans = exporter.getFinishedSpans();
  const [auth] = byName(spans, 'authenticate');
  t.equal(server?.attributes['mcp_warden.refusal'], 'TOKEN_INVALID');
  t.equal(server?.status.code, 0, 'a 4xx is the caller\'s error, not ours: status unset');
  t.equal(auth?.status.code, 2, 'authenticate span: ERROR');
  t.equal(auth?.status.message, 'TOKEN_INVALID');
  t.equal(byName(spans, 'upstream').length, 0, 'nothing was forwarded');
  t.equal(upstream.requests.filter((r) => r.method === 'POST').length, 0, 'no POST reached the upstream (the start-up probe is a GET)');
});

t.test('traceparent: a trusted proxy\'s continues its trace, anyone else\'s starts a new one, and upstream never gets the caller\'s', async (t) => {
  const upstream = await startDemoServer({ stateless: true });
  t.teardown(() => upstream.close());
  const cases = [
    { name: 'untrusted peer (no trustProxy)', raw: {}, continues: false },
    { name: 'trusted proxy (127.0.0.1/32)', raw: { security: { trustProxy: ['127.0.0.1/32'] } }, continues: true },
    { name: 'acceptParent never, even from a trusted proxy', raw: { security: { trustProxy: ['127.0.0.1/32'] }, tracing: { acceptParent: 'never' } }, continues: false },
    { name: 'acceptParent always', raw: { tracing: { acceptParent: 'always' } }, continues: true },
  ];
  for (const c of cases) {
    const exporter = new InMemorySpanExporter();
    const proxy = await startWarden({ upstreams: [upstream.url], ...c.raw }, { spanExporter: exporter });
    upstream.requests.length = 0;
    const res = await rpc(proxy.mcpUrl, { token: await proxy.token(), headers: { traceparent: CALLER_PARENT, tracestate: 'caller=1' } });
    t.equal(res.status, 200, c.name);
    // Before close: shutting the provider down empties the in-memory exporter.
    const [server] = await requestSpans(exporter);
    await proxy.close();
    const traceId = server?.spanContext().traceId;
    t.equal(traceId === CALLER_TRACE, c.continues, `${c.name}: trace ${c.continues ? 'continued' : 'new'}`);
    t.equal(server && parentId(server), c.continues ? '00f067aa0ba902b7' : undefined, `${c.name}: parent`);
    const sent = upstream.requests.find((r) => r.method === 'POST')?.headers;
    t.match(sent?.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`), `${c.name}: upstream gets our trace`);
    t.not(sent?.traceparent, CALLER_PARENT, `${c.name}: never the caller's traceparent`);
    t.equal(sent?.tracestate, c.continues ? 'caller=1' : undefined, `${c.name}: tracestate only with a continued trace`);
  }
});

t.test('spans reach a real OTLP/HTTP receiver, batched, with the service name', async (t) => {
  const received: unknown[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      received.push({ path: req.url, type: req.headers['content-type'], body: JSON.parse(body.toString('utf8')) as unknown });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  const upstream = await startDemoServer({ stateless: true });
  t.teardown(() => upstream.close());
  const { port } = receiver.address() as AddressInfo;
  const proxy = await startWarden({ upstreams: [upstream.url], tracing: { otlpEndpoint: `http://127.0.0.1:${port}/v1/traces`, serviceName: 'warden-under-test' } });
  t.equal((await rpc(proxy.mcpUrl, { token: await proxy.token() })).status, 200);
  t.equal(received.length, 0, 'batched: nothing is exported on the request path');
  await proxy.close(); // flushes the batch
  t.ok(received.length >= 1, 'the batch was exported on close');
  const text = JSON.stringify(received);
  t.match(text, '"path":"/v1/traces"');
  t.match(text, '"type":"application/json"');
  t.match(text, '"stringValue":"warden-under-test"', 'service.name is the configured one');
  for (const name of ['POST mcp', 'authenticate', 'store.load', 'upstream']) t.match(text, `"name":"${name}"`, `span ${name} exported`);
});

t.test('tracing off: no span, no traceparent of ours upstream, and the caller\'s passes through untouched', async (t) => {
  const upstream = await startDemoServer({ stateless: true });
  const proxy = await startWarden({ upstreams: [upstream.url] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const res = await rpc(proxy.mcpUrl, { token: await proxy.token(), headers: { traceparent: CALLER_PARENT } });
  t.equal(res.status, 200);
  t.equal(upstream.requests.find((r) => r.method === 'POST')?.headers.traceparent, CALLER_PARENT, 'forwarded like any other header');
  t.notOk(proxy.logs.lines.some((l) => 'traceId' in l), 'no trace id in the logs');
});

t.test('not sampled (sampleRatio 0): no span is recorded, the upstream still gets the trace with sampled=0', async (t) => {
  const upstream = await startDemoServer({ stateless: true });
  const exporter = new InMemorySpanExporter();
  const proxy = await startWarden({ upstreams: [upstream.url], tracing: { sampleRatio: 0 } }, { spanExporter: exporter });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const res = await rpc(proxy.mcpUrl, { token: await proxy.token() });
  t.equal(res.status, 200);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.same(exporter.getFinishedSpans(), [], 'nothing recorded');
  t.match(upstream.requests.find((r) => r.method === 'POST')?.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'sampled flag off');
  t.notOk(proxy.logs.lines.some((l) => 'traceId' in l), 'no trace id in the logs of an unrecorded trace');
});
