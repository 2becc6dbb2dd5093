/**
 * What the admin commands (src/cli) share: their refusals and exit codes, opening the store,
 * finding clients, and the public URL tokens are made for. The CLI handlers stay thin: arguments
 * in, one call into src/admin, print.
 */
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Config } from '../config/schema.js';
import { createUpstreamAgent, deleteUpstreamSession } from '../pipeline/forward.js';
import { createSessionEnder } from '../session/end-session.js';
import type { SessionEnder } from '../session/end-session.js';
import { createLogger } from '../observability/logger.js';
import type { Problem } from '../config/fields.js';
import { createStore } from '../store/create.js';
import type { Store, StoredClient } from '../store/types.js';

/**
 * What the admin commands can fail with, and the exit code each maps to: 2 when the command
 * line asked for something that cannot be done (fix the arguments), 1 when the state found
 * (the store) prevents it.
 */
export const ADMIN_ERRORS = {
  MEMORY_STORE: 2,
  INVALID_ARGUMENT: 2,
  CONFIG_CLIENT: 2,
  SCOPE_NOT_ALLOWED: 2,
  TOKEN_INVALID: 2,
  FILE_EXISTS: 2,
  CLIENT_EXISTS: 1,
  CLIENT_NOT_FOUND: 1,
  NOT_FOUND: 1,
  CONFLICT: 1,
  /** The admin API answered with a refusal the caller can fix (bad arguments, credentials). */
  API_REFUSED: 2,
  API_UNREACHABLE: 1,
} as const;

export type AdminErrorCode = keyof typeof ADMIN_ERRORS;

/** A refused admin operation: a message for the operator and the exit code of the CLI. */
export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly exitCode: 1 | 2;

  constructor(code: AdminErrorCode, message: string) {
    super(message);
    this.name = 'AdminError';
    this.code = code;
    this.exitCode = ADMIN_ERRORS[code];
  }
}

/** A client as the admin commands show it: never a secret or a hash. */
export interface ClientListing {
  readonly id: string;
  readonly scopes: readonly string[];
  readonly source: 'config' | 'store';
  readonly maxSessions: number | null;
  readonly createdAt: number | null;
}

/** Secrets and signing keys: 256 random bits, base64url (43 characters). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Runs a field parser of the config schema on a CLI value, so both accept exactly the same. */
export function parsed<T>(parse: (raw: unknown, path: string, problems: Problem[]) => T | undefined, raw: unknown, flag: string): T {
  const problems: Problem[] = [];
  const value = parse(raw, flag, problems);
  if (value === undefined || problems.length) throw new AdminError('INVALID_ARGUMENT', problems.map((p) => `${p.path} ${p.message}`).join('; ') || `${flag} is invalid`);
  return value;
}

/**
 * Opens the configured store for an admin command and closes it afterwards. `persistent`
 * commands refuse the memory store: it lives inside one proxy process, so a change made by the
 * CLI would vanish with the CLI.
 */
export async function withStore<T>(config: Config, options: { persistent: boolean; command: string }, work: (store: Store, ender: SessionEnder) => Promise<T>): Promise<T> {
  if (options.persistent && config.store.type === 'memory') {
    throw new AdminError('MEMORY_STORE', `\`${options.command}\` works on state the proxy replicas share, but the configured store is "memory" (inside one proxy process); commands like this need a shared store: configure Redis (--store redis --redis-url URL, or "store" in the config file).`);
  }
  const store = await createStore(config.store, { clock: Date.now });
  // Sessions a command ends are ended upstream too, as the proxy would (shared upstreams; in the
  // sidecar layout each replica's sweeper ends its own).
  const agent = createUpstreamAgent(config.security.upstreamTimeout);
  const ender = createSessionEnder({
    store, owner: '', clock: Date.now, log: createLogger('silent'),
    endUpstream: (index, sessionId) => {
      const url = config.upstreams[index];
      if (url) void deleteUpstreamSession(agent, url, config.upstreamHeaders, sessionId, config.security.upstreamTimeout);
    },
  });
  try {
    return await work(store, ender);
  } finally {
    // Waits for those DELETEs (each bounded by security.upstreamTimeout).
    await agent.close();
    await store.close();
  }
}

/** The client as configured (file first, then store), or null. */
export async function findClient(store: Store, config: Config, id: string): Promise<ClientListing | null> {
  const configured = config.clients.find((c) => c.id === id);
  if (configured) return { id, scopes: configured.scopes, source: 'config', maxSessions: configured.maxSessions, createdAt: null };
  const stored = await store.getClient(id);
  return stored ? { id, scopes: stored.scopes, source: 'store', maxSessions: stored.maxSessions, createdAt: stored.createdAt } : null;
}

/** The store-managed client `id`; config-file clients and unknown ids are refused. */
export async function storeClientOrFail(store: Store, config: Config, id: string): Promise<StoredClient> {
  if (config.clients.some((c) => c.id === id)) throw new AdminError('CONFIG_CLIENT', `client "${id}" is defined in the config file; change it there`);
  const stored = await store.getClient(id);
  if (!stored) throw new AdminError('CLIENT_NOT_FOUND', `no client "${id}" in the store`);
  return stored;
}

/** How long revocation records must live: as long as anything this proxy issues (tokens, refresh tokens) can. */
export function revocationTtl(config: Config): number {
  return Math.max(config.tokens.accessTtl, config.tokens.refreshTtl) + config.tokens.clockSkew;
}

/**
 * The proxy's public origin, MCP URL (token audience) and issuer as a running proxy derives them:
 * `publicUrl`, else `http(s)://<listen.host>:<listen.port>`. Tokens made here only verify on a
 * proxy whose public URL is the same, so set `publicUrl` when the listen address is not it.
 */
export function publicSite(config: Config): { origin: string; resource: string; issuer: string } {
  if (config.publicUrl === null && config.listen.port === 0) {
    throw new AdminError('INVALID_ARGUMENT', 'the proxy listens on a random port (listen.port 0): set publicUrl so tokens name the right audience');
  }
  const secure = config.tls.certFile !== null && config.tls.keyFile !== null;
  const host = isIPv6(config.listen.host) ? `[${config.listen.host}]` : config.listen.host;
  const origin = (config.publicUrl ?? `${secure ? 'https' : 'http'}://${host}:${config.listen.port}`).replace(/\/+$/, '');
  return { origin, resource: `${origin}${config.mcpPath}`, issuer: (config.tokens.issuer ?? origin).replace(/\/+$/, '') };
}
