import { createHash, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JWK, KeyObject } from 'jose';
import type { KeyStore, StoredKey } from '../store/types.js';

export type SigningAlgorithm = StoredKey['alg'];

/** A key ready for jose: the secret or private key, and what to publish. */
export interface ActiveKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly createdAt: number;
  /** HS256: the secret. EdDSA/ES256: the private key (signing) — verification uses `verify`. */
  readonly sign: Uint8Array | CryptoKey | KeyObject;
  readonly verify: Uint8Array | CryptoKey | KeyObject;
  /** Public JWK for `/.well-known/jwks.json`; null for HS256. */
  readonly publicJwk: JWK | null;
}

export interface KeyRing {
  readonly algorithm: SigningAlgorithm;
  /** The newest key: tokens are signed with it. */
  signingKey(): ActiveKey;
  /** A key by `kid`, reloading the ring (at most every few seconds) when the kid is new here. */
  verificationKey(kid: string): Promise<ActiveKey | null>;
  /** JWKS document of the public keys (empty for HS256). */
  jwks(): { keys: JWK[] };
  /** Makes a new signing key shared through the store; older keys keep verifying. */
  rotate(): Promise<ActiveKey>;
  /** Reloads keys from the store (replicas pick up a rotation without a restart). */
  refresh(): Promise<void>;
  close(): void;
}

export interface KeyRingOptions {
  readonly store: KeyStore;
  readonly algorithm: SigningAlgorithm;
  /** A configured HS256 secret: used as a key that never leaves the config. */
  readonly configuredSecret: string | null;
  readonly clock: () => number;
  /** How often replicas reload the ring; 0 disables the timer (CLI). */
  readonly refreshIntervalMs: number;
  /** Told when a key had to be generated (memory store: tokens die with the process). */
  readonly onGenerated?: (kid: string) => void;
  /** Told when this replica starts signing with a newer key (a rotation, here or on another replica). */
  readonly onRotated?: (kid: string) => void;
}

const RELOAD_COOLDOWN_MS = 5_000;

async function generate(alg: SigningAlgorithm, now: number): Promise<StoredKey> {
  const kid = randomBytes(9).toString('base64url');
  if (alg === 'HS256') return { kid, alg, createdAt: now, material: randomBytes(32).toString('base64url') };
  const { privateKey } = alg === 'EdDSA'
    ? await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
    : await generateKeyPair('ES256', { extractable: true });
  return { kid, alg, createdAt: now, material: JSON.stringify(await exportJWK(privateKey)) };
}

async function activate(stored: StoredKey): Promise<ActiveKey> {
  if (stored.alg === 'HS256') {
    const secret = Buffer.from(stored.material, 'base64url');
    return { kid: stored.kid, alg: stored.alg, createdAt: stored.createdAt, sign: secret, verify: secret, publicJwk: null };
  }
  const jwk = JSON.parse(stored.material) as JWK;
  const { d: _private, ...publicJwk } = jwk;
  return {
    kid: stored.kid,
    alg: stored.alg,
    createdAt: stored.createdAt,
    sign: await importJWK(jwk, stored.alg),
    verify: await importJWK(publicJwk, stored.alg),
    publicJwk: { ...publicJwk, kid: stored.kid, alg: stored.alg, use: 'sig' },
  };
}

function configuredKey(secret: string): ActiveKey {
  const bytes = new TextEncoder().encode(secret);
  // The kid names the secret without revealing it: a hash prefix, stable across replicas.
  const kid = `cfg-${createHash('sha256').update(bytes).digest('base64url').slice(0, 12)}`;
  return { kid, alg: 'HS256', createdAt: 0, sign: bytes, verify: bytes, publicJwk: null };
}

/**
 * Loads (or creates, once for all replicas) the signing keys. The newest key signs; every key
 * verifies until it is removed, so a rotation never invalidates tokens already issued.
 */
export async function createKeyRing(options: KeyRingOptions): Promise<KeyRing> {
  const { store, algorithm } = options;
  const fixed = options.configuredSecret !== null ? configuredKey(options.configuredSecret) : null;
  let byKid = new Map<string, ActiveKey>();
  let newest: ActiveKey | null = null;
  // Only reloads caused by an unknown kid are rate-limited: a timer reload must not delay the
  // pickup of a rotated key (a replica would refuse new-kid tokens for the cooldown after each tick).
  let lastMissReload = Number.NEGATIVE_INFINITY;
  let reloading: Promise<void> | null = null;

  // The stored keys of the last load: put back if the store comes back empty.
  let known: StoredKey[] = [];

  async function load(): Promise<void> {
    let stored = await store.getKeys();
    if (stored.length === 0 && known.length > 0) {
      // The store lost its data (a Redis restarted without persistence): an empty ring would make
      // every token invalid and signing impossible until a restart. Put back the keys this replica
      // holds (idempotent per kid), so it and any replica starting now keep agreeing.
      for (const key of known) await store.addKey(key, false);
      stored = await store.getKeys();
    }
    known = stored;
    const active = await Promise.all(stored.map(activate));
    if (fixed) active.push(fixed);
    byKid = new Map(active.map((k) => [k.kid, k]));
    // Sign with the newest key of the configured algorithm; other algorithms only verify.
    const previous = newest;
    newest = active.filter((k) => k.alg === algorithm).sort((a, b) => b.createdAt - a.createdAt)[0] ?? null;
    if (previous && newest && newest.kid !== previous.kid) options.onRotated?.(newest.kid);
  }

  await load();
  if (!newest) {
    const key = await generate(algorithm, options.clock());
    if (await store.addKey(key, true)) options.onGenerated?.(key.kid);
    await load();
  }
  if (!newest) throw new Error(`no ${algorithm} signing key could be loaded`);

  const timer = options.refreshIntervalMs > 0 ? setInterval(() => void load().catch(() => {}), options.refreshIntervalMs).unref() : null;

  const ring: KeyRing = {
    algorithm,
    signingKey: () => {
      if (!newest) throw new Error('key ring is empty');
      return newest;
    },
    verificationKey: async (kid) => {
      const known = byKid.get(kid);
      if (known) return known;
      // Concurrent requests with the new kid wait for the one reload instead of being refused.
      if (!reloading) {
        if (options.clock() - lastMissReload < RELOAD_COOLDOWN_MS) return null;
        lastMissReload = options.clock();
        reloading = load().finally(() => {
          reloading = null;
        });
      }
      await reloading;
      return byKid.get(kid) ?? null;
    },
    jwks: () => ({ keys: [...byKid.values()].flatMap((k) => (k.publicJwk ? [k.publicJwk] : [])) }),
    rotate: async () => {
      const key = await generate(algorithm, Math.max(options.clock(), (newest?.createdAt ?? 0) + 1));
      await store.addKey(key, false);
      await load();
      return ring.signingKey();
    },
    refresh: load,
    close: () => {
      if (timer) clearInterval(timer);
    },
  };
  return ring;
}
