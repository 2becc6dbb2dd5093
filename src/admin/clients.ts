/** Client management for `mcp-warden client ...`: store-managed clients with scrypt-hashed secrets. */
import type { SessionEnder } from '../session/end-session.js';
import type { Config } from '../config/schema.js';
import { schema } from '../config/schema.js';
import { hashSecret } from '../auth/secret-hash.js';
import type { Store } from '../store/types.js';
import { AdminError, findClient, newSecret, parsed, revocationTtl, storeClientOrFail } from './common.js';
import type { ClientListing } from './common.js';

/**
 * Creates a store-managed client with a generated secret. Only the scrypt hash is stored; the
 * secret is returned once. Ids of config-file clients and existing clients are refused.
 */
export async function addClient(store: Store, config: Config, input: { id: string; scopes?: readonly string[]; maxSessions?: string | number | null }, clock: () => number = Date.now): Promise<{ id: string; secret: string }> {
  const { shape } = schema.clients;
  const id = parsed(shape.id.parse, input.id, '--id');
  const scopes = parsed(shape.scopes.parse, input.scopes?.length ? [...input.scopes] : ['mcp'], '--scope');
  const maxSessions = parsed(shape.maxSessions.parse, input.maxSessions === undefined || input.maxSessions === null ? null : shape.maxSessions.fromString(String(input.maxSessions)), '--max-sessions');
  const existing = await findClient(store, config, id);
  if (existing) throw new AdminError('CLIENT_EXISTS', `client "${id}" already exists${existing.source === 'config' ? ' in the config file' : ''}`);
  const secret = newSecret();
  await store.putClient({ id, secretHash: await hashSecret(secret), scopes: [...new Set(scopes)], maxSessions, rateLimit: null, createdAt: clock() });
  return { id, secret };
}

/** Every client, config-file ones first; a store client shadowed by a config client is left out. */
export async function listClients(store: Store, config: Config): Promise<ClientListing[]> {
  const fromConfig: ClientListing[] = config.clients.map((c) => ({ id: c.id, scopes: c.scopes, source: 'config', maxSessions: c.maxSessions, createdAt: null }));
  const stored = (await store.listClients())
    .filter((c) => !config.clients.some((k) => k.id === c.id))
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((c): ClientListing => ({ id: c.id, scopes: c.scopes, source: 'store', maxSessions: c.maxSessions, createdAt: c.createdAt }));
  return [...fromConfig, ...stored];
}

/**
 * Deletes a store-managed client and revokes everything it holds: tokens issued before now,
 * refresh tokens (through the same cut-off) and its sessions. Returns the sessions ended.
 */
export async function removeClient(store: Store, ender: Pick<SessionEnder, 'revokePrincipal'>, config: Config, id: string, clock: () => number = Date.now): Promise<{ sessionsEnded: number }> {
  await storeClientOrFail(store, config, id);
  // Revoke first: if the delete then fails, the client still shows and the command can be rerun.
  const sessionsEnded = await ender.revokePrincipal(id, clock(), revocationTtl(config));
  await store.deleteClient(id);
  return { sessionsEnded };
}

/** Gives a store-managed client a new secret (returned once); optionally revokes what it holds. */
export async function rotateClientSecret(store: Store, ender: Pick<SessionEnder, 'revokePrincipal'>, config: Config, id: string, options: { revokeTokens: boolean }, clock: () => number = Date.now): Promise<{ secret: string; sessionsEnded: number }> {
  const stored = await storeClientOrFail(store, config, id);
  const secret = newSecret();
  await store.putClient({ ...stored, secretHash: await hashSecret(secret) });
  const sessionsEnded = options.revokeTokens ? await ender.revokePrincipal(id, clock(), revocationTtl(config)) : 0;
  return { secret, sessionsEnded };
}

/** The scrypt hash of a secret for `clients[].secretHash` (same minimum length as an inline secret). */
export async function hashClientSecret(secret: string): Promise<string> {
  if (Buffer.byteLength(secret) < 16) throw new AdminError('INVALID_ARGUMENT', 'the secret must be at least 16 bytes');
  return hashSecret(secret);
}
