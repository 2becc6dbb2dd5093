import { shortHash } from '../observability/short-hash.js';
import type { SessionStore } from '../store/types.js';
import { endingOf } from './end-session.js';
import type { SessionEnder } from './end-session.js';
import type { SessionIds } from './session-id.js';

/** A session as an operator sees it: never the proxy session id, only a short hash of its store key. */
export interface SessionRow {
  /** Short hash of the store key: the same value security events log as `session`. */
  readonly session: string;
  readonly clientId: string;
  /** Index into `upstreams` of the upstream the session is pinned to. */
  readonly upstream: number;
  readonly createdAt: number;
  /** When it ends unless used again (idle timeout, capped by the lifetime). */
  readonly expiresAt: number;
}

/** What revoking one proxy session id found. */
export type RevokeOne = 'ended' | 'unknown' | 'invalid';

/** Open sessions of one client (or of all when `clientId` is null), oldest first. */
export async function listSessionRows(store: SessionStore, clientId: string | null, now: number): Promise<SessionRow[]> {
  const sessions = await store.listSessions(clientId, now);
  return sessions
    .map((s) => ({ session: shortHash(s.key), clientId: s.principal, upstream: s.upstream, createdAt: s.createdAt, expiresAt: s.expiresAt }))
    .sort((a, b) => a.createdAt - b.createdAt || a.session.localeCompare(b.session));
}

/**
 * Ends one session given its proxy session id. The id is not stored anywhere: its store key is
 * derived from it with the tag secret, which also proves it was minted for this client.
 * `invalid`: not a proxy session id of this client; `unknown`: valid but already ended.
 */
export async function revokeSession(store: SessionStore, ender: Pick<SessionEnder, 'end'>, sessionIds: SessionIds, clientId: string, proxySessionId: string, now: number): Promise<RevokeOne> {
  const key = sessionIds.check(proxySessionId, clientId);
  if (key === null) return 'invalid';
  const found = (await store.listSessions(clientId, now)).find((s) => s.key === key);
  return found && (await ender.end(endingOf(found), 'operator')) ? 'ended' : 'unknown';
}

/** What ending a session by its listed hash found. */
export type EndByHash = { outcome: 'ended'; clientId: string } | { outcome: 'unknown' } | { outcome: 'ambiguous' };

/**
 * Ends the open session whose listed hash (`session list`, and the `session` of security events)
 * is `hash`: the id itself is stored nowhere, so that hash is how an operator names a session.
 */
export async function endSessionByHash(store: SessionStore, ender: Pick<SessionEnder, 'end'>, hash: string, clientId: string | null, now: number): Promise<EndByHash> {
  const matches = (await store.listSessions(clientId, now)).filter((s) => shortHash(s.key) === hash);
  if (matches.length > 1) return { outcome: 'ambiguous' };
  const match = matches[0];
  if (!match || !(await ender.end(endingOf(match), 'operator'))) return { outcome: 'unknown' };
  return { outcome: 'ended', clientId: match.principal };
}

/** Ends every session of a client; its tokens stay valid (revoke those with `token revoke`). Returns how many ended. */
export async function revokeClientSessions(store: SessionStore, ender: Pick<SessionEnder, 'end'>, clientId: string, now: number): Promise<number> {
  let ended = 0;
  for (const s of await store.listSessions(clientId, now)) if (await ender.end(endingOf(s), 'operator')) ended++;
  return ended;
}

/** A plain-text table of sessions for the terminal (ISO times, UTC). */
export function formatSessionRows(rows: readonly SessionRow[]): string {
  const header = ['SESSION', 'CLIENT', 'UPSTREAM', 'CREATED', 'EXPIRES'];
  const cells = rows.map((r) => [r.session, r.clientId, String(r.upstream), new Date(r.createdAt).toISOString(), new Date(r.expiresAt).toISOString()]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  return [header, ...cells].map((line) => line.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
