import t from 'tap';
import type { Test } from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createContext } from '../../src/context.js';
import type { Site } from '../../src/context.js';
import { WardenError } from '../../src/errors.js';
import { rateLimitHeaders, sendError } from '../../src/http/reply.js';
import { createLogger } from '../../src/observability/logger.js';
import { rateLimitFields } from '../fixtures/probe.js';

t.test('rateLimitHeaders follow draft-ietf-httpapi-ratelimit-headers: sf-string items, integer parameters', async (t) => {
  const headers = rateLimitHeaders('client', { points: 600, windowSeconds: 60, remaining: 599, resetMs: 59_001 });
  t.same(headers, { 'ratelimit-policy': '"client";q=600;w=60', ratelimit: '"client";r=599;t=60' });
  t.same(rateLimitFields(new Headers(headers)), { policy: { name: 'client', q: 600, w: 60 }, limit: { name: 'client', r: 599, t: 60 } });
  const spent = rateLimitHeaders('token_endpoint', { points: 3, windowSeconds: 1, remaining: -2, resetMs: -5 });
  t.equal(spent.ratelimit, '"token_endpoint";r=0;t=0', 'r and t are never negative');
});

const site: Site = { origin: 'http://x', resource: 'http://x/mcp', resourceMetadataUrl: 'http://x/.well-known/oauth-protected-resource/mcp', issuer: 'http://x', requiredScope: 'mcp' };

/** Sends one refusal through a real listener and returns what a client sees. */
async function refusal(t: Test, kind: 'mcp' | 'oauth', err: WardenError): Promise<Response> {
  const server = http.createServer((req, res) => {
    const ctx = createContext(req, res, { id: 'r', startedAt: 0, receivedMark: 0, log: createLogger('silent'), site });
    ctx.kind = kind;
    sendError(ctx, err);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
}

t.test('a 429 carries Retry-After and the limit that refused', async (t) => {
  const limit = { points: 3, windowSeconds: 60, remaining: 0, resetMs: 41_200 };
  const mcp = await refusal(t, 'mcp', new WardenError('RATE_LIMITED', { reason: 'session_create', limit, retryAfterMs: limit.resetMs }));
  t.equal(mcp.status, 429);
  t.equal(mcp.headers.get('retry-after'), '42');
  t.same(rateLimitFields(mcp.headers), { policy: { name: 'session_create', q: 3, w: 60 }, limit: { name: 'session_create', r: 0, t: 42 } });
  t.same(await mcp.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Rate limit exceeded' }, id: null });

  const blocked = await refusal(t, 'oauth', new WardenError('ADDRESS_BLOCKED', { reason: 'failed_attempts', limit: { ...limit, resetMs: 299_001 }, retryAfterMs: 299_001 }));
  t.equal(blocked.status, 429);
  t.equal(blocked.headers.get('retry-after'), '300');
  t.same(rateLimitFields(blocked.headers).limit, { name: 'failed_attempts', r: 0, t: 300 });
  t.same(await blocked.json(), { error: 'temporarily_unavailable', error_description: 'Too many failed attempts; try again later' });

  const unavailable = await refusal(t, 'mcp', new WardenError('STORE_UNAVAILABLE', { reason: 'store', retryAfterMs: 2_000 }));
  t.equal(unavailable.status, 503);
  t.equal(unavailable.headers.get('retry-after'), '2');
  t.equal(unavailable.headers.get('ratelimit'), null, 'no limit refused it, none is named');
});
