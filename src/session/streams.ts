import type { ServerResponse } from 'node:http';

export interface StreamGauge {
  /** Counts an open stream (a GET, or a POST answered as SSE) of a principal until its response closes; false when at the cap. */
  admit(principal: string, res: ServerResponse): boolean;
  /** Open GET streams of every principal on this replica. */
  total(): number;
}

/**
 * Caps concurrent GET streams per principal on this replica: each one holds a client socket and
 * an upstream socket for as long as it lives, so a client must not be able to open unbounded many.
 */
export function createStreamGauge(maxPerPrincipal: number): StreamGauge {
  const open = new Map<string, number>();
  let total = 0;
  return {
    admit(principal, res) {
      // A client already gone is not forwarded (see forward); its 'close' will not fire again, so
      // counting it would take a slot for good.
      if (res.closed) return true;
      const count = open.get(principal) ?? 0;
      if (count >= maxPerPrincipal) return false;
      open.set(principal, count + 1);
      total++;
      // `on`: a response's 'close' comes once (see forward.ts); `once` would keep a wrapper per stream.
      res.on('close', () => {
        const left = (open.get(principal) ?? 1) - 1;
        if (left > 0) open.set(principal, left);
        else open.delete(principal);
        total--;
      });
      return true;
    },
    total: () => total,
  };
}
