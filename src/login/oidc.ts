import * as oidc from 'openid-client';
import type { Config } from '../config/schema.js';
import { WardenError } from '../errors.js';
import { userPrincipal } from './principal.js';

/** Who signed in, as the identity provider's ID token says. */
export interface SignedIn {
  /** The person's principal: issuer-qualified, never equal to a client id (clients have no "~"). */
  readonly user: string;
  readonly groups: readonly string[];
}

/** What a login in progress keeps for its return from the provider. */
export interface ProviderRound {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

/** The relying party side of sign-in: sends people to the provider, checks what they bring back. */
export interface OidcLogin {
  /** A fresh round (state, nonce, PKCE verifier) and the provider URL that starts it. */
  start(redirectUri: string, state: string): Promise<{ url: URL; round: ProviderRound }>;
  /** Redeems the provider's code at its token endpoint and validates the ID token (issuer, audience, nonce, state). */
  finish(callbackUrl: URL, round: ProviderRound): Promise<SignedIn>;
}

/** The provider, discovered on first use (and again after a failure), never at startup: a slow IdP must not stop the proxy. */
export function createOidcLogin(config: Config['login']['oidc']): OidcLogin {
  const issuer = config.issuer ?? '';
  const loopbackHttp = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(issuer);
  let discovered: Promise<oidc.Configuration> | null = null;
  const configuration = (): Promise<oidc.Configuration> => {
    discovered ??= oidc.discovery(new URL(issuer), config.clientId ?? '', config.clientSecret ?? undefined, config.clientSecret ? undefined : oidc.None(), loopbackHttp ? { execute: [oidc.allowInsecureRequests] } : undefined)
      .catch((err: unknown) => {
        discovered = null;
        throw new WardenError('UPSTREAM_UNAVAILABLE', { reason: 'refused', description: 'The identity provider could not be reached', cause: err });
      });
    return discovered;
  };
  return {
    async start(redirectUri, state) {
      const provider = await configuration();
      const round = { state, nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() };
      const url = oidc.buildAuthorizationUrl(provider, {
        redirect_uri: redirectUri, scope: config.scopes.join(' '), state, nonce: round.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(round.codeVerifier), code_challenge_method: 'S256',
      });
      return { url, round };
    },
    async finish(callbackUrl, round) {
      const provider = await configuration();
      let claims: oidc.IDToken | undefined;
      let raw: unknown;
      try {
        const tokens = await oidc.authorizationCodeGrant(provider, callbackUrl, { pkceCodeVerifier: round.codeVerifier, expectedState: round.state, expectedNonce: round.nonce, idTokenExpected: true });
        claims = tokens.claims();
        raw = config.groupsClaim && claims ? claims[config.groupsClaim] : undefined;
        // Providers that keep the ID token small (OpenID Connect Core §5.4) give groups at userinfo.
        if (config.groupsClaim && claims && raw === undefined) raw = (await oidc.fetchUserInfo(provider, tokens.access_token, claims.sub))[config.groupsClaim];
      } catch (err) {
        throw new WardenError('LOGIN_FAILED', { description: 'The identity provider\'s answer did not check out', cause: err });
      }
      if (!claims?.sub) throw new WardenError('LOGIN_FAILED', { description: 'The identity provider named no subject' });
      const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string').slice(0, 100) : [];
      return { user: userPrincipal(claims.iss, claims.sub), groups };
    },
  };
}
