/** Token and key operations for `mcp-warden token ...` and `keys rotate`, on the shared key ring and store. */
import type { SessionEnder } from '../session/end-session.js';
import { isUserPrincipal } from '../login/principal.js';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { createTokenSigner, createTokenVerifier, reasonOf } from '../auth/access-token.js';
import type { VerifyAccessToken } from '../auth/access-token.js';
import { createExternalIssuers } from '../auth/issuers.js';
import { createKeyRing } from '../auth/key-ring.js';
import type { KeyRing } from '../auth/key-ring.js';
import { claimGeneration } from '../store/generation.js';
import type { Store } from '../store/types.js';
import { AdminError, findClient, publicSite, revocationTtl } from './common.js';

async function keyRingFor(store: Store, config: Config, clock: () => number) {
  return createKeyRing({ store, algorithm: config.tokens.algorithm, configuredSecret: config.tokens.secret, clock, refreshIntervalMs: 0 });
}

/** An access token made by the CLI, with what the operator needs to know about it (never logged). */
export interface CliToken {
  readonly token: string;
  readonly clientId: string;
  readonly scope: string;
  readonly kid: string;
  readonly jti: string;
  readonly grantId: string;
  readonly expiresAt: number;
}

/** Signs an access token for a client with the key ring over `store` (init uses a memory store). */
export async function sign(store: Store, config: Config, claims: { clientId: string; scope: string }, ttlMs: number, clock: () => number): Promise<CliToken> {
  const site = publicSite(config);
  // A token belongs to the store's current life: an empty store begins one now, before it is signed.
  await claimGeneration({ store, clock });
  const keyRing = await keyRingFor(store, config, clock);
  try {
    const signer = createTokenSigner({ keyRing, issuer: site.issuer, audience: site.resource, accessTtlMs: ttlMs, clock });
    const grantId = randomBytes(16).toString('base64url');
    const issued = await signer({ ...claims, grantId });
    return { token: issued.token, clientId: claims.clientId, scope: claims.scope, kid: keyRing.signingKey().kid, jti: issued.jti, grantId, expiresAt: issued.expiresAt };
  } finally {
    keyRing.close();
  }
}

/**
 * Issues an access token for a client as the token endpoint would, signed with the shared key
 * ring. The scope must be a subset of the client's; the lifetime at most the longest this proxy
 * issues (so revocation records outlive it).
 */
export async function issueToken(store: Store, config: Config, input: { clientId: string; scopes?: readonly string[]; ttl?: string }, clock: () => number = Date.now): Promise<CliToken> {
  if (store.kind === 'memory' && config.tokens.secret === null) {
    throw new AdminError('MEMORY_STORE', 'with the memory store and no tokens.secret each proxy generates its own signing key: configure tokens.secret (the proxy\'s) or a Redis store');
  }
  const client = await findClient(store, config, input.clientId);
  if (!client) throw new AdminError('CLIENT_NOT_FOUND', `no client "${input.clientId}" in the config file or the store`);
  const asked = (input.scopes ?? []).flatMap((s) => s.split(' ')).filter(Boolean);
  const scopes = asked.length ? [...new Set(asked)] : [...client.scopes];
  const extra = scopes.filter((s) => !client.scopes.includes(s));
  if (extra.length) throw new AdminError('SCOPE_NOT_ALLOWED', `client "${client.id}" may not have scope ${extra.map((s) => `"${s}"`).join(', ')} (allowed: ${client.scopes.join(' ')})`);
  const maxTtl = Math.max(config.tokens.accessTtl, config.tokens.refreshTtl);
  const ttl = input.ttl === undefined ? config.tokens.accessTtl : parseDuration(input.ttl);
  if (ttl === null || ttl < 1000 || ttl > maxTtl) throw new AdminError('INVALID_ARGUMENT', `--ttl must be a duration from 1s to ${formatDuration(maxTtl)}, such as "15m"`);
  return sign(store, config, { clientId: client.id, scope: scopes.join(' ') }, ttl, clock);
}

/** What `token revoke` can target: one token, a jti or a grant of a client, or all of a client. */
export type RevokeTarget =
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'jti'; readonly clientId: string; readonly jti: string }
  | { readonly kind: 'grant'; readonly clientId: string; readonly grantId: string }
  | { readonly kind: 'client'; readonly clientId: string }
  /** A signed-in person (`u~<issuer tag>~<sub>`, as X-MCP-User shows it): every token and session, of every app. */
  | { readonly kind: 'user'; readonly user: string };

/** Describes what a revocation did, for the operator. */
export interface RevokeResult {
  readonly clientId: string;
  readonly what: RevokeTarget['kind'];
  readonly sessionsEnded: number;
  /** The token had already expired: nothing needed revoking. */
  readonly alreadyExpired: boolean;
}

/** Revokes a presented token, verified first (by the CLI's verifier, or the running proxy's), until its `exp`. */
export async function revokeVerifiedToken(store: Store, verify: VerifyAccessToken, token: string, clock: () => number, clockSkewMs: number): Promise<RevokeResult> {
  let identity;
  try {
    identity = await verify(token);
  } catch (err) {
    const reason = reasonOf(err);
    if (reason === 'expired') return { clientId: '', what: 'token', sessionsEnded: 0, alreadyExpired: true };
    throw new AdminError('TOKEN_INVALID', `not a token this proxy accepts (${reason})`);
  }
  if (identity.jti === null) throw new AdminError('TOKEN_INVALID', 'the token has no jti; revoke its client instead');
  // Until the token stops verifying: its `exp` plus the skew the verifier allows past it.
  await store.revokeToken(identity.principal, identity.jti, identity.expiresAtMs + clockSkewMs, clock());
  return { clientId: identity.clientId, what: 'token', sessionsEnded: 0, alreadyExpired: false };
}

async function revokePresentedToken(store: Store, config: Config, token: string, clock: () => number): Promise<RevokeResult> {
  const site = publicSite(config);
  const keyRing = await keyRingFor(store, config, clock);
  try {
    const external = createExternalIssuers(config.tokens.trustedIssuers, { clockSkewMs: config.tokens.clockSkew, clock });
    return await revokeVerifiedToken(store, createTokenVerifier({ keyRing, issuer: site.issuer, audience: site.resource, clockSkewMs: config.tokens.clockSkew, clock, external, cacheSize: 1 }), token, clock, config.tokens.clockSkew);
  } finally {
    keyRing.close();
  }
}

/**
 * Revokes a token (verified first, kept revoked until its `exp`), a jti or grant of a client, or
 * everything a client holds (tokens issued before now and all its sessions). Takes effect on
 * every replica at the next request: revocation is read from the store on each one.
 */
export async function revokeTokens(store: Store, ender: Pick<SessionEnder, 'revokeGrant' | 'revokePrincipal'>, config: Config, target: RevokeTarget, clock: () => number = Date.now): Promise<RevokeResult> {
  if (target.kind === 'token') return revokePresentedToken(store, config, target.token, clock);
  if (target.kind === 'user') {
    if (!isUserPrincipal(target.user)) throw new AdminError('INVALID_ARGUMENT', `"${target.user.slice(0, 80)}" is not a person's id (u~<issuer tag>~<subject>, as X-MCP-User shows it)`);
    return { clientId: target.user, what: 'user', alreadyExpired: false, sessionsEnded: await ender.revokePrincipal(target.user, clock(), revocationTtl(config)) };
  }
  if (!(await findClient(store, config, target.clientId))) throw new AdminError('CLIENT_NOT_FOUND', `no client "${target.clientId}" in the config file or the store`);
  const now = clock();
  const ttl = revocationTtl(config);
  const base = { clientId: target.clientId, what: target.kind, alreadyExpired: false };
  switch (target.kind) {
    case 'jti':
      // The token's exp is unknown here: keep the record as long as any token can live.
      await store.revokeToken(target.clientId, target.jti, now + ttl, now);
      return { ...base, sessionsEnded: 0 };
    case 'grant':
      return { ...base, sessionsEnded: await ender.revokeGrant(target.clientId, target.grantId, ttl, now) };
    case 'client':
      return { ...base, sessionsEnded: await ender.revokePrincipal(target.clientId, now, ttl) };
    default: {
      const never: never = target;
      throw new Error(`unknown revocation target ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Removes a key that no longer signs from the shared ring: tokens it signed stop verifying (other
 * replicas within their refresh interval). The signing key itself is refused: rotate first.
 */
export async function retireKey(store: Store, keyRing: Pick<KeyRing, 'signingKey' | 'refresh'>, kid: string): Promise<void> {
  if (keyRing.signingKey().kid === kid) throw new AdminError('CONFLICT', `key ${kid} signs new tokens: rotate first, then retire it`);
  if (!(await store.deleteKey(kid))) throw new AdminError('NOT_FOUND', `no key ${kid} in the shared ring`);
  await keyRing.refresh();
}

/** The same from the CLI, on the shared store. */
export async function retireKeyInStore(store: Store, config: Config, kid: string, clock: () => number = Date.now): Promise<void> {
  const keyRing = await keyRingFor(store, config, clock);
  try {
    await retireKey(store, keyRing, kid);
  } finally {
    keyRing.close();
  }
}

/**
 * Adds a new signing key to the shared ring; it signs from now on, older keys keep verifying.
 * Replicas pick it up within their refresh interval (30 s) or on the first token with its kid.
 */
export async function rotateKeys(store: Store, config: Config, clock: () => number = Date.now): Promise<{ kid: string; alg: string }> {
  const keyRing = await keyRingFor(store, config, clock);
  try {
    const key = await keyRing.rotate();
    return { kid: key.kid, alg: key.alg };
  } finally {
    keyRing.close();
  }
}

