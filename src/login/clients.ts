import type { Config } from '../config/schema.js';
import { isMetadataUrl } from './metadata-document.js';

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
  /** Where it comes from: the config file, a registration (RFC 7591), or its metadata document URL. */
  readonly kind: 'configured' | 'registered' | 'metadata';
  /** The client's own web page, as it claims (registered and metadata clients). */
  readonly uri: string | null;
  /** Whether it gets refresh tokens (a registration that asked only for authorization_code does not). */
  readonly refresh: boolean;
}

export interface LoginClients {
  /** Async: registrations in the store and metadata documents fetched by URL will answer here too. */
  find(clientId: string): Promise<LoginClient | null>;
  /** A client got tokens: a registration that is used stays (one never used expires). */
  used(client: LoginClient): Promise<void>;
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

/** Where clients that are not in the config file come from; null: that way is off. */
export interface ClientSources {
  readonly registrations: { find(id: string): Promise<LoginClient | null>; used(client: LoginClient): Promise<void> } | null;
  readonly metadataDocuments: { find(url: string): Promise<LoginClient> } | null;
}

/**
 * Every login client: the config file's first, then registrations, then metadata documents (a
 * `client_id` that is a URL). The three kinds of id cannot be confused: configured ids are plain
 * words, registered ones start with `r~`, metadata ones are URLs.
 */
export function createLoginClients(clients: Config['login']['clients'], sources: ClientSources = { registrations: null, metadataDocuments: null }): LoginClients {
  const byId = new Map<string, LoginClient>(clients.map((c) => [c.id, { id: c.id, name: c.name, uri: null, redirectUris: c.redirectUris, public: c.secretHash === null, secretHash: c.secretHash, kind: 'configured', refresh: true }]));
  return {
    async find(clientId) {
      const configured = byId.get(clientId);
      if (configured) return configured;
      if (isMetadataUrl(clientId)) return sources.metadataDocuments ? sources.metadataDocuments.find(clientId) : null;
      return sources.registrations ? sources.registrations.find(clientId) : null;
    },
    async used(client) {
      if (client.kind === 'registered') await sources.registrations?.used(client);
    },
  };
}
