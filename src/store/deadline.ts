/**
 * Every record of the Redis store ends on the injected clock (the one the memory store reads);
 * Redis's own clock only collects a key, GC_GRACE_MS after the record's end, so the skew between
 * the replicas' clocks and Redis's never ends a record early. Two ways to keep the end:
 * - in the key's expiry, less the grace (sessions, revocations, counters: the scripts read it with
 *   PEXPIRETIME and decide against the caller's now, without touching the value's format);
 * - in the value, stamped (below: sign-in state and replica announcements).
 */

/** How long after its end a value's key outlives it in Redis (garbage collection only). */
export const GC_GRACE_MS = 5_000;

/** The TTL that collects a value ending at `endsAt`, read at `now`. */
export function collectAfter(endsAt: number, now: number): number {
  return Math.max(endsAt - now, 1) + GC_GRACE_MS;
}

// `~end~value`: written before issue 14, a value had no end of its own (its TTL was its end); such
// a value is read as it is, until the TTL it was written with collects it.
const STAMPED = /^~(\d{1,16})~/;

export function stamp(endsAt: number, value: string): string {
  return `~${endsAt}~${value}`;
}

/** The value, or null when there is none or it ended at `now`. */
export function unstamp(raw: string | null, now: number): string | null {
  if (raw === null) return null;
  const match = STAMPED.exec(raw);
  if (!match) return raw;
  return Number(match[1]) > now ? raw.slice(match[0].length) : null;
}
