import { createHash } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Identity } from '../context.js';
import type { IssuerConfig } from '../config/schema.js';
import { WardenError } from '../errors.js';

/** Asymmetric algorithms only: a JWKS holds public keys, and an HMAC "signed" with one proves nothing. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const SAFE_SUBJECT = /^[A-Za-z0-9._~@-]{1,64}$/;

export interface ExternalIssuers {
  has(issuer: string): boolean;
  /** Verifies a token of a trusted issuer through its JWKS; throws TOKEN_INVALID. */
  verify(token: string, issuer: string): Promise<Identity>;
}

/**
 * Identity providers whose JWTs are accepted (`tokens.trustedIssuers`). Keys come from each
 * provider's JWKS, fetched on demand and cached by jose; `sub` becomes the identity.
 */
export function createExternalIssuers(configs: readonly IssuerConfig[], deps: { clockSkewMs: number; clock: () => number }): ExternalIssuers | null {
  if (configs.length === 0) return null;
  const byIssuer = new Map(
    configs.map((c, index) => [c.issuer, { config: c, index, types: new Set(c.types.map(normalizeType)), keys: createRemoteJWKSet(new URL(c.jwksUri), { cacheMaxAge: 600_000, cooldownDuration: 30_000, timeoutDuration: 5_000 }) }]),
  );
  return {
    has: (issuer) => byIssuer.has(issuer),
    verify: async (token, issuer) => {
      const entry = byIssuer.get(issuer);
      if (!entry) throw new WardenError('TOKEN_INVALID', { reason: 'issuer' });
      const { payload, protectedHeader } = await jwtVerify(token, entry.keys, {
        algorithms: ALGORITHMS,
        issuer: entry.config.issuer,
        audience: entry.config.audience,
        clockTolerance: Math.ceil(deps.clockSkewMs / 1000),
        currentDate: new Date(deps.clock()),
        requiredClaims: ['iss', 'sub', 'aud', 'exp'],
      });
      if (!entry.types.has(normalizeType(protectedHeader.typ))) throw new WardenError('TOKEN_INVALID', { reason: 'type' });
      const sub = payload.sub ?? '';
      // The subject goes into an upstream header: visible ASCII only, bounded.
      if (!/^[\x21-\x7e]{1,256}$/.test(sub)) throw new WardenError('TOKEN_INVALID', { reason: 'claims' });
      const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean)
        : Array.isArray(payload.scp) && payload.scp.every((s) => typeof s === 'string') ? (payload.scp as string[])
        : [...entry.config.scopes];
      // Scopes go into an upstream header too: RFC 6749 §3.3 scope tokens only.
      if (!scopes.every((s) => /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/.test(s))) throw new WardenError('TOKEN_INVALID', { reason: 'claims' });
      // The store namespace is per issuer, so an IdP subject can never share sessions or limits
      // with a local client of the same name; odd subjects are hashed into a safe key.
      // A hashed subject starts with "#", which no safe subject contains: a subject that spells
      // another's hash can never become that identity.
      const subjectKey = SAFE_SUBJECT.test(sub) ? sub : `#${createHash('sha256').update(sub).digest('base64url').slice(0, 22)}`;
      return {
        clientId: sub,
        principal: `idp${entry.index}~${subjectKey}`,
        scopes,
        grantId: null,
        jti: typeof payload.jti === 'string' ? payload.jti : null,
        issuedAtMs: (payload.iat ?? 0) * 1000,
        expiresAtMs: (payload.exp ?? 0) * 1000,
        issuer,
        user: null,
        groups: groupsOf(payload.groups),
        claims: payload,
      };
    },
  };
}

/** RFC 8725 §3.11: `typ` compared case-insensitively, "application/" optional. */
function normalizeType(typ: string | undefined): string {
  return (typ ?? '').toLowerCase().replace(/^application\//, '');
}

/** An external token's `groups` claim: strings only, anything else is no groups. */
function groupsOf(claim: unknown): readonly string[] {
  return Array.isArray(claim) ? claim.filter((g): g is string => typeof g === 'string') : [];
}
