import type { TrackedUpstream, UpstreamLedger } from '../store/types.js';
import type { SessionEnder } from './end-session.js';

/**
 * Upstream sessions end when their proxy session does, however it ended: idle expiry, the end of
 * its lifetime, a revocation, `session revoke`, a store that lost its data, an eviction or a lost
 * race. Every upstream session is noted in the store before its proxy session is made; the
 * sweeper walks those notes and DELETEs upstream each one whose proxy session is gone. Without it
 * an upstream keeps every session a client ever opened (the TypeScript SDK never sends DELETE).
 *
 * Replicas sweep the same notes at once safely: removing a note is atomic, and only the replica
 * that removed it sends the DELETE. In the sidecar layout each replica sweeps its own upstream's.
 */
export interface UpstreamSweeper {
  /** One pass now (single flight); resolves with the number of upstream sessions ended. */
  sweep(): Promise<number>;
  close(): void;
}

export interface UpstreamSweeperDeps {
  readonly store: Pick<UpstreamLedger, 'goneUpstreams' | 'untrackUpstream'>;
  /** This replica in the sidecar layout, '' for shared upstreams. */
  readonly owner: string;
  readonly clock: () => number;
  readonly intervalMs: number;
  /** Ends each one (upstream DELETE, `session.ended` with reason `expired`), once across replicas. */
  readonly ender: Pick<SessionEnder, 'ended'>;
  readonly onError: (err: unknown) => void;
}

const PAGE = 500;

export function createUpstreamSweeper(deps: UpstreamSweeperDeps): UpstreamSweeper {
  let running: Promise<number> | null = null;

  async function pass(): Promise<number> {
    let ended = 0;
    let cursor = '0';
    do {
      const page = await deps.store.goneUpstreams(deps.owner, cursor, PAGE, deps.clock());
      for (const u of page.gone) {
        if (await deps.ender.ended({ principal: u.principal, key: u.key, upstream: { index: u.index, sessionId: u.sessionId } }, 'expired')) ended++;
      }
      cursor = page.cursor;
    } while (cursor !== '0');
    return ended;
  }

  const sweep = (): Promise<number> => {
    running ??= pass().finally(() => {
      running = null;
    });
    return running;
  };
  const timer = deps.intervalMs > 0 ? setInterval(() => void sweep().catch(deps.onError), deps.intervalMs).unref() : null;
  return {
    sweep,
    close: () => {
      if (timer) clearInterval(timer);
    },
  };
}
