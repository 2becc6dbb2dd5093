import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

// Format: scrypt$<log2 N>$<r>$<p>$<salt base64url>$<hash base64url>. Parameters travel with the
// hash so they can be raised later without invalidating stored secrets.
const FORMAT = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{43})$/;
const LOG_N = 15;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

function derive(secret: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_LENGTH, { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** True when `value` looks like a hash made by {@link hashSecret}. */
export function isSecretHash(value: string): boolean {
  const match = FORMAT.exec(value);
  return match !== null && Number(match[1]) >= 10 && Number(match[1]) <= 20;
}

/** Hashes a client secret with scrypt and a random salt. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(secret, salt, LOG_N, R, P);
  return `scrypt$${LOG_N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Checks a presented secret against a stored hash in constant time; false for any malformed hash. */
export async function verifySecret(secret: string, hash: string): Promise<boolean> {
  const match = FORMAT.exec(hash);
  if (!match || !isSecretHash(hash)) return false;
  const [, logN, r, p, salt, expected] = match;
  const key = await derive(secret, Buffer.from(salt ?? '', 'base64url'), Number(logN), Number(r), Number(p));
  const want = Buffer.from(expected ?? '', 'base64url');
  return want.length === key.length && timingSafeEqual(key, want);
}
