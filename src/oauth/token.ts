import { randomBytes } from 'node:crypto';
import type { SessionEnder } from '../session/end-session.js';
import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { sendJson } from '../http/reply.js';
import { logEvent } from '../observability/events.js';
import type { Client, ClientRegistry } from '../auth/clients.js';
import type { SignAccessToken } from '../auth/access-token.js';
import { hashRefreshToken, isRefreshTokenShape, mintRefreshToken, redeemRefreshToken } from '../auth/refresh-token.js';
import type { RefreshStores } from '../auth/refresh-token.js';
import type { Limiters } from '../store/limiters.js';
import { authenticateClient, readForm } from './client-auth.js';
import type { Form } from './client-auth.js';
import type { peopleGrants } from './code-grant.js';

export interface TokenEndpointDeps {
  /** Grants for people (interactive sign-in); null when login is off. */
  readonly people: ReturnType<typeof peopleGrants> | null;
  readonly clients: ClientRegistry;
  readonly limiters: Limiters;
  readonly store: RefreshStores;
  /** Revocations end the sessions they take away (upstream too). */
  readonly ender: SessionEnder;
  readonly sign: SignAccessToken;
  /** The proxy's public MCP URL: the only RFC 8707 resource it issues tokens for. */
  readonly resource: string;
  readonly accessTtlMs: number;
  readonly refreshTtlMs: number;
  readonly issueRefreshTokens: boolean;
  readonly clock: () => number;
}

// RFC 6749 §5.1: token responses must not be cached.
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };

function requestedScopes(form: Form, allowed: readonly string[]): string[] {
  const raw = form.get('scope');
  if (raw === undefined) return [...allowed];
  const scopes = raw.split(' ').filter(Boolean);
  if (scopes.length === 0 || !scopes.every((s) => allowed.includes(s))) throw new WardenError('OAUTH_INVALID_SCOPE');
  return [...new Set(scopes)];
}

/** RFC 8707: a `resource` must name this proxy's MCP URL (a trailing slash aside). */
function checkResource(form: Form, resource: string): void {
  const asked = form.get('resource');
  if (asked !== undefined && asked.replace(/\/$/, '') !== resource.replace(/\/$/, '')) throw new WardenError('OAUTH_INVALID_TARGET');
}

/**
 * `POST /oauth/token` (RFC 6749): `client_credentials`, and `refresh_token` with rotation; a reused
 * refresh token revokes its whole grant (OAuth 2.1 §4.3.1, the reused token and every successor).
 */
export function tokenEndpoint(deps: TokenEndpointDeps) {
  async function respond(ctx: RequestContext, client: Client, scopes: string[], grantId: string, refreshed: boolean): Promise<void> {
    const scope = scopes.join(' ');
    const access = await deps.sign({ clientId: client.id, scope, grantId });
    const now = deps.clock();
    const body: Record<string, unknown> = { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope };
    if (deps.issueRefreshTokens) {
      const refresh = mintRefreshToken();
      await deps.store.putRefreshToken(client.id, refresh.hash, { grantId, issuedAt: now, scope, audience: deps.resource, expiresAt: now + deps.refreshTtlMs }, now);
      body.refresh_token = refresh.token;
    }
    logEvent(ctx.log, refreshed ? 'token.refreshed' : 'token.issued', { clientId: client.id, jti: access.jti, grantId, address: ctx.clientAddress, grant: refreshed ? 'refresh_token' : 'client_credentials' });
    sendJson(ctx.res, 200, body, NO_STORE);
  }

  async function clientCredentials(ctx: RequestContext, form: Form, client: Client): Promise<void> {
    const scopes = requestedScopes(form, client.scopes);
    await respond(ctx, client, scopes, randomBytes(16).toString('base64url'), false);
  }

  async function refreshToken(ctx: RequestContext, form: Form, client: Client): Promise<void> {
    const token = form.get('refresh_token');
    if (token === undefined) throw new WardenError('OAUTH_INVALID_REQUEST', { description: 'refresh_token is required' });
    if (!deps.issueRefreshTokens || !isRefreshTokenShape(token)) throw new WardenError('OAUTH_INVALID_GRANT');
    const now = deps.clock();
    const record = await redeemRefreshToken(ctx, deps, client.id, hashRefreshToken(token), client.id);
    try {
      // RFC 6749 §6: a refresh may narrow the scope, never widen it.
      const scopes = requestedScopes(form, record.scope.split(' ').filter((s) => client.scopes.includes(s)));
      await respond(ctx, client, scopes, record.grantId, true);
    } catch (err) {
      // Refused (scope) or failed (store, signing) before the client got a successor: that was no
      // use. Keep the refresh token valid, or the client's retry would count as reuse and end the grant.
      await deps.store.putRefreshToken(client.id, hashRefreshToken(token), record, now).catch(() => {});
      throw err;
    }
  }

  return async function token(ctx: RequestContext): Promise<void> {
    const form = await readForm(ctx);
    ctx.grantType = form.get('grant_type') ?? null;
    if (deps.people) {
      const grant = form.get('grant_type');
      // People's clients are public apps or login clients, not machine clients: they authenticate
      // their own way (PKCE, or a login client secret), after the address's limit.
      if (grant === 'authorization_code' || (grant === 'refresh_token' && (await deps.people.ownsRefreshToken(form)))) {
        const byAddress = await deps.limiters.tokenEndpoint(ctx.clientAddress);
        if (!byAddress.allowed) throw new WardenError('RATE_LIMITED', { reason: 'token_endpoint', limit: byAddress.limit, retryAfterMs: byAddress.limit.resetMs });
        return grant === 'authorization_code' ? deps.people.authorizationCode(ctx, form) : deps.people.refreshToken(ctx, form);
      }
    }
    const client = await authenticateClient(ctx, form, deps);
    const grantType = form.get('grant_type');
    if (grantType === undefined) throw new WardenError('OAUTH_INVALID_REQUEST', { description: 'grant_type is required' });
    checkResource(form, deps.resource);
    if (grantType === 'client_credentials') return clientCredentials(ctx, form, client);
    if (grantType === 'refresh_token') return refreshToken(ctx, form, client);
    throw new WardenError('OAUTH_UNSUPPORTED_GRANT_TYPE');
  };
}
