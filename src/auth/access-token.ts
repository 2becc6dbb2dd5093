import { randomBytes } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';
import type { JWTPayload } from 'jose';
import type { Identity } from '../context.js';
import { WardenError } from '../errors.js';
import type { RefusalReason } from '../errors.js';
import type { KeyRing } from './key-ring.js';
import type { ExternalIssuers } from './issuers.js';
import { isUserPrincipal } from '../login/principal.js';

/** RFC 9068 §2.1: access tokens in JWT form carry this `typ`. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

export interface IssuedToken {
  readonly token: string;
  readonly jti: string;
  readonly expiresAt: number;
  /** Lifetime in whole seconds, as `expires_in` reports it. */
  readonly expiresIn: number;
}

export interface TokenClaims {
  readonly clientId: string;
  readonly scope: string;
  readonly grantId: string;
  /** A person's token (interactive sign-in): the person is the subject, the client app `client_id`. */
  readonly user?: string;
  readonly groups?: readonly string[];
}

/** Signs RFC 9068 access tokens with the key ring's newest key. */
export function createTokenSigner(deps: { keyRing: KeyRing; issuer: string; audience: string; accessTtlMs: number; clock: () => number }) {
  return async function signAccessToken(claims: TokenClaims, ttlMs = deps.accessTtlMs): Promise<IssuedToken> {
    const key = deps.keyRing.signingKey();
    const issuedAt = Math.floor(deps.clock() / 1000);
    const expiresIn = Math.ceil(ttlMs / 1000);
    const jti = randomBytes(16).toString('base64url');
    const payload: JWTPayload = { scope: claims.scope, client_id: claims.clientId, gid: claims.grantId };
    if (claims.groups && claims.groups.length > 0) payload.groups = claims.groups;
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: key.alg, typ: ACCESS_TOKEN_TYPE, kid: key.kid })
      .setIssuer(deps.issuer)
      .setSubject(claims.user ?? claims.clientId)
      .setAudience(deps.audience)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + expiresIn)
      .setJti(jti)
      .sign(key.sign);
    return { token, jti, expiresAt: (issuedAt + expiresIn) * 1000, expiresIn };
  };
}

/** Maps jose's failures to our closed set of reasons (a metrics label too). */
export function reasonOf(err: unknown): RefusalReason {
  if (err instanceof WardenError) return err.detail.reason ?? 'malformed';
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    const byClaim: Record<string, RefusalReason> = { nbf: 'not_yet_valid', iat: 'not_yet_valid', iss: 'issuer', aud: 'audience', typ: 'type' };
    return byClaim[err.claim] ?? 'claims';
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return 'algorithm';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return 'issuer_unreachable';
  return 'malformed';
}

function invalid(reason: RefusalReason, cause?: unknown): WardenError {
  return new WardenError('TOKEN_INVALID', { reason, cause });
}

function scopesOf(payload: JWTPayload): string[] | null {
  if (typeof payload.scope === 'string') return payload.scope.split(' ').filter(Boolean);
  if (Array.isArray(payload.scp) && payload.scp.every((s) => typeof s === 'string')) return payload.scp as string[];
  return null;
}

export interface VerifierDeps {
  readonly keyRing: KeyRing;
  readonly issuer: string;
  readonly audience: string;
  readonly clockSkewMs: number;
  readonly clock: () => number;
  readonly external: ExternalIssuers | null;
  /** Verified tokens remembered (bounded), so a hot client costs a Map lookup, not a signature check. */
  readonly cacheSize: number;
}

/**
 * Verifies a bearer token: one of ours (RFC 9068, key by `kid`, algorithm pinned to the key's) or
 * one from a trusted issuer. Throws TOKEN_INVALID with a reason; never trusts the token's `alg`.
 */
export function createTokenVerifier(deps: VerifierDeps) {
  const cache = new Map<string, Identity>();
  const skewSeconds = Math.ceil(deps.clockSkewMs / 1000);

  async function verifyOwn(token: string, kid: unknown): Promise<Identity> {
    if (typeof kid !== 'string') throw invalid('unknown_key');
    const key = await deps.keyRing.verificationKey(kid);
    if (!key) throw invalid('unknown_key');
    const { payload } = await jwtVerify(token, key.verify, {
      algorithms: [key.alg],
      issuer: deps.issuer,
      audience: deps.audience,
      typ: ACCESS_TOKEN_TYPE,
      clockTolerance: skewSeconds,
      currentDate: new Date(deps.clock()),
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'gid'],
    });
    // jose checks `iat` only with maxTokenAge: a token "issued" in the future would outlive a client cut-off.
    if ((payload.iat ?? 0) > Math.floor(deps.clock() / 1000) + skewSeconds) throw invalid('not_yet_valid');
    const scopes = scopesOf(payload);
    if (typeof payload.client_id !== 'string' || typeof payload.sub !== 'string' || typeof payload.gid !== 'string' || scopes === null) throw invalid('claims');
    // A machine client is its own subject; a person's token names the person (never a client id).
    const user = payload.sub === payload.client_id ? null : isUserPrincipal(payload.sub) ? payload.sub : undefined;
    if (user === undefined) throw invalid('claims');
    return {
      clientId: payload.client_id,
      principal: user ?? payload.client_id,
      scopes,
      grantId: payload.gid,
      jti: payload.jti ?? null,
      issuedAtMs: (payload.iat ?? 0) * 1000,
      expiresAtMs: (payload.exp ?? 0) * 1000,
      issuer: 'self',
      user,
      groups: Array.isArray(payload.groups) ? payload.groups.filter((g): g is string => typeof g === 'string') : [],
      claims: payload,
    };
  }

  async function verifyUncached(token: string): Promise<Identity> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch (err) {
      throw invalid('malformed', err);
    }
    // `alg: none` and anything unsigned never reach a key.
    if (typeof header.alg !== 'string' || header.alg.toLowerCase() === 'none') throw invalid('algorithm');
    if (claims.iss === deps.issuer) return verifyOwn(token, header.kid);
    if (deps.external && typeof claims.iss === 'string' && deps.external.has(claims.iss)) return deps.external.verify(token, claims.iss);
    throw invalid('issuer');
  }

  async function verifyAndRemember(token: string): Promise<Identity> {
    let identity: Identity;
    try {
      identity = await verifyUncached(token);
    } catch (err) {
      if (err instanceof WardenError) throw err;
      throw invalid(reasonOf(err), err);
    }
    if (cache.size >= deps.cacheSize) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(token, identity);
    return identity;
  }

  /**
   * A token seen before (and not yet expired) is answered synchronously, not as a promise: the
   * hot path then spends no microtask turn on a Map lookup. Callers await either.
   */
  return function verifyAccessToken(token: string): Identity | Promise<Identity> {
    const cached = cache.get(token);
    if (cached && cached.expiresAtMs + deps.clockSkewMs > deps.clock()) return cached;
    if (cached) cache.delete(token);
    return verifyAndRemember(token);
  };
}

export type VerifyAccessToken = ReturnType<typeof createTokenVerifier>;
export type SignAccessToken = ReturnType<typeof createTokenSigner>;
