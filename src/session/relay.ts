import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ReplicaRegistry } from '../store/types.js';

/** The header a replica adds when it relays a request to the replica that owns its session. */
export const RELAY_HEADER = 'x-mcp-warden-relay';

/** How long a relay header stays valid: covers clock skew between replicas, not replays of old ones. */
const RELAY_WINDOW_MS = 30_000;
/** A replica's announcement lives this long; it is refreshed every third of it. */
const ANNOUNCE_TTL_MS = 30_000;
/** How long an owner's URL is reused before asking the store again. */
const OWNER_CACHE_MS = 2_000;

/** What a verified relay header vouches for. */
export interface RelayedFrom {
  /** The relaying replica. */
  readonly replica: string;
  /** The client's address as the relaying replica resolved it (limits and blocks count it). */
  readonly address: string;
}

/**
 * The sidecar layout (DESIGN §15): each replica has its own upstream, so a session belongs to the
 * replica that created it. Other replicas relay its requests there, over an internal hop
 * authenticated with a key all replicas derive from the shared session-id secret. In the gateway
 * layout (no `replica.advertiseUrl`) nothing is relayed and every relay header is refused.
 */
export interface Relay {
  /** This replica's name: session records of the sidecar layout carry it as their owner. */
  readonly replicaId: string;
  /** True in the sidecar layout. */
  readonly enabled: boolean;
  /** The relay header for a request of `sessionId` from `address`. */
  sign(method: string, sessionId: string, address: string): string;
  /** The relay a presented header proves, or null when it does not verify (forged, stale, other request). */
  verify(value: string, method: string, sessionId: string): RelayedFrom | null;
  /** The MCP URL of a live owner replica, or null when it is gone. Store failures reject. */
  ownerUrl(owner: string): Promise<string | null>;
  /** Announces this replica and keeps announcing it until `close()`. */
  start(onError: (err: unknown) => void): Promise<void>;
  /** Stops announcing and withdraws the announcement: its sessions end now on every replica. */
  close(): Promise<void>;
}

export interface RelayOptions {
  readonly replicaId: string | null;
  /** `replica.advertiseUrl`; null: gateway layout. */
  readonly advertiseUrl: string | null;
  readonly mcpPath: string;
  /** The session-id secret (shared by all replicas); the relay key is derived from it. */
  readonly secret: Uint8Array;
  readonly store: ReplicaRegistry;
  readonly clock: () => number;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

export function createRelay(options: RelayOptions): Relay {
  const replicaId = options.replicaId ?? randomBytes(6).toString('base64url').replace(/[^A-Za-z0-9]/g, 'x');
  const key = new Uint8Array(hkdfSync('sha256', options.secret, 'mcp-warden', 'replica-relay', 32));
  const selfUrl = options.advertiseUrl === null ? null : `${options.advertiseUrl.replace(/\/+$/, '')}${options.mcpPath}`;
  const owners = new Map<string, { url: string | null; at: number }>();
  let timer: NodeJS.Timeout | null = null;

  // The MAC covers the request it was made for: a header lifted from one request is no good on another.
  const mac = (from: string, at: string, address: string, method: string, sessionId: string): Buffer =>
    createHmac('sha256', key).update([from, at, address, method, sessionId].join('\0')).digest();

  return {
    replicaId,
    enabled: selfUrl !== null,

    sign(method, sessionId, address) {
      const at = String(options.clock());
      return ['v1', replicaId, at, b64(address), mac(replicaId, at, address, method, sessionId).toString('base64url')].join(';');
    },

    verify(value, method, sessionId) {
      if (selfUrl === null || value.length > 512) return null;
      const [version, from = '', at = '', address64 = '', tag = ''] = value.split(';');
      if (version !== 'v1' || !/^[A-Za-z0-9._-]{1,40}$/.test(from) || from === replicaId || !/^\d{1,16}$/.test(at)) return null;
      if (Math.abs(options.clock() - Number(at)) > RELAY_WINDOW_MS) return null;
      const address = Buffer.from(address64, 'base64url').toString('utf8');
      const presented = Buffer.from(tag, 'base64url');
      const expected = mac(from, at, address, method, sessionId);
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return null;
      return { replica: from, address };
    },

    async ownerUrl(owner) {
      const now = options.clock();
      const cached = owners.get(owner);
      if (cached && now - cached.at < OWNER_CACHE_MS) return cached.url;
      const url = await options.store.replicaUrl(owner);
      if (owners.size > 1_000) owners.clear();
      owners.set(owner, { url, at: now });
      return url;
    },

    async start(onError) {
      if (selfUrl === null) return;
      const announce = (): Promise<void> => options.store.announceReplica(replicaId, selfUrl, ANNOUNCE_TTL_MS);
      await announce();
      timer = setInterval(() => announce().catch(onError), ANNOUNCE_TTL_MS / 3);
      timer.unref();
    },

    async close() {
      if (timer === null) return;
      clearInterval(timer);
      timer = null;
      await options.store.forgetReplica(replicaId).catch(() => {});
    },
  };
}
