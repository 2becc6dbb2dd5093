import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { escapeHtml, sendPage } from '../http/reply.js';
import { logEvent } from '../observability/events.js';
import { redirectUriMatches } from '../login/clients.js';
import type { LoginClient, LoginClients } from '../login/clients.js';
import type { OidcLogin, ProviderRound } from '../login/oidc.js';
import type { TransientStore } from '../store/types.js';
import { readForm } from './client-auth.js';

/**
 * Interactive sign-in (DESIGN §11): mcp-warden is the OAuth 2.1 authorization server MCP clients
 * see, and hands the person's login to the organisation's OpenID Connect provider.
 *
 *   client → GET /oauth/authorize → provider login → GET /oauth/callback → consent page
 *   → POST /oauth/consent → client's redirect_uri?code&state&iss → POST /oauth/token
 *
 * The login in progress lives in the store (replicas share it) under a random id, bound to the
 * browser by a cookie: a callback or consent from another browser finds nothing.
 */

/** A sign-in in progress, from the authorize request until the code is issued. */
interface PendingLogin {
  readonly clientId: string;
  readonly redirectUri: string;
  /** The client's state, returned to it untouched. */
  readonly state: string | null;
  readonly codeChallenge: string;
  readonly scope: string | null;
  readonly provider: ProviderRound;
  /** Set once the provider vouched for the person. */
  user?: string;
  groups?: readonly string[];
  scopes?: readonly string[];
  /** Anti-CSRF token of the consent form. */
  csrf?: string;
}

/** What an authorization code stands for; kept under the code's hash, taken once. */
export interface CodeGrant {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly user: string;
  readonly groups: readonly string[];
  readonly scope: string;
  readonly grantId: string;
}

export interface AuthorizeDeps {
  readonly login: Config['login'];
  readonly clients: LoginClients;
  readonly oidc: OidcLogin;
  readonly store: TransientStore;
  /** The public MCP URL: the only RFC 8707 resource, and the tokens' audience. */
  readonly resource: string;
  readonly origin: string;
  /** RFC 9207 `iss` of authorization responses. */
  readonly issuer: string;
}

const PKCE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const STATE_MAX = 512;

export const codeName = (code: string): string => `code:${createHash('sha256').update(code).digest('base64url')}`;
const loginName = (id: string): string => `login:${id}`;
const consentName = (user: string, clientId: string): string => `consent:${createHash('sha256').update(`${user}\0${clientId}`).digest('base64url')}`;

/** The browser-binding cookie: `__Host-` wherever it can be (it needs Secure, so not on plain-http loopback). */
function cookieName(origin: string): string {
  return origin.startsWith('https:') ? '__Host-mcpw-login' : 'mcpw-login';
}

function readCookie(ctx: RequestContext, name: string): string | null {
  for (const part of String(ctx.req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return null;
}

/** The CSP source of a redirect URI: its origin, or its scheme for an app's own (`vscode:`). */
function redirectSource(uri: string): string {
  const url = new URL(uri);
  return url.origin !== 'null' ? url.origin : url.protocol;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function authorizeEndpoints(deps: AuthorizeDeps) {
  const cookie = cookieName(deps.origin);
  const secure = deps.origin.startsWith('https:');
  const callbackUrl = `${deps.origin}/oauth/callback`;

  /** Sends the browser back to the client with a result (RFC 6749 §4.1.2, RFC 9207 `iss`). */
  function redirectBack(ctx: RequestContext, pending: Pick<PendingLogin, 'redirectUri' | 'state'>, params: Record<string, string>): void {
    const target = new URL(pending.redirectUri);
    for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
    if (pending.state !== null) target.searchParams.set('state', pending.state);
    target.searchParams.set('iss', deps.issuer);
    ctx.res.writeHead(302, { location: target.href, 'cache-control': 'no-store', 'set-cookie': `${cookie}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}` });
    ctx.res.end();
  }

  /** The client and redirect URI, checked before anything may be redirected to it. */
  async function clientOf(query: URLSearchParams): Promise<{ client: LoginClient; redirectUri: string }> {
    const client = await deps.clients.find(query.get('client_id') ?? '');
    const redirectUri = query.get('redirect_uri') ?? '';
    if (!client || !redirectUriMatches(client.redirectUris, redirectUri)) throw new WardenError('AUTHORIZE_REFUSED');
    return { client, redirectUri };
  }

  async function issueCode(ctx: RequestContext, id: string, pending: PendingLogin): Promise<void> {
    const code = randomBytes(32).toString('base64url');
    const grant: CodeGrant = {
      clientId: pending.clientId, redirectUri: pending.redirectUri, codeChallenge: pending.codeChallenge,
      user: pending.user ?? '', groups: pending.groups ?? [], scope: (pending.scopes ?? []).join(' '), grantId: randomBytes(16).toString('base64url'),
    };
    await deps.store.putTransient(codeName(code), JSON.stringify(grant), deps.login.codeTtl);
    await deps.store.takeTransient(loginName(id));
    logEvent(ctx.log, 'login.completed', { clientId: pending.clientId, address: ctx.clientAddress });
    redirectBack(ctx, pending, { code });
  }

  function consentPage(ctx: RequestContext, client: LoginClient, pending: PendingLogin): void {
    const redirectHost = new URL(pending.redirectUri).host || new URL(pending.redirectUri).protocol;
    const scopes = (pending.scopes ?? []).map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join('');
    sendPage(ctx.res, 200, 'Allow access?', `<h1>Allow ${escapeHtml(client.name ?? client.id)} to use this MCP server as you?</h1>
<div class="box"><p><strong>${escapeHtml(client.name ?? client.id)}</strong> (client id <code>${escapeHtml(client.id)}</code>) asks for:</p><ul>${scopes}</ul>${provenance(client)}
<p>After you allow it, you will be sent to <strong>${escapeHtml(redirectHost)}</strong>.</p><p class="code">Resource: ${escapeHtml(deps.resource)}</p></div>
<form method="post" action="/oauth/consent"><input type="hidden" name="csrf" value="${escapeHtml(pending.csrf ?? '')}">
<button class="approve" name="decision" value="allow" type="submit">Allow</button><button class="deny" name="decision" value="deny" type="submit">Deny</button></form>`, {}, redirectSource(pending.redirectUri));
  }

  /**
   * Who vouches for the app (MCP security best practices, "confused deputy"): a configured app is
   * the operator's; a registered one named itself, so its name is a claim; a metadata document's
   * app is known by the site that publishes it.
   */
  function provenance(client: LoginClient): string {
    const site = client.uri && URL.canParse(client.uri) ? ` Its web page: <strong>${escapeHtml(new URL(client.uri).host)}</strong>.` : '';
    if (client.kind === 'registered') return `<p class="warn">This app registered itself; its name is its own claim, not checked by this server.${site}</p>`;
    if (client.kind === 'metadata') return `<p class="warn">This app is described by <strong>${escapeHtml(new URL(client.id).host)}</strong>; its name is that site's claim.${site}</p>`;
    return '';
  }

  /** The scopes the person may have: everyone's, plus their groups' (login.scopeMap). */
  function allowedScopes(groups: readonly string[]): string[] {
    const extra = deps.login.scopeMap.filter((m) => groups.includes(m.group)).flatMap((m) => m.scopes);
    return [...new Set([...deps.login.scopes, ...extra])];
  }

  /** The login in progress of this browser: the cookie must name it. */
  async function pendingOf(ctx: RequestContext, expectedId: string | null): Promise<{ id: string; pending: PendingLogin }> {
    const id = readCookie(ctx, cookie);
    if (!id || !/^[A-Za-z0-9_-]{32}$/.test(id) || (expectedId !== null && !safeEqual(id, expectedId))) throw new WardenError('LOGIN_STATE_INVALID');
    const raw = await deps.store.getTransient(loginName(id));
    if (raw === null) throw new WardenError('LOGIN_STATE_INVALID');
    return { id, pending: JSON.parse(raw) as PendingLogin };
  }

  return {
    /** GET /oauth/authorize */
    async authorize(ctx: RequestContext): Promise<void> {
      const query = new URL(ctx.req.url ?? '/', 'http://x').searchParams;
      const { client, redirectUri } = await clientOf(query);
      const state = query.get('state');
      const back = { redirectUri, state: state !== null && state.length <= STATE_MAX ? state : null };
      const refuse = (error: string, description: string): void => {
        logEvent(ctx.log, 'token.refused', { reason: error, clientId: client.id, address: ctx.clientAddress });
        redirectBack(ctx, back, { error, error_description: description });
      };
      if (state !== null && state.length > STATE_MAX) return refuse('invalid_request', 'state is too long');
      if (query.get('response_type') !== 'code') return refuse('unsupported_response_type', 'only response_type=code');
      const challenge = query.get('code_challenge') ?? '';
      // OAuth 2.1: PKCE always, S256 only (plain would hand the verifier to whoever sees the request).
      if (query.get('code_challenge_method') !== 'S256' || !PKCE_CHALLENGE.test(challenge)) return refuse('invalid_request', 'PKCE with code_challenge_method=S256 is required');
      const resource = query.get('resource');
      if (resource !== null && resource.replace(/\/$/, '') !== deps.resource.replace(/\/$/, '')) return refuse('invalid_target', 'resource must be this server\'s MCP URL');
      const id = randomBytes(24).toString('base64url');
      const { url, round } = await deps.oidc.start(callbackUrl, id);
      const pending: PendingLogin = { clientId: client.id, redirectUri, state: back.state, codeChallenge: challenge, scope: query.get('scope'), provider: round };
      await deps.store.putTransient(loginName(id), JSON.stringify(pending), deps.login.loginTtl);
      logEvent(ctx.log, 'login.started', { clientId: client.id, address: ctx.clientAddress });
      ctx.res.writeHead(302, {
        location: url.href,
        'cache-control': 'no-store',
        'set-cookie': `${cookie}=${id}; Path=/; Max-Age=${Math.ceil(deps.login.loginTtl / 1000)}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
      });
      ctx.res.end();
    },

    /** GET /oauth/callback: the provider sends the person back here. */
    async callback(ctx: RequestContext): Promise<void> {
      const url = new URL(ctx.req.url ?? '/', deps.origin);
      const { id, pending } = await pendingOf(ctx, url.searchParams.get('state'));
      if (url.searchParams.has('error')) {
        await deps.store.takeTransient(loginName(id));
        return redirectBack(ctx, pending, { error: 'access_denied', error_description: 'The sign-in was not completed' });
      }
      const person = await deps.oidc.finish(url, pending.provider);
      const allowed = allowedScopes(person.groups);
      const asked = pending.scope === null ? allowed : pending.scope.split(' ').filter(Boolean);
      if (asked.length === 0 || !asked.every((s) => allowed.includes(s))) {
        await deps.store.takeTransient(loginName(id));
        return redirectBack(ctx, pending, { error: 'invalid_scope', error_description: 'You may not have the requested scope' });
      }
      const signedIn: PendingLogin = { ...pending, user: person.user, groups: person.groups, scopes: asked, csrf: randomBytes(24).toString('base64url') };
      const client = await deps.clients.find(pending.clientId);
      if (!client) throw new WardenError('AUTHORIZE_REFUSED');
      const remembered = deps.login.consent === 'remember' ? await deps.store.getTransient(consentName(person.user, client.id)) : null;
      if (remembered !== null && asked.every((s) => remembered.split(' ').includes(s))) return issueCode(ctx, id, signedIn);
      await deps.store.putTransient(loginName(id), JSON.stringify(signedIn), deps.login.loginTtl);
      consentPage(ctx, client, signedIn);
    },

    /** POST /oauth/consent: the person's answer on the consent page. */
    async consent(ctx: RequestContext): Promise<void> {
      const form = await readForm(ctx);
      const { id, pending } = await pendingOf(ctx, null);
      // The form's token must be the one this browser's login was given: a form posted from
      // another site (CSRF) has the cookie but not the token.
      if (!pending.user || !pending.csrf || !safeEqual(form.get('csrf') ?? '', pending.csrf)) throw new WardenError('CONSENT_INVALID');
      if (form.get('decision') !== 'allow') {
        await deps.store.takeTransient(loginName(id));
        logEvent(ctx.log, 'login.denied', { clientId: pending.clientId, address: ctx.clientAddress });
        return redirectBack(ctx, pending, { error: 'access_denied', error_description: 'Access was denied' });
      }
      if (deps.login.consent === 'remember') await deps.store.putTransient(consentName(pending.user, pending.clientId), (pending.scopes ?? []).join(' '), deps.login.consentTtl);
      return issueCode(ctx, id, pending);
    },
  };
}
