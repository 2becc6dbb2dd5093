import { connect } from 'node:net';
import type { Persistence, StoreConnection } from '../store/types.js';
import type { TransportKind } from '../session/probe-transport.js';

export interface Readiness {
  readonly ready: boolean;
  readonly store: 'ok' | 'unreachable';
  /** Whether the store keeps its data across a restart (asked once a minute). Never affects `ready`. */
  readonly persistence: Persistence | 'unchecked';
  readonly upstream: 'ok' | 'unreachable' | 'unchecked';
  /** The transport each upstream speaks, as probed at start (`upstreams[0]`, `legacySse.upstream`); empty until known. */
  readonly transports: Readonly<Record<string, TransportKind>>;
  readonly warning?: string;
}

const PERSISTENCE_TTL_MS = 60_000;
const NOT_PERSISTENT = 'the store keeps nothing on disk: a restart loses revocations, refresh grants, sessions and managed clients, and every token issued before is then refused';

function reachable(url: string, timeoutMs: number): Promise<boolean> {
  const { hostname, port, protocol } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || (protocol === 'https:' ? 443 : 80)) });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true)).once('error', () => done(false));
  });
}

/**
 * `/readyz`: the store answers and, when `health.checkUpstream` is on, at least one upstream
 * accepts a TCP connection. Cheap enough to poll: one PING and a connect at most.
 */
export function createReadiness(deps: { store: Pick<StoreConnection, 'ping' | 'persistence'>; upstreams: readonly string[]; checkUpstream: boolean; clock?: () => number; transports?: () => Readonly<Record<string, TransportKind>> }): () => Promise<Readiness> {
  const clock = deps.clock ?? Date.now;
  let persistence: { value: Persistence; at: number } | null = null;
  async function persistenceOf(): Promise<Persistence | 'unchecked'> {
    if (persistence && clock() - persistence.at < PERSISTENCE_TTL_MS) return persistence.value;
    try {
      persistence = { value: await deps.store.persistence(), at: clock() };
      return persistence.value;
    } catch {
      return 'unchecked';
    }
  }
  return async () => {
    const [store, upstream] = await Promise.all([
      deps.store.ping().then(() => 'ok' as const, () => 'unreachable' as const),
      deps.checkUpstream
        ? Promise.all(deps.upstreams.map((u) => reachable(u, 1_000))).then((ok) => (ok.some(Boolean) ? ('ok' as const) : ('unreachable' as const)))
        : Promise.resolve('unchecked' as const),
    ]);
    const kept = store === 'ok' ? await persistenceOf() : 'unchecked';
    return { ready: store === 'ok' && upstream !== 'unreachable', store, persistence: kept, upstream, transports: deps.transports?.() ?? {}, ...(kept === 'none' ? { warning: NOT_PERSISTENT } : {}) };
  };
}
