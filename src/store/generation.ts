import { randomBytes } from 'node:crypto';
import { WardenError } from '../errors.js';
import type { SecretStore, StoreConnection } from './types.js';

/**
 * Which life of the store this proxy is serving. A Redis without persistence that restarts comes
 * back empty: revocations, refresh grants, sessions and managed clients are gone, and a revoked
 * token would work again. Every store life has a marker (an id and the instant it began), created
 * by whoever first finds none. A proxy that finds the marker changed knows the store lost its
 * data, and refuses every token it issued before the new life began: clients fetch new ones, and
 * nothing revoked comes back. A memory store's life is the process's.
 *
 * The marker is checked when the connection comes back (before any request is served on it) and
 * every `intervalMs` (a failover that kept the connection).
 */
export interface Generation {
  /** Tokens this proxy issued before this instant belong to a life of the store that was lost. */
  epochMs(): number;
  /** Null when the marker was checked since the last reconnect; else the check (throws STORE_UNAVAILABLE). */
  pending(): Promise<void> | null;
  close(): void;
}

interface Marker {
  readonly id: string;
  readonly since: number;
}

export interface GenerationDeps {
  readonly store: SecretStore & Pick<StoreConnection, 'onReconnect'>;
  readonly clock: () => number;
  readonly intervalMs: number;
  /** The store lost its data: `since` is when its new life began. */
  readonly onLoss: (since: number) => void;
}

const NAME = 'generation';

function parse(raw: string): Marker {
  try {
    const value = JSON.parse(raw) as Partial<Marker>;
    if (typeof value.id === 'string' && typeof value.since === 'number') return { id: value.id, since: value.since };
  } catch {
    // Not ours: treat as a marker nobody can match, so the next check replaces nothing and
    // keeps refusing old tokens (fail safe).
  }
  return { id: raw, since: Number.MAX_SAFE_INTEGER };
}

/** Reads the store's marker, creating it when there is none (this store life begins now). */
export async function claimGeneration(deps: Pick<GenerationDeps, 'store' | 'clock'>): Promise<Marker> {
  return parse(await deps.store.initSecret(NAME, JSON.stringify({ id: randomBytes(12).toString('base64url'), since: deps.clock() })));
}

export async function watchGeneration(deps: GenerationDeps): Promise<Generation> {
  let current = await claimGeneration(deps);
  let checking: Promise<void> | null = null;
  let verified = true;

  async function check(): Promise<void> {
    const seen = await claimGeneration(deps);
    if (seen.id !== current.id) {
      current = seen;
      deps.onLoss(seen.since);
    }
    verified = true;
  }

  function recheck(): Promise<void> {
    checking ??= check().finally(() => {
      checking = null;
    });
    return checking;
  }

  deps.store.onReconnect(() => {
    verified = false;
    void recheck().catch(() => {});
  });
  const timer = deps.intervalMs > 0 ? setInterval(() => void recheck().catch(() => {}), deps.intervalMs).unref() : null;

  return {
    // Whole seconds: a token's iat is, and one issued in the same second must not predate it.
    epochMs: () => Math.floor(current.since / 1000) * 1000,
    pending: () =>
      verified
        ? null
        : recheck().catch((err: unknown) => {
            throw new WardenError('STORE_UNAVAILABLE', { reason: 'store', retryAfterMs: 2_000, cause: err });
          }),
    close: () => {
      if (timer) clearInterval(timer);
    },
  };
}
