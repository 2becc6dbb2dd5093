/** How long an upstream that refused a connection is skipped by new sessions. */
const QUARANTINE_MS = 10_000;

export interface UpstreamPicker {
  /** Index of the upstream a new session (or a session-less request) goes to: round robin over healthy ones. */
  next(): number;
  url(index: number): string | null;
  /** Reports an upstream that refused a connection: new sessions avoid it for a while. */
  markDown(index: number): void;
}

/**
 * Round robin over the configured upstreams, skipping ones that recently refused connections.
 * A session's record pins its upstream by index, so every replica sends it to the same one.
 */
export function createUpstreamPicker(urls: readonly string[], clock: () => number): UpstreamPicker {
  const downUntil = urls.map(() => 0);
  let cursor = 0;
  return {
    next() {
      const now = clock();
      for (let i = 0; i < urls.length; i++) {
        const index = (cursor + i) % urls.length;
        if ((downUntil[index] ?? 0) <= now) {
          cursor = index + 1;
          return index;
        }
      }
      // All down: keep rotating rather than refuse; the forward stage reports the failure.
      cursor = (cursor + 1) % urls.length;
      return cursor;
    },
    url: (index) => urls[index] ?? null,
    markDown(index) {
      if (index >= 0 && index < urls.length) downUntil[index] = clock() + QUARANTINE_MS;
    },
  };
}
