import { parseGroup } from './fields.js';
import type { Problem } from './fields.js';
import { schema } from './schema.js';
import type { Config } from './schema.js';
import { isSecretHash } from '../auth/secret-hash.js';

export type ValidationResult = { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly problems: readonly Problem[] };

const RESERVED_PATHS = ['/oauth', '/.well-known', '/healthz', '/readyz', '/metrics'];
// The example file's secrets and their obvious cousins: published, so anyone could sign tokens
// with them or pass for the client.
const PLACEHOLDER_SECRET = /change-?me|replace-?(me|with)|placeholder|your[-_ ]?secret|^(secret|password|changeit)$/i;
const PLACEHOLDER_MESSAGE = 'is a placeholder (like the example file\'s): anyone could use it; generate one, e.g. `openssl rand -base64 48`';

/**
 * Validates a merged raw configuration. Pure: no I/O, no globals. Reports every problem with its
 * key path, and returns a deep-frozen config only when there is none.
 */
export function validateConfig(raw: unknown): ValidationResult {
  const problems: Problem[] = [];
  const config = parseGroup(schema, withoutSchemaKey(raw, problems), '', problems, { partial: true });
  if (!config) return { ok: false, problems };
  // Each area's cross-key rules run when that area parsed cleanly, so one run lists every problem.
  const structural = [...problems];
  const clean = (area: string): boolean => !structural.some((p) => p.path === area || p.path.startsWith(`${area}.`) || p.path.startsWith(`${area}[`));
  const checks = [['admin', checkAdmin], ['store', checkStore], ['tokens', checkTokens], ['clients', checkClients], ['mcpPath', checkPaths], ['security', checkOrigins], ['tls', checkTls]] as const;
  for (const [area, check] of checks) if (clean(area)) check(config, problems);
  if (clean('replica') && clean('store')) checkReplica(config, problems);
  if (clean('audit') && clean('store')) checkAudit(config, problems);
  if (clean('legacySse') && clean('mcpPath')) checkLegacyPaths(config, problems);
  if (clean('login') && clean('clients')) checkLogin(config, problems);
  return problems.length ? { ok: false, problems } : { ok: true, config: deepFreeze(config) };
}

/** A file may name its JSON Schema (`"$schema"`, for editors); it is not configuration. */
function withoutSchemaKey(raw: unknown, problems: Problem[]): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !Object.hasOwn(raw, '$schema')) return raw;
  const { $schema, ...rest } = raw as Record<string, unknown>;
  if (typeof $schema !== 'string') problems.push({ path: '$schema', message: 'must be a string (the URL or path of mcp-warden.schema.json)' });
  return rest;
}

function checkAdmin({ admin }: Config, problems: Problem[]): void {
  if (admin.key !== null && admin.keyFile !== null) problems.push({ path: 'admin.key', message: 'give either "key" or "keyFile", not both' });
  // The admin API is never on the public listener.
  if ((admin.key !== null || admin.keyFile !== null) && admin.listen === null) problems.push({ path: 'admin.listen', message: 'is needed for the admin API (admin.key / admin.keyFile): it is served only there' });
  if (admin.key !== null && Buffer.byteLength(admin.key) < 32) problems.push({ path: 'admin.key', message: 'must be at least 32 bytes' });
}

function checkStore({ store }: Config, problems: Problem[]): void {
  if (store.password !== null && store.passwordFile !== null) problems.push({ path: 'store.password', message: 'give either "password" or "passwordFile", not both' });
  if (store.clientCache && (store.type !== 'redis' || store.cluster !== null)) problems.push({ path: 'store.clientCache', message: 'needs a standalone or Sentinel Redis store (each Cluster node tracks its own keys; not supported)' });
  if (store.type !== 'redis') return;
  const given = [store.url, store.sentinels, store.cluster].filter((x) => x !== null).length;
  if (given !== 1) problems.push({ path: 'store', message: 'a redis store needs exactly one of "url", "sentinels" or "cluster"' });
}

/** A redirect URI a login client may register: absolute, no fragment, plain http only on loopback (RFC 8252 §7.3, §8.3). */
function redirectUriProblem(value: string): string | null {
  if (!URL.canParse(value)) return 'must be an absolute URI';
  const url = new URL(value);
  if (url.hash || value.includes('#')) return 'must not have a fragment (RFC 6749 §3.1.2)';
  if (url.username || url.password) return 'must not carry user info';
  if (url.protocol === 'http:' && !['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)) return 'plain http only on 127.0.0.1, [::1] or localhost';
  if (url.protocol === 'javascript:' || url.protocol === 'data:' || url.protocol === 'file:') return `scheme ${url.protocol} is not allowed`;
  return null;
}

function checkLogin({ login, clients }: Config, problems: Problem[]): void {
  const { oidc } = login;
  if (oidc.issuer === null) {
    if (login.clients.length > 0) problems.push({ path: 'login.clients', message: 'needs login.oidc.issuer (the provider people sign in with)' });
    if (login.registration.dynamic) problems.push({ path: 'login.registration.dynamic', message: 'needs login.oidc.issuer (registered clients sign people in)' });
    return;
  }
  login.registration.redirectUris.forEach((pattern, i) => {
    if (/^(javascript|data|file|vbscript|blob|about|filesystem):/i.test(pattern)) problems.push({ path: `login.registration.redirectUris[${i}]`, message: 'may not allow a scheme a browser runs or reads locally' });
  });
  if (!isHttpsOrLoopback(oidc.issuer)) problems.push({ path: 'login.oidc.issuer', message: 'must be https (plain http only for localhost)' });
  if (oidc.clientId === null) problems.push({ path: 'login.oidc.clientId', message: 'is required with login.oidc.issuer' });
  if (!oidc.scopes.includes('openid')) problems.push({ path: 'login.oidc.scopes', message: 'must include "openid"' });
  const machine = new Set(clients.map((c) => c.id));
  const seen = new Set<string>();
  login.clients.forEach((client, i) => {
    const path = `login.clients[${i}]`;
    // The token's client_id must name one client, machine or app, never both.
    if (machine.has(client.id) || seen.has(client.id)) problems.push({ path: `${path}.id`, message: `duplicates client "${client.id}"` });
    seen.add(client.id);
    if (client.redirectUris.length === 0) problems.push({ path: `${path}.redirectUris`, message: 'needs at least one redirect URI' });
    client.redirectUris.forEach((uri, j) => {
      const problem = redirectUriProblem(uri);
      if (problem) problems.push({ path: `${path}.redirectUris[${j}]`, message: problem });
    });
    if (client.secretHash !== null && !isSecretHash(client.secretHash)) problems.push({ path: `${path}.secretHash`, message: 'must be a hash made by `mcp-warden client hash-secret`' });
  });
}

function checkAudit({ audit, store }: Config, problems: Problem[]): void {
  // A short key is refused whether or not a sink uses it yet (loading would refuse it too).
  if (audit.key !== null && Buffer.byteLength(audit.key) < 32) problems.push({ path: 'audit.key', message: 'must be at least 32 bytes' });
  if (audit.sinks.length === 0) return;
  if (audit.key === null && audit.keyFile === null) problems.push({ path: 'audit.key', message: 'is needed with audit.sinks (or audit.keyFile): argument digests are HMACs with it' });
  if (audit.key !== null && audit.keyFile !== null) problems.push({ path: 'audit.key', message: 'give either "key" or "keyFile", not both' });
  if (audit.sinks.includes('file') && audit.file === null) problems.push({ path: 'audit.file', message: 'is needed for the "file" sink' });
  if (audit.sinks.includes('redis') && store.type !== 'redis') problems.push({ path: 'audit.sinks', message: 'the "redis" sink needs store.type "redis"' });
}

function checkReplica({ replica, store }: Config, problems: Problem[]): void {
  // One process has no other replica to relay to, and relaying needs the shared session records.
  if (replica.advertiseUrl !== null && store.type !== 'redis') problems.push({ path: 'replica.advertiseUrl', message: 'needs store.type "redis" (replicas find each other through the store)' });
}

function checkTokens({ tokens }: Config, problems: Problem[]): void {
  if (tokens.secret !== null && tokens.secretFile !== null) {
    problems.push({ path: 'tokens.secret', message: 'give either "secret" or "secretFile", not both' });
  }
  if (tokens.secret !== null && PLACEHOLDER_SECRET.test(tokens.secret)) problems.push({ path: 'tokens.secret', message: PLACEHOLDER_MESSAGE });
  if (tokens.secret !== null && Buffer.byteLength(tokens.secret) < 32) {
    problems.push({ path: 'tokens.secret', message: 'must be at least 32 bytes' });
  }
  if (tokens.algorithm !== 'HS256' && (tokens.secret !== null || tokens.secretFile !== null)) {
    problems.push({ path: 'tokens.secret', message: `is only used with HS256; ${tokens.algorithm} keys are generated and kept in the store` });
  }
  tokens.trustedIssuers.forEach((issuer, i) => {
    if (tokens.issuer !== null && issuer.issuer === tokens.issuer) {
      problems.push({ path: `tokens.trustedIssuers[${i}].issuer`, message: 'must differ from tokens.issuer' });
    }
    // Keys fetched over plain HTTP could be swapped in transit: only a loopback JWKS may skip TLS.
    if (issuer.types.length === 0) problems.push({ path: `tokens.trustedIssuers[${i}].types`, message: 'must list at least one accepted typ (usually "at+jwt")' });
    if (!isHttpsOrLoopback(issuer.jwksUri)) problems.push({ path: `tokens.trustedIssuers[${i}].jwksUri`, message: 'must be https (plain http only for localhost)' });
  });
}

function isHttpsOrLoopback(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || (url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname));
  } catch {
    return false;
  }
}

function checkClients({ clients }: Config, problems: Problem[]): void {
  const seen = new Set<string>();
  clients.forEach((client, i) => {
    const path = `clients[${i}]`;
    if (seen.has(client.id)) problems.push({ path: `${path}.id`, message: `duplicates client "${client.id}"` });
    seen.add(client.id);
    const given = [client.secret, client.secretFile, client.secretHash].filter((x) => x !== null).length;
    if (given !== 1) problems.push({ path, message: 'needs exactly one of "secret", "secretFile" or "secretHash"' });
    if (client.secret !== null && Buffer.byteLength(client.secret) < 16) problems.push({ path: `${path}.secret`, message: 'must be at least 16 bytes' });
    if (client.secret !== null && PLACEHOLDER_SECRET.test(client.secret)) problems.push({ path: `${path}.secret`, message: PLACEHOLDER_MESSAGE });
    if (client.secretHash !== null && !isSecretHash(client.secretHash)) {
      problems.push({ path: `${path}.secretHash`, message: 'must be a hash made by `mcp-warden client hash-secret`' });
    }
  });
}

function checkLegacyPaths({ mcpPath, legacySse }: Config, problems: Problem[]): void {
  if (legacySse.upstream === null) {
    if (legacySse.bridge) problems.push({ path: 'legacySse.bridge', message: 'needs legacySse.upstream (the legacy server to bridge to)' });
    return;
  }
  for (const key of ['ssePath', 'messagePath'] as const) {
    const path = legacySse[key];
    if (path === mcpPath || RESERVED_PATHS.some((p) => path === p || path.startsWith(`${p}/`))) problems.push({ path: `legacySse.${key}`, message: `must differ from mcpPath and not be under ${RESERVED_PATHS.join(', ')}` });
  }
  if (legacySse.ssePath === legacySse.messagePath) problems.push({ path: 'legacySse.messagePath', message: 'must differ from legacySse.ssePath' });
}

function checkPaths({ mcpPath }: Config, problems: Problem[]): void {
  if (RESERVED_PATHS.some((p) => mcpPath === p || mcpPath.startsWith(`${p}/`))) {
    problems.push({ path: 'mcpPath', message: `must not be under ${RESERVED_PATHS.join(', ')}` });
  }
}

function checkOrigins({ security }: Config, problems: Problem[]): void {
  security.allowedOrigins.forEach((origin, i) => {
    let ok = false;
    try {
      ok = new URL(origin).origin === origin;
    } catch {
      ok = false;
    }
    if (!ok) problems.push({ path: `security.allowedOrigins[${i}]`, message: 'must be an origin such as "https://app.example" (scheme, host, optional port)' });
  });
}

function checkTls({ tls }: Config, problems: Problem[]): void {
  if ((tls.certFile === null) !== (tls.keyFile === null)) problems.push({ path: 'tls', message: 'needs both "certFile" and "keyFile", or neither' });
}

/** Freezes an object and everything reachable from it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
