import { WardenError } from '../errors.js';

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * A Map with per-entry expiry and a size bound: the oldest entries go first when it is full, so
 * traffic can never grow it without limit. Expired entries are dropped on read and by sweeps.
 */
export class TtlMap<V = string> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #max: number;
  readonly #refuseWhenFull: boolean;

  /**
   * `refuseWhenFull`: at the bound, expired entries are swept and, if it is still full, the new
   * entry is refused rather than an older live one dropped (for revocations, which must outlive
   * everything they revoke).
   */
  constructor(max: number, refuseWhenFull = false) {
    this.#max = max;
    this.#refuseWhenFull = refuseWhenFull;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  expiresAt(key: string, now: number): number | undefined {
    return this.get(key, now) === undefined ? undefined : this.#entries.get(key)?.expiresAt;
  }

  set(key: string, value: V, expiresAt: number, now = 0): void {
    if (this.#refuseWhenFull && !this.#entries.has(key) && this.#entries.size >= this.#max) {
      this.sweep(now);
      if (this.#entries.size >= this.#max) throw new WardenError('STORE_UNAVAILABLE', { reason: 'store', retryAfterMs: 60_000, description: 'The memory store holds as many revocations as it may; none was dropped' });
    }
    // Re-inserting moves the key to the end: Map order is then roughly oldest-first.
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }

  setExpiry(key: string, expiresAt: number): void {
    const entry = this.#entries.get(key);
    if (entry) entry.expiresAt = expiresAt;
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  sweep(now: number): void {
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
  }

  *keys(prefix: string, now: number): Generator<string> {
    for (const [key, entry] of this.#entries) if (entry.expiresAt > now && key.startsWith(prefix)) yield key;
  }
}
