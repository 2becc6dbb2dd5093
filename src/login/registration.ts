import { randomBytes } from 'node:crypto';
import { hashSecret } from '../auth/secret-hash.js';
import type { TransientStore } from '../store/types.js';
import type { LoginClient } from './clients.js';
import { redirectUriProblem } from './redirect-uris.js';
import type { RedirectPolicy } from './redirect-uris.js';

/**
 * What a client may say about itself, whether it registers (RFC 7591) or publishes a Client ID
 * Metadata Document: the same fields, checked the same way. Anything else in the request is
 * ignored (RFC 7591 §2), never stored.
 */
export interface ClientMetadata {
  readonly redirectUris: readonly string[];
  readonly authMethod: 'none' | 'client_secret_basic' | 'client_secret_post';
  readonly grantTypes: readonly string[];
  /** Self-asserted: shown on the consent page as the client's claim, never as fact. */
  readonly name: string | null;
  readonly uri: string | null;
}

export type MetadataResult = { ok: true; value: ClientMetadata } | { ok: false; error: 'invalid_redirect_uri' | 'invalid_client_metadata'; description: string };

const AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post'] as const;
const GRANT_TYPES = new Set(['authorization_code', 'refresh_token']);
const MAX_REDIRECT_URIS = 10;
const MAX_NAME = 100;

const strings = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');

/**
 * Checks client metadata. `defaultAuth` is RFC 7591's default (`client_secret_basic`) for a
 * registration, `none` for a metadata document (which can hold no secret).
 */
export function parseClientMetadata(raw: unknown, policy: RedirectPolicy, defaultAuth: ClientMetadata['authMethod'], allowedAuth: readonly ClientMetadata['authMethod'][] = AUTH_METHODS): MetadataResult {
  const bad = (description: string): MetadataResult => ({ ok: false, error: 'invalid_client_metadata', description });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('The metadata must be a JSON object');
  const m = raw as Record<string, unknown>;
  const uris = m.redirect_uris;
  if (!strings(uris) || uris.length === 0) return { ok: false, error: 'invalid_redirect_uri', description: 'redirect_uris must be a non-empty array of URIs' };
  if (uris.length > MAX_REDIRECT_URIS) return { ok: false, error: 'invalid_redirect_uri', description: `At most ${MAX_REDIRECT_URIS} redirect_uris` };
  for (const [i, uri] of uris.entries()) {
    const problem = redirectUriProblem(policy, uri);
    if (problem) return { ok: false, error: 'invalid_redirect_uri', description: `redirect_uris[${i}] ${problem}` };
  }
  const authMethod = m.token_endpoint_auth_method ?? defaultAuth;
  if (!allowedAuth.includes(authMethod as ClientMetadata['authMethod'])) return bad(`token_endpoint_auth_method must be one of: ${allowedAuth.join(', ')}`);
  const grantTypes = m.grant_types ?? ['authorization_code'];
  if (!strings(grantTypes) || grantTypes.length === 0 || !grantTypes.every((g) => GRANT_TYPES.has(g))) return bad('grant_types may only hold authorization_code and refresh_token');
  if (m.response_types !== undefined && !(strings(m.response_types) && m.response_types.every((r) => r === 'code'))) return bad('response_types may only hold code');
  if (m.client_name !== undefined && (typeof m.client_name !== 'string' || m.client_name.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(m.client_name))) return bad(`client_name must be text of at most ${MAX_NAME} characters`);
  if (m.client_uri !== undefined && (typeof m.client_uri !== 'string' || !/^https:\/\//.test(m.client_uri) || !URL.canParse(m.client_uri))) return bad('client_uri must be an https URL');
  return {
    ok: true,
    value: {
      redirectUris: uris,
      authMethod: authMethod as ClientMetadata['authMethod'],
      grantTypes,
      name: typeof m.client_name === 'string' && m.client_name.trim() ? m.client_name.trim() : null,
      uri: typeof m.client_uri === 'string' ? m.client_uri : null,
    },
  };
}

/** A registration as the store keeps it (the secret only as its scrypt hash). */
interface StoredRegistration {
  readonly id: string;
  readonly metadata: ClientMetadata;
  readonly secretHash: string | null;
  readonly issuedAt: number;
}

const registrationName = (id: string): string => `client:${id}`;
/** Registered client ids: `r~` and 22 base64url characters (never a configured id or a URL). */
const REGISTERED_ID = /^r~[A-Za-z0-9_-]{22}$/;

export interface RegistrationsDeps {
  readonly store: TransientStore;
  /** A registration nobody signed in through is forgotten after this long. */
  readonly unusedTtlMs: number;
  /** A used one lives this long after its last sign-in. */
  readonly ttlMs: number;
  readonly clock: () => number;
}

/** Dynamically registered clients (RFC 7591), in the store so every replica knows them. */
export function createRegistrations(deps: RegistrationsDeps) {
  const toClient = (r: StoredRegistration): LoginClient => ({
    id: r.id, name: r.metadata.name, uri: r.metadata.uri, redirectUris: r.metadata.redirectUris, public: r.secretHash === null,
    secretHash: r.secretHash, kind: 'registered', refresh: r.metadata.grantTypes.includes('refresh_token'),
  });
  return {
    /** Registers a client; the secret (confidential clients) is returned once and kept only hashed. */
    async register(metadata: ClientMetadata): Promise<{ id: string; secret: string | null; issuedAt: number }> {
      const id = `r~${randomBytes(16).toString('base64url')}`;
      const secret = metadata.authMethod === 'none' ? null : randomBytes(32).toString('base64url');
      const issuedAt = Math.floor(deps.clock() / 1000);
      const record: StoredRegistration = { id, metadata, secretHash: secret === null ? null : await hashSecret(secret), issuedAt };
      await deps.store.putTransient(registrationName(id), JSON.stringify(record), deps.unusedTtlMs);
      return { id, secret, issuedAt };
    },
    async find(id: string): Promise<LoginClient | null> {
      if (!REGISTERED_ID.test(id)) return null;
      const raw = await deps.store.getTransient(registrationName(id));
      return raw === null ? null : toClient(JSON.parse(raw) as StoredRegistration);
    },
    async used(client: LoginClient): Promise<void> {
      const raw = await deps.store.getTransient(registrationName(client.id));
      if (raw !== null) await deps.store.putTransient(registrationName(client.id), raw, deps.ttlMs);
    },
  };
}

export type Registrations = ReturnType<typeof createRegistrations>;
