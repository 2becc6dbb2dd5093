/**
 * Graceful shutdown bookkeeping: how many requests are in flight, and GET streams that would
 * never end on their own. On drain, streams are ended cleanly at once while other requests get
 * `graceMs` to finish; the caller cuts whatever is left (closeAllConnections).
 */
export interface Drain {
  readonly draining: boolean;
  /** A request started; pair with `done()` when its handler is over. */
  begin(): void;
  done(): void;
  /** Registers an open GET stream and how to end it cleanly; returns its unregistration. */
  stream(end: () => void): () => void;
  /** Ends streams now, waits up to `graceMs` for the rest; resolves with how many are left. */
  drain(graceMs: number): Promise<number>;
}

export function createDrain(): Drain {
  // A counter, not a set of responses: no per-request listener or allocation on the hot path.
  let inFlight = 0;
  const streams = new Set<() => void>();
  let draining = false;
  let onIdle: (() => void) | null = null;

  return {
    get draining() {
      return draining;
    },
    begin() {
      inFlight++;
    },
    done() {
      inFlight--;
      if (inFlight === 0) onIdle?.();
    },
    stream(end) {
      if (draining) {
        end();
        return () => {};
      }
      streams.add(end);
      return () => streams.delete(end);
    },
    async drain(graceMs) {
      draining = true;
      for (const end of [...streams]) end();
      streams.clear();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          onIdle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return inFlight;
    },
  };
}
