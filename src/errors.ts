import type { SecurityEvent } from './observability/events.js';

/** JSON-RPC codes used on the MCP path (MCP transport convention; -32001 is "session not found"). */
// -32602 is what the MCP spec answers for an unknown tool, so a hidden tool looks like a missing one;
// -32020 is the spec's HeaderMismatch (2026-07-28).
const RPC = { transport: -32000, session: -32001, parse: -32700, invalid: -32600, internal: -32603, methodNotFound: -32601, invalidParams: -32602, headerMismatch: -32020 } as const;

interface CatalogEntry {
  /** HTTP status of the refusal. */
  readonly status: number;
  /** JSON-RPC error code when the refusal is on the MCP path. */
  readonly rpcCode: number;
  /** RFC 6749 §5.2 / RFC 6750 §3.1 error code, for OAuth endpoints and `WWW-Authenticate`. */
  readonly oauthError: string;
  /** Message sent to the client: fixed text, never internal detail. */
  readonly message: string;
  /** Security event logged for the refusal. */
  readonly event: SecurityEvent;
  /** Whether the refusal counts against the source address's failed-attempt budget. */
  readonly failedAttempt: boolean;
}

/**
 * Every refusal mcp-warden can answer with. Stages throw a code; `sendError` turns it into HTTP.
 * The error table of docs/troubleshooting.md lists exactly these codes (a test keeps them in step).
 */
export const ERROR_CATALOG = {
  BODY_TOO_LARGE: { status: 413, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'Request body too large', event: 'request.refused', failedAttempt: false },
  INVALID_JSON: { status: 400, rpcCode: RPC.parse, oauthError: 'invalid_request', message: 'Parse error: the body is not valid JSON', event: 'request.refused', failedAttempt: false },
  INVALID_MESSAGE: { status: 400, rpcCode: RPC.invalid, oauthError: 'invalid_request', message: 'Invalid Request: not an acceptable JSON-RPC message', event: 'request.refused', failedAttempt: false },
  NOT_FOUND: { status: 404, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'Not found', event: 'request.refused', failedAttempt: false },
  METHOD_NOT_ALLOWED: { status: 405, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'Method not allowed', event: 'request.refused', failedAttempt: false },
  INSECURE_TRANSPORT: { status: 403, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'HTTPS is required', event: 'transport.refused', failedAttempt: false },
  ORIGIN_NOT_ALLOWED: { status: 403, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'Origin not allowed', event: 'origin.refused', failedAttempt: false },
  ADDRESS_BLOCKED: { status: 429, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Too many failed attempts; try again later', event: 'address.blocked', failedAttempt: false },
  TOKEN_MISSING: { status: 401, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'Authentication required', event: 'auth.failed', failedAttempt: false },
  TOKEN_INVALID: { status: 401, rpcCode: RPC.transport, oauthError: 'invalid_token', message: 'Invalid or expired access token', event: 'auth.failed', failedAttempt: true },
  INSUFFICIENT_SCOPE: { status: 403, rpcCode: RPC.transport, oauthError: 'insufficient_scope', message: 'The access token lacks the required scope', event: 'auth.failed', failedAttempt: false },
  RELAY_REFUSED: { status: 403, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'Relay not accepted', event: 'relay.refused', failedAttempt: true },
  RATE_LIMITED: { status: 429, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Rate limit exceeded', event: 'rate.limited', failedAttempt: false },
  SESSION_NOT_FOUND: { status: 404, rpcCode: RPC.session, oauthError: 'invalid_request', message: 'Session not found', event: 'session.not_found', failedAttempt: true },
  SESSION_BINDING_MISMATCH: { status: 404, rpcCode: RPC.session, oauthError: 'invalid_request', message: 'Session not found', event: 'session.binding_mismatch', failedAttempt: true },
  SESSION_LIMIT: { status: 429, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Too many open sessions', event: 'session.limited', failedAttempt: false },
  STREAM_LIMIT: { status: 429, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Too many open streams', event: 'rate.limited', failedAttempt: false },
  OAUTH_INVALID_REQUEST: { status: 400, rpcCode: RPC.invalid, oauthError: 'invalid_request', message: 'The request is missing a parameter or is malformed', event: 'token.refused', failedAttempt: false },
  OAUTH_INVALID_CLIENT: { status: 401, rpcCode: RPC.transport, oauthError: 'invalid_client', message: 'Client authentication failed', event: 'auth.failed', failedAttempt: true },
  OAUTH_INVALID_GRANT: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_grant', message: 'The grant is invalid, expired or revoked', event: 'token.refused', failedAttempt: true },
  OAUTH_INVALID_SCOPE: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_scope', message: 'The requested scope is not allowed for this client', event: 'token.refused', failedAttempt: false },
  OAUTH_INVALID_TARGET: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_target', message: 'The requested resource is not served here', event: 'token.refused', failedAttempt: false },
  OAUTH_UNSUPPORTED_GRANT_TYPE: { status: 400, rpcCode: RPC.transport, oauthError: 'unsupported_grant_type', message: 'Supported grant types: client_credentials, refresh_token', event: 'token.refused', failedAttempt: false },
  OAUTH_UNSUPPORTED_TOKEN_TYPE: { status: 400, rpcCode: RPC.transport, oauthError: 'unsupported_token_type', message: 'Supported token types: access_token, refresh_token', event: 'token.refused', failedAttempt: false },
  AUTHORIZE_REFUSED: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'This sign-in request cannot be honoured: unknown client or unregistered redirect URI', event: 'token.refused', failedAttempt: true },
  LOGIN_STATE_INVALID: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'This sign-in has expired or belongs to another browser; start again from your MCP client', event: 'auth.failed', failedAttempt: true },
  LOGIN_FAILED: { status: 502, rpcCode: RPC.transport, oauthError: 'server_error', message: 'The identity provider\'s answer could not be accepted', event: 'auth.failed', failedAttempt: false },
  CONSENT_INVALID: { status: 403, rpcCode: RPC.transport, oauthError: 'access_denied', message: 'The consent form is not valid; start again from your MCP client', event: 'auth.failed', failedAttempt: true },
  REGISTRATION_INVALID: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_client_metadata', message: 'The client registration is not acceptable', event: 'token.refused', failedAttempt: true },
  REDIRECT_URI_REFUSED: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_redirect_uri', message: 'A redirect URI of the registration is not allowed', event: 'token.refused', failedAttempt: true },
  CLIENT_METADATA_INVALID: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_client', message: 'The client\'s metadata document cannot be used', event: 'token.refused', failedAttempt: true },
  ADMIN_UNAUTHORIZED: { status: 401, rpcCode: RPC.transport, oauthError: 'invalid_token', message: 'The admin API needs the admin key or a token with the admin scope', event: 'admin.refused', failedAttempt: false },
  ADMIN_INVALID: { status: 400, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'The admin request is not valid', event: 'admin.refused', failedAttempt: false },
  ADMIN_NOT_FOUND: { status: 404, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'Nothing to act on', event: 'admin.refused', failedAttempt: false },
  ADMIN_CONFLICT: { status: 409, rpcCode: RPC.transport, oauthError: 'invalid_request', message: 'The request conflicts with the current state', event: 'admin.refused', failedAttempt: false },
  BUDGET_EXCEEDED: { status: 200, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Budget exceeded', event: 'budget.exceeded', failedAttempt: false },
  LOOP_BROKEN: { status: 200, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'The same call was repeated too often; refused for a while', event: 'request.refused', failedAttempt: false },
  AUDIT_UNAVAILABLE: { status: 503, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'The audit trail cannot be written; try again later', event: 'audit.failed', failedAttempt: false },
  OAUTH_UNSUPPORTED_RESPONSE_TYPE: { status: 400, rpcCode: RPC.transport, oauthError: 'unsupported_response_type', message: 'Interactive authorization is not offered; use the client_credentials grant at the token endpoint', event: 'token.refused', failedAttempt: false },
  HEADER_MISMATCH: { status: 400, rpcCode: RPC.headerMismatch, oauthError: 'invalid_request', message: 'The Mcp-Method or Mcp-Name header does not match the body', event: 'request.refused', failedAttempt: false },
  POLICY_DENIED: { status: 200, rpcCode: RPC.invalidParams, oauthError: 'access_denied', message: 'Unknown tool, prompt or resource', event: 'policy.denied', failedAttempt: false },
  METHOD_DENIED: { status: 200, rpcCode: RPC.methodNotFound, oauthError: 'access_denied', message: 'Method not found', event: 'policy.denied', failedAttempt: false },
  LEGACY_MESSAGE_DENIED: { status: 403, rpcCode: RPC.invalidParams, oauthError: 'access_denied', message: 'Unknown tool, prompt, resource or method', event: 'policy.denied', failedAttempt: false },
  STEP_UP_REQUIRED: { status: 403, rpcCode: RPC.transport, oauthError: 'insufficient_scope', message: 'The access token lacks a scope this call needs', event: 'policy.denied', failedAttempt: false },
  UPSTREAM_UNAVAILABLE: { status: 502, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Upstream MCP server unavailable', event: 'upstream.failed', failedAttempt: false },
  UPSTREAM_INVALID_RESPONSE: { status: 502, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'The upstream answer could not be checked against the policy', event: 'upstream.failed', failedAttempt: false },
  UPSTREAM_TIMEOUT: { status: 504, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Upstream MCP server timed out', event: 'upstream.failed', failedAttempt: false },
  STORE_UNAVAILABLE: { status: 503, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Service temporarily unavailable', event: 'store.unavailable', failedAttempt: false },
  SHUTTING_DOWN: { status: 503, rpcCode: RPC.transport, oauthError: 'temporarily_unavailable', message: 'Server is shutting down', event: 'request.refused', failedAttempt: false },
  INTERNAL: { status: 500, rpcCode: RPC.internal, oauthError: 'server_error', message: 'Internal error', event: 'request.failed', failedAttempt: false },
} as const satisfies Record<string, CatalogEntry>;

export type WardenErrorCode = keyof typeof ERROR_CATALOG;

/** Closed set of reasons: a refusal's detail, reused as a metrics label. */
export type RefusalReason =
  | 'missing' | 'malformed' | 'bad_signature' | 'algorithm' | 'type' | 'expired' | 'not_yet_valid' | 'issuer'
  | 'audience' | 'claims' | 'revoked' | 'unknown_key' | 'issuer_unreachable'
  | 'unknown' | 'foreign' | 'forged' | 'binding' | 'owner_gone'
  | 'client' | 'session_create' | 'token_endpoint' | 'failed_attempts' | 'streams' | 'register'
  | 'reuse' | 'refused' | 'reset' | 'timeout' | 'store'
  | 'rule' | 'default' | 'ambiguous' | 'mismatch' | 'unparseable' | 'budget' | 'loop';

/** Extra data a refusal carries to the reply: never a status (the catalog decides that). */
export interface RefusalDetail {
  readonly reason?: RefusalReason;
  /** For 429/503: when to retry. */
  readonly retryAfterMs?: number;
  /** For 429: the limit that refused, for `RateLimit-Policy` / `RateLimit`. */
  readonly limit?: { readonly points: number; readonly windowSeconds: number; readonly remaining: number; readonly resetMs: number };
  /** For 403 insufficient_scope: the scope the request needs. */
  readonly scope?: string;
  /** For 405: the methods the path takes. */
  readonly allow?: string;
  /** Policy refusals: what was denied and by which rule, for the `policy.denied` event (never sent to the client). */
  readonly denial?: { readonly method: string | null; readonly name: string | null; readonly rule: string | null };
  /** A refused batch: one JSON-RPC error per request id (MCP path), sent instead of the single error. */
  readonly batchErrors?: readonly { readonly id: string | number | null; readonly code: number; readonly message: string }[];
  /** A safe, client-facing description; never secrets or internal detail. */
  readonly description?: string;
  readonly cause?: unknown;
}

/** A refusal: the client's fault or a dependency's. Mapped to HTTP only by `sendError`. */
export class WardenError extends Error {
  readonly code: WardenErrorCode;
  readonly detail: RefusalDetail;

  constructor(code: WardenErrorCode, detail: RefusalDetail = {}) {
    super(detail.description ?? ERROR_CATALOG[code].message, { cause: detail.cause });
    this.name = 'WardenError';
    this.code = code;
    this.detail = detail;
  }
}

/** A configuration that cannot run: printed with every problem, exit code 2. */
export class ConfigError extends Error {
  readonly problems: readonly { readonly path: string; readonly message: string }[];

  constructor(problems: readonly { readonly path: string; readonly message: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Whether a refusal counts against the source address's failed-attempt budget. The catalog says
 * which codes may; the reason takes back the ones a well-behaved client causes itself, which are
 * no attack and must not block everyone behind its NAT or ingress: an expired token (its
 * signature was good: it is the client's own), and a session id whose tag proves it was minted for
 * this very client (it ended: idle, revoked, a restart), or for this person in another app.
 * Forged ids and bad signatures still count.
 */
export function countsAsFailedAttempt(err: WardenError): boolean {
  if (!ERROR_CATALOG[err.code].failedAttempt) return false;
  const { reason } = err.detail;
  if (err.code === 'TOKEN_INVALID') return reason !== 'expired';
  if (err.code === 'SESSION_NOT_FOUND') return reason !== 'unknown' && reason !== 'foreign';
  return true;
}

/** Anything that is not a refusal is a bug: it becomes a generic 500 with the stack logged. */
export function asWardenError(err: unknown): WardenError {
  return err instanceof WardenError ? err : new WardenError('INTERNAL', { cause: err });
}

/** The error-code table of docs/troubleshooting.md, generated from the catalog (a test keeps it in step). */
export function errorTable(): string {
  const rows = ['| code | HTTP | JSON-RPC (MCP path) | OAuth `error` | message | counts as failed attempt |', '|---|---|---|---|---|---|'];
  for (const [code, e] of Object.entries(ERROR_CATALOG)) {
    rows.push(`| \`${code}\` | ${e.status} | ${e.rpcCode} | \`${e.oauthError}\` | ${e.message} | ${e.failedAttempt ? 'yes' : ''} |`);
  }
  return rows.join('\n');
}
