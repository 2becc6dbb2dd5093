import { createHash, timingSafeEqual } from 'node:crypto';
import type { ClientConfig } from '../config/schema.js';
import type { Limit } from '../config/fields.js';
import type { ClientStore, StoredClient } from '../store/types.js';
import { hashSecret, verifySecret } from './secret-hash.js';

/** A client as the proxy uses it, wherever it was defined. */
export interface Client {
  readonly id: string;
  readonly scopes: readonly string[];
  readonly maxSessions: number | null;
  readonly rateLimit: Pick<Limit, 'points' | 'durationMs'> | null;
  readonly source: 'config' | 'store';
}

export interface ClientRegistry {
  /** The client if the secret is right, else null. Takes the same time for unknown clients. */
  authenticate(id: string, secret: string): Promise<Client | null>;
  /**
   * A client's settings (per-client overrides), cached briefly for store-managed clients. A
   * configured or cached client is answered synchronously (the hot path asks on every request).
   */
  get(id: string): Client | null | Promise<Client | null>;
  /**
   * Replaces the clients of the config file (SIGHUP): a removed one stops at once (its tokens are
   * refused on their next request), a new or changed one takes effect on the next request.
   */
  replaceConfigured(configClients: readonly ClientConfig[]): void;
}

const CACHE_MS = 30_000;

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Clients from the config file (plain secret compared in constant time, or a scrypt hash) and
 * from the store (scrypt hashes only), config first. Unknown ids still pay a scrypt check, so
 * response time does not tell which client ids exist.
 */
export async function createClientRegistry(configClients: readonly ClientConfig[], store: Pick<ClientStore, 'getClient'>, clock: () => number): Promise<ClientRegistry> {
  const dummyHash = await hashSecret('timing-equaliser');
  type Entry = { readonly client: Client | null; readonly hash: string | null; readonly plain: string | null };
  // Built once: a configured client never changes while the process runs, and every request asks.
  const configured = (list: readonly ClientConfig[]) => new Map<string, Entry>(list.map((c) => [
    c.id,
    { client: { id: c.id, scopes: c.scopes, maxSessions: c.maxSessions, rateLimit: c.rateLimit, source: 'config' }, hash: c.secretHash, plain: c.secret },
  ]));
  let fromConfig = configured(configClients);
  const cache = new Map<string, Entry & { readonly at: number }>();

  function fromStored(c: StoredClient): Client {
    return { id: c.id, scopes: c.scopes, maxSessions: c.maxSessions, rateLimit: c.rateLimit, source: 'store' };
  }

  async function lookup(id: string, fresh: boolean): Promise<Entry> {
    const configured = fromConfig.get(id);
    if (configured) return configured;
    const cached = cache.get(id);
    if (!fresh && cached && clock() - cached.at < CACHE_MS) return cached;
    const stored = await store.getClient(id);
    // A store client's secret is only ever a hash: `plain` stays null.
    const entry = { client: stored ? fromStored(stored) : null, hash: stored?.secretHash ?? null, plain: null, at: clock() };
    // Bounded: ids come from the network (token endpoint) as well as from verified tokens.
    if (cache.size > 10_000) cache.clear();
    cache.set(id, entry);
    return entry;
  }

  return {
    async authenticate(id, secret) {
      // Always fresh: a removed client or a rotated secret must stop working at once.
      const { client, hash, plain } = await lookup(id, true);
      if (client && plain !== null) {
        if (timingSafeEqual(digest(secret), digest(plain))) return client;
        // A wrong inline secret pays the scrypt an unknown id pays: without it, it was refused ~50x
        // faster, and timing told which client ids exist. (The right secret needs no disguise.)
        await verifySecret(secret, dummyHash);
        return null;
      }
      const ok = await verifySecret(secret, hash ?? dummyHash);
      return client && hash && ok ? client : null;
    },
    get(id) {
      const configured = fromConfig.get(id);
      if (configured) return configured.client;
      const cached = cache.get(id);
      if (cached && clock() - cached.at < CACHE_MS) return cached.client;
      return lookup(id, false).then((entry) => entry.client);
    },
    replaceConfigured(list) {
      fromConfig = configured(list);
      cache.clear();
    },
  };
}
