import { createHash } from 'node:crypto';
import type { SessionEnder } from '../session/end-session.js';
import { appSessionGrant } from '../login/principal.js';
import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { sendJson } from '../http/reply.js';
import { logEvent } from '../observability/events.js';
import type { SignAccessToken } from '../auth/access-token.js';
import { hashRefreshToken, isRefreshTokenShape, mintRefreshToken, redeemRefreshToken } from '../auth/refresh-token.js';
import type { RefreshStores } from '../auth/refresh-token.js';
import { verifySecret } from '../auth/secret-hash.js';
import { parseBasic, authorizationField } from '../http/headers.js';
import type { LoginClient, LoginClients } from '../login/clients.js';
import type { TransientStore } from '../store/types.js';
import { codeName } from './authorize.js';
import type { CodeGrant } from './authorize.js';
import type { Form } from './client-auth.js';

/**
 * The token endpoint's grants for people (DESIGN §11): `authorization_code` (PKCE S256, the code
 * single-use and bound to client, redirect URI and challenge) and `refresh_token` for the
 * refresh tokens those grants got (rotated on every use; a reused one ends the grant).
 */
export interface PeopleGrantDeps {
  readonly clients: LoginClients;
  readonly store: RefreshStores & TransientStore;
  /** Revocations end the sessions they take away (upstream too). */
  readonly ender: SessionEnder;
  readonly sign: SignAccessToken;
  readonly resource: string;
  readonly refreshTtlMs: number;
  readonly clock: () => number;
}

/** Where a person's refresh token points: its owner and client (the token itself says nothing). */
interface RefreshOwner {
  readonly user: string;
  readonly clientId: string;
  readonly groups: readonly string[];
}

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
// How long a redeemed code is remembered, so that its replay can end what it issued.
const SPENT_CODE_TTL_MS = 3_600_000;

const refreshName = (hash: string): string => `rt:${hash}`;
const spentName = (code: string): string => `spent:${codeName(code)}`;

export function peopleGrants(deps: PeopleGrantDeps) {
  /** RFC 6749 §2.3 for login clients: confidential ones prove their secret, public ones name themselves. */
  async function clientOf(ctx: RequestContext, form: Form): Promise<LoginClient> {
    const basic = parseBasic(authorizationField(ctx.req.headers.authorization, ctx.req.rawHeaders));
    const id = basic.ok ? basic.value.id : form.get('client_id');
    const secret = basic.ok ? basic.value.secret : form.get('client_secret');
    const client = id === undefined ? null : await deps.clients.find(id);
    if (!client) throw new WardenError('OAUTH_INVALID_CLIENT', { reason: 'client' });
    if (client.secretHash !== null && (secret === undefined || !(await verifySecret(secret, client.secretHash)))) throw new WardenError('OAUTH_INVALID_CLIENT', { reason: 'client' });
    return client;
  }

  async function respond(ctx: RequestContext, client: LoginClient, owner: RefreshOwner, scope: string, grantId: string, refreshed: boolean): Promise<void> {
    const access = await deps.sign({ clientId: client.id, scope, grantId, user: owner.user, groups: owner.groups });
    const now = deps.clock();
    // A registration that asked only for authorization_code gets no refresh token (RFC 7591 grant_types).
    const refresh = client.refresh ? mintRefreshToken() : null;
    if (refresh) {
      await deps.store.putRefreshToken(owner.user, refresh.hash, { grantId, issuedAt: now, scope, audience: deps.resource, expiresAt: now + deps.refreshTtlMs }, now);
      await deps.store.putTransient(refreshName(refresh.hash), JSON.stringify(owner), deps.refreshTtlMs);
    }
    await deps.clients.used(client);
    logEvent(ctx.log, refreshed ? 'token.refreshed' : 'token.issued', { clientId: client.id, jti: access.jti, grantId, address: ctx.clientAddress, grant: refreshed ? 'refresh_token' : 'authorization_code' });
    sendJson(ctx.res, 200, { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope, ...(refresh ? { refresh_token: refresh.token } : {}) }, NO_STORE);
  }

  return {
    /** True when a refresh token belongs to a person's grant (asked before machine client authentication). */
    async ownsRefreshToken(form: Form): Promise<boolean> {
      const token = form.get('refresh_token');
      return token !== undefined && isRefreshTokenShape(token) && (await deps.store.getTransient(refreshName(hashRefreshToken(token)))) !== null;
    },

    async authorizationCode(ctx: RequestContext, form: Form): Promise<void> {
      const client = await clientOf(ctx, form);
      const code = form.get('code') ?? '';
      const verifier = form.get('code_verifier') ?? '';
      if (!code || !VERIFIER.test(verifier)) throw new WardenError('OAUTH_INVALID_REQUEST', { description: 'code and a code_verifier (PKCE) are required' });
      const raw = await deps.store.takeTransient(codeName(code));
      if (raw === null) {
        // RFC 6749 §4.1.2: a code used twice revokes what it issued.
        const spent = await deps.store.getTransient(spentName(code));
        if (spent !== null) {
          const first = JSON.parse(spent) as { user: string; grantId: string };
          const by = { log: ctx.log, clientId: client.id, address: ctx.clientAddress };
          await deps.ender.revokeGrant(first.user, first.grantId, deps.refreshTtlMs, deps.clock(), by);
          await deps.ender.revokeGrant(first.user, appSessionGrant(client.id), deps.refreshTtlMs, deps.clock(), by);
          logEvent(ctx.log, 'refresh.reuse', { clientId: client.id, grantId: first.grantId, address: ctx.clientAddress, reason: 'code_replay' });
          throw new WardenError('OAUTH_INVALID_GRANT', { reason: 'reuse' });
        }
        throw new WardenError('OAUTH_INVALID_GRANT');
      }
      const grant = JSON.parse(raw) as CodeGrant;
      await deps.store.putTransient(spentName(code), JSON.stringify({ user: grant.user, grantId: grant.grantId }), SPENT_CODE_TTL_MS);
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const resource = form.get('resource');
      if (grant.clientId !== client.id || grant.redirectUri !== form.get('redirect_uri') || challenge !== grant.codeChallenge) throw new WardenError('OAUTH_INVALID_GRANT');
      if (resource !== undefined && resource.replace(/\/$/, '') !== deps.resource.replace(/\/$/, '')) throw new WardenError('OAUTH_INVALID_TARGET');
      await respond(ctx, client, { user: grant.user, clientId: client.id, groups: grant.groups }, grant.scope, grant.grantId, false);
    },

    async refreshToken(ctx: RequestContext, form: Form): Promise<void> {
      const client = await clientOf(ctx, form);
      const token = form.get('refresh_token') ?? '';
      const hash = hashRefreshToken(token);
      const ownerRaw = await deps.store.getTransient(refreshName(hash));
      const owner = ownerRaw === null ? null : (JSON.parse(ownerRaw) as RefreshOwner);
      if (!owner || owner.clientId !== client.id) throw new WardenError('OAUTH_INVALID_GRANT');
      const record = await redeemRefreshToken(ctx, deps, owner.user, hash, client.id);
      const asked = form.get('scope');
      const granted = record.scope.split(' ').filter(Boolean);
      // RFC 6749 §6: a refresh may narrow the scope, never widen it.
      const scopes = asked === undefined ? granted : asked.split(' ').filter(Boolean);
      if (!scopes.every((s) => granted.includes(s))) throw new WardenError('OAUTH_INVALID_SCOPE');
      await respond(ctx, client, owner, scopes.join(' '), record.grantId, true);
    },
  };
}
