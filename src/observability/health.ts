import { connect } from 'node:net';
import type { Store } from '../store/store.js';

export interface Readiness {
  readonly ready: boolean;
  readonly store: 'ok' | 'unreachable';
  readonly upstream: 'ok' | 'unreachable' | 'unchecked';
}

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
export function createReadiness(deps: { store: Store; upstreams: readonly string[]; checkUpstream: boolean }): () => Promise<Readiness> {
  return async () => {
    const [store, upstream] = await Promise.all([
      deps.store.ping().then(() => 'ok' as const, () => 'unreachable' as const),
      deps.checkUpstream
        ? Promise.all(deps.upstreams.map((u) => reachable(u, 1_000))).then((ok) => (ok.some(Boolean) ? ('ok' as const) : ('unreachable' as const)))
        : Promise.resolve('unchecked' as const),
    ]);
    return { ready: store === 'ok' && upstream !== 'unreachable', store, upstream };
  };
}
