import type { Config } from '../config/schema.js';

/** An MCP client app people sign in through. */
export interface LoginClient {
  readonly id: string;
  /** Shown on the consent page; null: the id is shown. */
  readonly name: string | null;
  readonly redirectUris: readonly string[];
  /** Public clients prove themselves with PKCE alone (RFC 8252 native apps). */
  readonly public: boolean;
  /** Confidential clients: scrypt hash of the secret. */
  readonly secretHash: string | null;
}

export interface LoginClients {
  /** Async: registrations in the store and metadata documents fetched by URL will answer here too. */
  find(clientId: string): Promise<LoginClient | null>;
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Exact string match of a redirect URI (RFC 6749 §3.1.2.3, no normalisation an attacker could
 * steer), except the RFC 8252 §7.3 loopback rule: a native app's `http` loopback URI matches on any
 * port, with the same host, path and query.
 */
export function redirectUriMatches(registered: readonly string[], presented: string): boolean {
  if (registered.includes(presented)) return true;
  if (!URL.canParse(presented)) return false;
  const asked = new URL(presented);
  if (asked.protocol !== 'http:' || !LOOPBACK.has(asked.hostname) || asked.username || asked.password || presented.includes('#')) return false;
  return registered.some((uri) => {
    if (!URL.canParse(uri)) return false;
    const known = new URL(uri);
    return known.protocol === 'http:' && known.hostname === asked.hostname && known.pathname === asked.pathname && known.search === asked.search;
  });
}

/** The login clients of the config file. */
export function createLoginClients(clients: Config['login']['clients']): LoginClients {
  const byId = new Map<string, LoginClient>(clients.map((c) => [c.id, { id: c.id, name: c.name, redirectUris: c.redirectUris, public: c.secretHash === null, secretHash: c.secretHash }]));
  return { find: async (clientId) => byId.get(clientId) ?? null };
}
