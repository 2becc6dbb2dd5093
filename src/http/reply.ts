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

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

// No script at all, no framing (clickjacking of the consent button), forms post only to us.
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer the consent form would post `Origin: null`.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

/**
 * Writes a server-rendered page; `body` is HTML the caller escaped. `redirectTo` is where a form
 * on the page may end up: browsers hold the redirect after a form post to `form-action` too.
 */
export function sendPage(res: ServerResponse, status: number, title: string, body: string, headers: Record<string, string> = {}, redirectTo: string | null = null): void {
  const formAction = ["'self'", ...(redirectTo === null ? [] : [redirectTo])].join(' ');
  const csp = `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1d2330}h1{font-size:1.4rem}.box{border:1px solid #d5d9e2;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0;background:#f7f8fb}.code{color:#6b7280;font-size:.85rem}button{font:inherit;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #1d4ed8;cursor:pointer;margin-right:.5rem}.approve{background:#1d4ed8;color:#fff}.deny{background:#fff;color:#1d4ed8}ul{padding-left:1.25rem}.warn{color:#92400e;font-size:.9rem}</style></head><body>${body}</body></html>`;
  res.writeHead(status, { ...headers, ...PAGE_HEADERS, 'content-security-policy': csp, 'content-length': String(Buffer.byteLength(html)) });
  res.end(html);
}

/** Headers of draft-ietf-httpapi-ratelimit-headers for a limit: the policy and what is left of it. */
export function rateLimitHeaders(name: string, limit: NonNullable<RefusalDetail['limit']>): { 'ratelimit-policy': string; ratelimit: string } {
  return {
    'ratelimit-policy': `"${name}";q=${limit.points};w=${limit.windowSeconds}`,
    ratelimit: `"${name}";r=${Math.max(0, limit.remaining)};t=${Math.max(0, Math.ceil(limit.resetMs / 1000))}`,
  };
}

/**
 * Adds the headers an earlier stage gave every answer to this request (`ctx.responseHeaders`) to
 * a head about to be written, where the head does not set them itself (the head's own win, as
 * they would over `res.setHeader`).
 */
export function addResponseHeaders(ctx: RequestContext, headers: Record<string, string | string[] | number>): void {
  const extra = ctx.responseHeaders;
  if (extra === null) return;
  for (const name in extra) headers[name] ??= extra[name] as string;
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
  const headers: Record<string, string> = { 'content-type': ctx.kind === 'admin' ? 'application/problem+json' : JSON_TYPE, 'cache-control': 'no-store' };
  if (err.code === 'OAUTH_INVALID_CLIENT') headers['www-authenticate'] = 'Basic realm="mcp-warden", charset="UTF-8"';
  else if (ctx.kind === 'admin' && status === 401) headers['www-authenticate'] = 'Bearer realm="mcp-warden-admin"';
  else if ((status === 401 || err.code === 'INSUFFICIENT_SCOPE' || err.code === 'STEP_UP_REQUIRED') && ctx.kind !== 'oauth') headers['www-authenticate'] = bearerChallenge(ctx, err);
  if (status === 429 || status === 503) headers['retry-after'] = String(Math.max(1, Math.ceil((err.detail.retryAfterMs ?? 1000) / 1000)));
  if (err.detail.limit && err.detail.reason) Object.assign(headers, rateLimitHeaders(err.detail.reason, err.detail.limit));
  if (err.detail.allow) headers.allow = err.detail.allow;
  // A body we did not read would be taken as the next request on a kept-alive connection.
  if (!ctx.req.complete) headers.connection = 'close';
  addResponseHeaders(ctx, headers);
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
    case 'page':
      return { error: err.code.toLowerCase(), message };
    case 'admin':
      // RFC 9457 problem details.
      return { type: `urn:mcp-warden:error:${err.code.toLowerCase()}`, title: entry.message, status: entry.status, detail: message, code: err.code };
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
  if (ctx.kind === 'page') {
    // A person's browser: a page, never a redirect (an unverified redirect URI is an open redirect).
    const message = err.code === 'INTERNAL' ? ERROR_CATALOG.INTERNAL.message : err.message;
    sendPage(res, ERROR_CATALOG[err.code].status, 'Sign-in failed', `<h1>Sign-in failed</h1><p>${escapeHtml(message)}</p><p class="code">${escapeHtml(err.code)}</p>`, refusalHeaders(ctx, err));
    return;
  }
  const payload = JSON.stringify(refusalBody(ctx, err));
  res.writeHead(ERROR_CATALOG[err.code].status, { ...refusalHeaders(ctx, err), 'content-length': String(Buffer.byteLength(payload)) });
  res.end(payload);
}
