import { createHash } from 'node:crypto';

const SAFE_SUBJECT = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The principal of a person: `u~<issuer tag>~<subject>`. A subject outside the safe set is stored
 * as `#` + its hash: `#` never occurs in a safe subject, so a raw and a hashed one never collide.
 */
export function userPrincipal(issuer: string, sub: string): string {
  const tag = createHash('sha256').update(issuer).digest('base64url').slice(0, 6);
  const subject = SAFE_SUBJECT.test(sub) ? sub : `#${createHash('sha256').update(sub).digest('base64url').slice(0, 22)}`;
  return `u~${tag}~${subject}`;
}

/**
 * What a person's session is bound to besides the person: the client app, not one sign-in. The
 * same person re-authorizing the same app (a wider scope for step-up, or after a token ran out)
 * keeps their sessions; another app, or another person in the same app, does not see them.
 * Stored where a machine session keeps its grant id, whose record keeps only a short prefix: so
 * the value is a hash of the app, as random-looking in its first characters as a grant id is
 * (app ids such as URLs share long prefixes).
 */
export function appSessionGrant(clientId: string): string {
  return createHash('sha256').update(`app\0${clientId}`).digest('base64url').slice(0, 22);
}

/** True for principals made by {@link userPrincipal}. */
export function isUserPrincipal(principal: string): boolean {
  return /^u~[A-Za-z0-9_-]{6}~(#[A-Za-z0-9_-]{22}|[A-Za-z0-9._-]{1,64})$/.test(principal);
}
