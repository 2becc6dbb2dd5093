import { createHash } from 'node:crypto';

/** A 12-character SHA-256 prefix of an id: enough to correlate log lines, useless to an attacker. */
export function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 12);
}
