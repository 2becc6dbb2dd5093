import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const RANDOM_BYTES = 32;
const TAG_BYTES = 12;
// base64url of 44 bytes: visible ASCII only, as MCP requires of session ids. 44 bytes leave the
// last character 2 unused bits, which must be zero: otherwise 4 spellings decode to one id.
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

/** Store key: a 128-bit prefix of the random part; the id itself is never stored. */
function keyOf(random: Buffer): string {
  return random.subarray(0, 16).toString('base64url');
}

export function createSessionIds(secret: Uint8Array): SessionIds {
  const tag = (principal: string, random: Buffer): Buffer => createHmac('sha256', secret).update(principal).update('\0').update(random).digest().subarray(0, TAG_BYTES);
  return {
    mint(principal) {
      const random = randomBytes(RANDOM_BYTES);
      return { id: Buffer.concat([random, tag(principal, random)]).toString('base64url'), key: keyOf(random) };
    },
    check(id, principal) {
      if (!SHAPE.test(id)) return null;
      const bytes = Buffer.from(id, 'base64url');
      const random = bytes.subarray(0, RANDOM_BYTES);
      return timingSafeEqual(bytes.subarray(RANDOM_BYTES), tag(principal, random)) ? keyOf(random) : null;
    },
  };
}
