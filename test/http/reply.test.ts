/**
 * sendError, the only writer of refusals: a status matrix pinned code by code (status, challenge,
 * retry headers, body shape per route kind), over a real HTTP exchange.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { createContext } from '../../src/context.js';
import type { RouteKind } from '../../src/context.js';
import { ERROR_CATALOG, errorTable, WardenError } from '../../src/errors.js';
import type { RefusalDetail, WardenErrorCode } from '../../src/errors.js';
import { sendError } from '../../src/http/reply.js';
import { createLogger } from '../../src/observability/logger.js';

const site = { origin: 'https://p.example', resource: 'https://p.example/mcp', resourceMetadataUrl: 'https://p.example/.well-known/oauth-protected-resource/mcp', issuer: 'https://p.example', requiredScope: 'mcp' };

let next: { kind: RouteKind; error: WardenError; rpcId: string | number | null } = { kind: 'mcp', error: new WardenError('INTERNAL'), rpcId: null };
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const ctx = createContext(req, res, { id: 'r', startedAt: 0, receivedMark: 0, log: createLogger('silent'), site });
    ctx.kind = next.kind;
    ctx.message = next.rpcId === null ? null : { id: next.rpcId, method: 'tools/call', isInitialize: false, isBatch: false, calls: [] };
    sendError(ctx, next.error);
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

async function refuse(kind: RouteKind, code: WardenErrorCode, detail: RefusalDetail = {}, rpcId: string | number | null = null) {
  next = { kind, error: new WardenError(code, detail), rpcId };
  const res = await fetch(url, { method: 'POST', body: '{}' });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

t.test('every code answers with its catalog status and shape on each kind of route', async (t) => {
  for (const [code, entry] of Object.entries(ERROR_CATALOG) as [WardenErrorCode, (typeof ERROR_CATALOG)[WardenErrorCode]][]) {
    const mcp = await refuse('mcp', code, {}, 7);
    t.equal(mcp.status, entry.status, `${code}: ${entry.status}`);
    t.same(mcp.body, { jsonrpc: '2.0', error: { code: entry.rpcCode, message: entry.message }, id: 7 }, `${code}: JSON-RPC with the request id`);
    t.equal(mcp.headers.get('cache-control'), 'no-store');
    const oauth = await refuse('oauth', code);
    t.same(oauth.body, { error: entry.oauthError, error_description: entry.message }, `${code}: RFC 6749 §5.2 body`);
    const plain = await refuse('plain', code);
    t.same(plain.body, { error: code.toLowerCase(), message: entry.message });
    const retry = mcp.headers.get('retry-after');
    if (entry.status === 429 || entry.status === 503) t.ok(Number(retry) >= 1, `${code}: Retry-After`);
    else t.equal(retry, null, `${code}: no Retry-After`);
  }
});

t.test('challenges: exactly one Bearer on the MCP path, Basic for invalid_client', async (t) => {
  const missing = await refuse('mcp', 'TOKEN_MISSING');
  t.equal(missing.headers.get('www-authenticate'), `Bearer scope="mcp", resource_metadata="${site.resourceMetadataUrl}"`);
  const invalid = await refuse('mcp', 'TOKEN_INVALID', { reason: 'expired' });
  t.equal(invalid.headers.get('www-authenticate'), `Bearer error="invalid_token", error_description="Invalid or expired access token", scope="mcp", resource_metadata="${site.resourceMetadataUrl}"`);
  const scope = await refuse('mcp', 'INSUFFICIENT_SCOPE', { scope: 'mcp tools' });
  t.equal(scope.status, 403);
  t.equal(scope.headers.get('www-authenticate'), `Bearer error="insufficient_scope", scope="mcp tools", resource_metadata="${site.resourceMetadataUrl}"`);
  const stepUp = await refuse('mcp', 'STEP_UP_REQUIRED', { scope: 'mcp tools:write', reason: 'rule' });
  t.equal(stepUp.status, 403, 'policy step-up: 403');
  t.equal(stepUp.headers.get('www-authenticate'), `Bearer error="insufficient_scope", scope="mcp tools:write", resource_metadata="${site.resourceMetadataUrl}"`);
  t.equal((await refuse('mcp', 'POLICY_DENIED')).headers.get('www-authenticate'), null, 'a plain policy denial never challenges');
  const client = await refuse('oauth', 'OAUTH_INVALID_CLIENT');
  t.equal(client.status, 401);
  t.match(client.headers.get('www-authenticate'), /^Basic realm="mcp-warden"/);
  t.equal((await refuse('mcp', 'SESSION_NOT_FOUND')).headers.get('www-authenticate'), null, 'a 404 never challenges');
});

t.test('a refused batch answers one error per request id', async (t) => {
  const batchErrors = [{ id: 1, code: -32602, message: 'Unknown tool: delete_all' }, { id: 'b', code: -32600, message: 'Not run: another message of this batch was refused' }];
  const batch = await refuse('mcp', 'POLICY_DENIED', { batchErrors, denial: { method: 'tools/call', name: 'delete_all', rule: 'secret-rule-id' } });
  t.equal(batch.status, 200);
  t.same(batch.body, batchErrors.map(({ id, code, message }) => ({ jsonrpc: '2.0', error: { code, message }, id })));
  t.notMatch(JSON.stringify(batch.body), /secret-rule-id/, 'the rule stays in the log');
});

t.test('limits, Allow, and what never leaks', async (t) => {
  const limited = await refuse('mcp', 'RATE_LIMITED', { reason: 'client', retryAfterMs: 2_500, limit: { points: 10, windowSeconds: 60, remaining: 0, resetMs: 2_500 } });
  t.equal(limited.headers.get('retry-after'), '3', 'rounded up to whole seconds');
  t.equal(limited.headers.get('ratelimit-policy'), '"client";q=10;w=60');
  t.equal(limited.headers.get('ratelimit'), '"client";r=0;t=3');
  const method = await refuse('mcp', 'METHOD_NOT_ALLOWED', { allow: 'POST, GET' });
  t.equal(method.headers.get('allow'), 'POST, GET');
  const internal = await refuse('mcp', 'INTERNAL', { description: 'secret stack detail at /srv/app.js:42', cause: new Error('boom') });
  t.equal(internal.status, 500);
  t.notMatch(JSON.stringify(internal.body), /secret|boom|app\.js/, 'an internal error says only "Internal error"');
  const described = await refuse('oauth', 'OAUTH_INVALID_REQUEST', { description: 'grant_type is required' });
  t.equal(described.body.error_description, 'grant_type is required', 'refusals may carry a safe description');
});

t.test('the error table (docs/troubleshooting.md) lists exactly the catalog', async (t) => {
  const readme = readFileSync(new URL('../../docs/troubleshooting.md', import.meta.url), 'utf8');
  t.ok(readme.includes(errorTable()), 'regenerate with `npm run docs`');
  const listed = [...readme.matchAll(/^\| `([A-Z_]+)` \| \d{3} \|/gm)].map((m) => m[1]);
  t.same(listed.sort(), Object.keys(ERROR_CATALOG).sort());
});
