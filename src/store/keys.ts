import type { EvictedSession, TrackedUpstream } from './types.js';

/**
 * Every store key name, built only here. Keys derived from a principal carry it as a Redis
 * Cluster hash tag (`{principal}`), so one request's lookups share a slot and can be one round trip.
 */
export interface KeyLayout {
  session(principal: string, key: string): string;
  /** Sorted set of a principal's session keys by creation time: caps and evicts. */
  sessionIndex(principal: string): string;
  revokedToken(principal: string, jti: string): string;
  revokedGrant(principal: string, grantId: string): string;
  /** "Tokens issued and sessions created before T are invalid." */
  cutoff(principal: string): string;
  refreshToken(principal: string, hash: string): string;
  readonly clients: string;
  readonly keys: string;
  secret(name: string): string;
  limiterPrefix(name: string): string;
  /** Sidecar layout: a live replica's relay URL (expires unless refreshed). */
  replica(id: string): string;
  /** Sign-in state (logins, codes, consents). */
  transient(name: string): string;
  /** Hash of the upstream sessions behind an owner's proxy sessions (`principal\nkey` -> `index\nid`). */
  upstreams(owner: string): string;
  /** A replica's audit trail (a Redis Stream: one chain per replica). */
  audit(replica: string): string;
}

export function keyLayout(prefix: string): KeyLayout {
  const tagged = (principal: string): string => `${prefix}{${principal}}`;
  return {
    session: (p, key) => `${tagged(p)}:s:${key}`,
    sessionIndex: (p) => `${tagged(p)}:ss`,
    revokedToken: (p, jti) => `${tagged(p)}:rj:${jti}`,
    revokedGrant: (p, gid) => `${tagged(p)}:rg:${gid}`,
    cutoff: (p) => `${tagged(p)}:cut`,
    refreshToken: (p, hash) => `${tagged(p)}:rt:${hash}`,
    clients: `${prefix}clients`,
    keys: `${prefix}keys`,
    secret: (name) => `${prefix}secret:${name}`,
    limiterPrefix: (name) => `${prefix}rl:${name}`,
    replica: (id) => `${prefix}replica:${id}`,
    transient: (name) => `${prefix}t:${name}`,
    upstreams: (owner) => `${prefix}up:${owner}`,
    audit: (replica) => `${prefix}audit:${replica}`,
  };
}

/**
 * What a session record keeps of its grant id: an 8-character prefix (48 bits) tells one
 * principal's few grants apart for grant revocation (a clash would only end one session too many).
 */
export function grantTag(grantId: string): string {
  return grantId.slice(0, 8);
}

/**
 * Session records as one compact string: `created|upstream|grant tag|fingerprint|upstreamSessionId`,
 * the creation time in base 36; `upstream` is the index, or `index@owner` in the sidecar layout. Every byte is paid once per session in Redis, and a typical record
 * (under 60 bytes) fits jemalloc's 64-byte class instead of the 80-byte one.
 */
export function encodeSession(r: { createdAt: number; upstream: number; grantId: string; fingerprint: string; upstreamSessionId: string; owner: string | null }): string {
  const upstream = r.owner === null ? String(r.upstream) : `${r.upstream}@${r.owner}`;
  return `${r.createdAt.toString(36)}|${upstream}|${grantTag(r.grantId)}|${r.fingerprint}|${r.upstreamSessionId}`;
}

// The upstream field: an index, and in the sidecar layout the owning replica (replica.id's charset).
const UPSTREAM_FIELD = /^(\d{1,6})(?:@([A-Za-z0-9._-]{1,40}))?$/;

/** An evicted session as the cap reports it, from its key and its record as stored (if any). */
export function evictedSession(principal: string, key: string, value: string | null | undefined): EvictedSession {
  const record = value ? decodeSession(principal, key, value) : null;
  return { key, upstream: record ? { index: record.upstream, sessionId: record.upstreamSessionId } : null };
}

/** Decodes {@link encodeSession}; null for anything malformed (treated as no session). */
export function decodeSession(principal: string, key: string, value: string): { principal: string; key: string; createdAt: number; upstream: number; grantId: string; fingerprint: string; upstreamSessionId: string; owner: string | null } | null {
  const parts = value.split('|');
  if (parts.length < 5) return null;
  const [created, upstream, grantId = '', fingerprint = ''] = parts;
  // The upstream id is visible ASCII and may itself contain "|": it is everything after the 4th.
  const upstreamSessionId = parts.slice(4).join('|');
  const createdAt = /^[0-9a-z]{1,11}$/.test(created ?? '') ? parseInt(created ?? '', 36) : Number.NaN;
  const field = UPSTREAM_FIELD.exec(upstream ?? '');
  if (!Number.isSafeInteger(createdAt) || !field || !upstreamSessionId) return null;
  return { principal, key, createdAt, upstream: Number(field[1]), grantId, fingerprint, upstreamSessionId, owner: field[2] ?? null };
}

/** The ledger's field and value for a tracked upstream session (principals and keys hold no newline). */
export function upstreamField(principal: string, key: string): string {
  return `${principal}\n${key}`;
}

export function decodeUpstream(field: string, value: string): TrackedUpstream | null {
  const [principal, key] = field.split('\n');
  const cut = value.indexOf('\n');
  if (!principal || !key || cut < 1) return null;
  return { principal, key, index: Number(value.slice(0, cut)), sessionId: value.slice(cut + 1) };
}
