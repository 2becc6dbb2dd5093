import type { ServerResponse } from 'node:http';

/**
 * Graceful shutdown bookkeeping: requests in flight, and GET streams that would never end on
 * their own. On drain, streams are ended cleanly at once while other requests get `graceMs` to
 * finish; whatever is left after that is cut.
 */
export interface Drain {
  readonly draining: boolean;
  /** Tracks a request until its response closes. */
  track(res: ServerResponse): void;
  /** Registers an open GET stream and how to end it cleanly. */
  stream(res: ServerResponse, end: () => void): void;
  /** Ends streams now, waits up to `graceMs` for the rest; resolves with how many were cut. */
  drain(graceMs: number): Promise<number>;
}

export function createDrain(): Drain {
  const inFlight = new Set<ServerResponse>();
  const streams = new Map<ServerResponse, () => void>();
  let draining = false;
  let onIdle: (() => void) | null = null;

  function forget(res: ServerResponse): void {
    inFlight.delete(res);
    streams.delete(res);
    if (inFlight.size === 0) onIdle?.();
  }

  return {
    get draining() {
      return draining;
    },
    track(res) {
      inFlight.add(res);
      res.once('close', () => forget(res));
    },
    stream(res, end) {
      streams.set(res, end);
      if (draining) end();
    },
    async drain(graceMs) {
      draining = true;
      for (const end of [...streams.values()]) end();
      if (inFlight.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          onIdle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      const cut = inFlight.size;
      for (const res of inFlight) res.destroy();
      return cut;
    },
  };
}
