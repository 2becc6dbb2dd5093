import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { addressPrefix } from '../http/headers.js';

export interface FingerprintInput {
  readonly userAgent: string | undefined;
  readonly address: string;
}

/**
 * The optional binding of a session beyond its client (`sessions.bindTo`): a hash of the user agent
 * and/or the address prefix. Empty when sessions are bound to the client only.
 */
export function createFingerprint(sessions: Config['sessions']): (input: FingerprintInput) => string {
  const byAgent = sessions.bindTo.includes('userAgent');
  const byAddress = sessions.bindTo.includes('address');
  if (!byAgent && !byAddress) return () => '';
  return ({ userAgent, address }) => {
    const parts = [byAgent ? `ua:${userAgent ?? ''}` : '', byAddress ? `ip:${addressPrefix(address, sessions.addressPrefixV4, sessions.addressPrefixV6)}` : ''];
    return createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 16);
  };
}
