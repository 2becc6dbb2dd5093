import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../context.js';
import { ERROR_CATALOG } from '../errors.js';
import type { RefusalDetail, WardenError } from '../errors.js';

const JSON_TYPE = 'application/json';

/** Writes a JSON success response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

/** Headers of draft-ietf-httpapi-ratelimit-headers for a limit: the policy and what is left of it. */
export function rateLimitHeaders(name: string, limit: NonNullable<RefusalDetail['limit']>): { 'ratelimit-policy': string; ratelimit: string } {
  return {
    'ratelimit-policy': `"${name}";q=${limit.points};w=${limit.windowSeconds}`,
    ratelimit: `"${name}";r=${Math.max(0, limit.remaining)};t=${Math.max(0, Math.ceil(limit.resetMs / 1000))}`,
  };
}

function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '')}"`;
}

/** RFC 6750 §3 / RFC 9728 §5.1 challenge for the MCP path: always one `Bearer` challenge. */
function bearerChallenge(ctx: RequestContext, err: WardenError): string {
  const params: string[] = [];
  if (err.code === 'TOKEN_INVALID') params.push(`error="invalid_token"`, `error_description=${quoted(err.message)}`);
  if (err.code === 'INSUFFICIENT_SCOPE' || err.code === 'STEP_UP_REQUIRED') params.push(`error="insufficient_scope"`);
  const scope = err.detail.scope ?? ctx.site.requiredScope;
  if (scope) params.push(`scope=${quoted(scope)}`);
  params.push(`resource_metadata=${quoted(ctx.site.resourceMetadataUrl)}`);
  return `Bearer ${params.join(', ')}`;
}

function refusalHeaders(ctx: RequestContext, err: WardenError): Record<string, string> {
  const { status } = ERROR_CATALOG[err.code];
  const headers: Record<string, string> = { 'content-type': JSON_TYPE, 'cache-control': 'no-store' };
  if (err.code === 'OAUTH_INVALID_CLIENT') headers['www-authenticate'] = 'Basic realm="mcp-warden", charset="UTF-8"';
  else if ((status === 401 || err.code === 'INSUFFICIENT_SCOPE' || err.code === 'STEP_UP_REQUIRED') && ctx.kind !== 'oauth') headers['www-authenticate'] = bearerChallenge(ctx, err);
  if (status === 429 || status === 503) headers['retry-after'] = String(Math.max(1, Math.ceil((err.detail.retryAfterMs ?? 1000) / 1000)));
  if (err.detail.limit && err.detail.reason) Object.assign(headers, rateLimitHeaders(err.detail.reason, err.detail.limit));
  if (err.detail.allow) headers.allow = err.detail.allow;
  // A body we did not read would be taken as the next request on a kept-alive connection.
  if (!ctx.req.complete) headers.connection = 'close';
  return headers;
}

function refusalBody(ctx: RequestContext, err: WardenError): unknown {
  const entry = ERROR_CATALOG[err.code];
  // Internal detail never reaches a client: a 500 says only "Internal error".
  const message = err.code === 'INTERNAL' ? entry.message : err.message;
  switch (ctx.kind) {
    case 'mcp':
      if (err.detail.batchErrors) return err.detail.batchErrors.map(({ id, code, message: m }) => ({ jsonrpc: '2.0', error: { code, message: m }, id }));
      return { jsonrpc: '2.0', error: { code: entry.rpcCode, message }, id: ctx.message?.id ?? null };
    case 'oauth':
      return { error: entry.oauthError, error_description: message };
    case 'plain':
      return { error: err.code.toLowerCase(), message };
    default: {
      const never: never = ctx.kind;
      return never;
    }
  }
}

/**
 * The only function that writes a refusal: status from the catalog, JSON-RPC body on the MCP path,
 * RFC 6749 §5.2 JSON on OAuth endpoints, the right challenge and retry headers. When the response
 * has already started (a stream), the connection is cut instead: a half-sent stream cannot change
 * its status.
 */
export function sendError(ctx: RequestContext, err: WardenError): void {
  const { res } = ctx;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(refusalBody(ctx, err));
  res.writeHead(ERROR_CATALOG[err.code].status, { ...refusalHeaders(ctx, err), 'content-length': String(Buffer.byteLength(payload)) });
  res.end(payload);
}
