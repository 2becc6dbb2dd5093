import { createHash, randomBytes } from 'node:crypto';

const SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** A new opaque refresh token (256 random bits) and the SHA-256 the store keeps instead of it. */
export function mintRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** True when a presented value could be one of our refresh tokens (anything else is not looked up). */
export function isRefreshTokenShape(value: string): boolean {
  return SHAPE.test(value);
}
