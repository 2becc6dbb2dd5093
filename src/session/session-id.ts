import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { SecretStore } from '../store/types.js';

const RANDOM_BYTES = 32;
const TAG_BYTES = 12;
// base64url of 44 bytes: visible ASCII only, as MCP requires of session ids. 59 characters carry
// 354 bits, so the last one has 2 unused bits: only the canonical spelling (those bits zero) is
// accepted, or one session would answer to 4 different ids.
const SHAPE = /^[A-Za-z0-9_-]{58}[AEIMQUYcgkosw048]$/;

/** A proxy session id and the store key derived from it. */
export interface MintedId {
  readonly id: string;
  readonly key: string;
}

export interface SessionIds {
  /** Mints a proxy session id for a principal: 32 random bytes plus an HMAC tag over both. */
  mint(principal: string): MintedId;
  /**
   * The store key of a presented id, or null when its shape or tag is wrong. The tag covers the
   * principal, so an id minted for another client fails here, before any store lookup.
   */
  check(id: string, principal: string): string | null;
}

/**
 * Store key: a 96-bit prefix of the random part; the id itself is never stored. Keys only have to
 * be unique among one principal's sessions (they live under its hash tag), and every byte counts
 * twice per session in Redis (the record's key and the index member).
 */
function keyOf(random: Buffer): string {
  return random.subarray(0, 12).toString('base64url');
}

/** Checked ids remembered (bounded), so a busy session costs a Map lookup instead of an HMAC. */
const CHECKED_CACHE_SIZE = 10_000;

export function createSessionIds(secret: Uint8Array): SessionIds {
  const tag = (principal: string, random: Buffer): Buffer => createHmac('sha256', secret).update(principal).update('\0').update(random).digest().subarray(0, TAG_BYTES);
  // Only ids that passed are remembered, keyed with their principal: a miss always runs the HMAC.
  const checked = new Map<string, string>();
  return {
    mint(principal) {
      const random = randomBytes(RANDOM_BYTES);
      return { id: Buffer.concat([random, tag(principal, random)]).toString('base64url'), key: keyOf(random) };
    },
    check(id, principal) {
      const cacheKey = `${principal}\0${id}`;
      const known = checked.get(cacheKey);
      if (known !== undefined) return known;
      if (!SHAPE.test(id)) return null;
      const bytes = Buffer.from(id, 'base64url');
      const random = bytes.subarray(0, RANDOM_BYTES);
      if (!timingSafeEqual(bytes.subarray(RANDOM_BYTES), tag(principal, random))) return null;
      const key = keyOf(random);
      if (checked.size >= CHECKED_CACHE_SIZE) checked.delete(checked.keys().next().value ?? '');
      checked.set(cacheKey, key);
      return key;
    },
  };
}

/**
 * The secret behind proxy session id tags. Every replica and the CLI must agree on it: derived
 * (HKDF) from the configured signing secret when there is one, else generated once and shared
 * through the store (the first writer wins; with the memory store it is per process).
 */
export async function sessionIdSecret(config: Pick<Config, 'tokens'>, store: SecretStore): Promise<Uint8Array> {
  if (config.tokens.secret !== null) return new Uint8Array(hkdfSync('sha256', config.tokens.secret, 'mcp-warden', 'session-id-tag', 32));
  const shared = await store.initSecret('session-id', randomBytes(32).toString('base64url'));
  return Buffer.from(shared, 'base64url');
}
