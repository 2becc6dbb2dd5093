import { createHash } from 'node:crypto';
import { WardenError } from '../errors.js';
import type { TransientStore } from '../store/types.js';
import { createOutbound, OutboundRefused } from './outbound.js';
import { parseClientMetadata } from './registration.js';
import type { RedirectPolicy } from './redirect-uris.js';
import type { LoginClient } from './clients.js';

/**
 * Client ID Metadata Documents (MCP 2025-11-25 authorization): a client whose `client_id` is an
 * `https` URL is described by the JSON document at that URL. mcp-warden fetches it (through the
 * SSRF-guarded {@link Outbound}), checks it like a registration, and keeps it for as long as its
 * `Cache-Control` allows, in the store, so replicas fetch it once between them.
 */

const MAX_CACHE_MS = 86_400_000;
const DEFAULT_CACHE_MS = 300_000;
const MAX_URL = 2000;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** True when a client id is meant as a metadata document URL (and so never a registered or configured id). */
export function isMetadataUrl(clientId: string): boolean {
  return /^https?:\/\//i.test(clientId);
}

/** Why this URL cannot be a client id, or null (the draft's rules: https, a path, no fragment, no credentials). */
export function metadataUrlProblem(clientId: string, allowPrivate: boolean): string | null {
  if (clientId.length > MAX_URL || !URL.canParse(clientId)) return 'is not a URL';
  const url = new URL(clientId);
  // Byte-for-byte what the document must repeat; a URL that normalises differently is ambiguous.
  if (url.href !== clientId) return 'is not in normal form';
  // Plain http only on loopback, and only where private hosts are allowed (development).
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowPrivate && LOOPBACK_HOSTS.has(url.hostname))) return 'must be an https URL';
  if (url.username || url.password) return 'may not carry a user name or password';
  if (url.hash || clientId.includes('#')) return 'may not have a fragment';
  if (url.pathname === '/' || /\/\.{1,2}(\/|$)/.test(url.pathname)) return 'must have a path without . or .. segments';
  return null;
}

/** How long a response may be reused (RFC 9111 max-age, bounded); 0: not at all. */
export function cacheLifetimeMs(cacheControl: string | null): number {
  if (cacheControl === null) return DEFAULT_CACHE_MS;
  const directives = cacheControl.toLowerCase().split(',').map((d) => d.trim());
  if (directives.some((d) => d === 'no-store' || d === 'no-cache' || d === 'private')) return 0;
  const maxAge = directives.map((d) => /^(?:s-)?max-age=(\d{1,10})$/.exec(d)?.[1]).find((v) => v !== undefined);
  return maxAge === undefined ? DEFAULT_CACHE_MS : Math.min(Number(maxAge) * 1000, MAX_CACHE_MS);
}

// The draft's advice: a document is small (5 KB) and a server does not wait long for it.
const MAX_BYTES = 5 * 1024;
const TIMEOUT_MS = 5_000;

export interface MetadataDocumentsDeps {
  readonly policy: RedirectPolicy;
  readonly store: TransientStore;
  /** login.registration.allowPrivateMetadataHosts */
  readonly allowPrivate: boolean;
  /** Extra trusted CA certificates (PEM) for the fetches; operators use NODE_EXTRA_CA_CERTS. */
  readonly ca?: string;
}

export function createMetadataDocuments(deps: MetadataDocumentsDeps) {
  const outbound = createOutbound({ allowPrivate: deps.allowPrivate, timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES, ...(deps.ca ? { ca: deps.ca } : {}) });
  const cacheName = (url: string): string => `cimd:${createHash('sha256').update(url).digest('base64url')}`;
  const refuse = (description: string): WardenError => new WardenError('CLIENT_METADATA_INVALID', { description: `The client's metadata document ${description}` });

  async function fetchDocument(clientId: string): Promise<{ client: LoginClient; ttlMs: number }> {
    let res;
    try {
      res = await outbound.get(new URL(clientId), 'application/json');
    } catch (err) {
      if (!(err instanceof OutboundRefused)) throw err;
      const why = { address: 'is on a host this server may not reach', redirect: 'redirects (not followed)', status: 'could not be fetched (status other than 200)', size: 'is too large', timeout: 'took too long to fetch', network: 'could not be fetched' }[err.reason];
      throw refuse(why);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw refuse('is not JSON');
    }
    // The document speaks for exactly the URL it lives at (otherwise any page could name any client).
    if (typeof raw !== 'object' || raw === null || (raw as { client_id?: unknown }).client_id !== clientId) throw refuse('does not name its own URL as client_id');
    // No secret can live in a public document: such clients are public, PKCE only.
    const parsed = parseClientMetadata(raw, deps.policy, 'none', ['none']);
    if (!parsed.ok) throw refuse(`is not acceptable: ${parsed.description}`);
    const m = parsed.value;
    return {
      client: { id: clientId, name: m.name, uri: m.uri, redirectUris: m.redirectUris, public: true, secretHash: null, kind: 'metadata', refresh: m.grantTypes.includes('refresh_token') },
      ttlMs: cacheLifetimeMs(res.headers.get('cache-control')),
    };
  }

  return {
    /** The client a metadata URL describes; throws CLIENT_METADATA_INVALID (with why) when there is none. */
    async find(clientId: string): Promise<LoginClient> {
      const problem = metadataUrlProblem(clientId, deps.allowPrivate);
      if (problem) throw refuse(`URL ${problem}`);
      const cached = await deps.store.getTransient(cacheName(clientId));
      if (cached !== null) return JSON.parse(cached) as LoginClient;
      const { client, ttlMs } = await fetchDocument(clientId);
      if (ttlMs > 0) await deps.store.putTransient(cacheName(clientId), JSON.stringify(client), ttlMs);
      return client;
    },
    close: () => outbound.close(),
  };
}
