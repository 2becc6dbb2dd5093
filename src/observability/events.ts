import type { Logger } from 'pino';
import { shortHash } from './short-hash.js';

/** Every security event name (DESIGN §9). No event name is spelled anywhere else. */
const LEVELS = {
  'auth.failed': 'warn',
  'token.issued': 'info',
  'token.refreshed': 'info',
  'token.revoked': 'info',
  'token.refused': 'warn',
  'refresh.reuse': 'warn',
  'session.created': 'info',
  'session.ended': 'info',
  'session.evicted': 'info',
  'session.not_found': 'warn',
  'session.binding_mismatch': 'warn',
  'session.limited': 'warn',
  'relay.refused': 'warn',
  'login.started': 'info',
  'login.completed': 'info',
  'login.denied': 'info',
  'client.registered': 'info',
  'admin.action': 'warn',
  'budget.exceeded': 'warn',
  'loop.broken': 'warn',
  'audit.failed': 'error',
  'admin.refused': 'warn',
  'rate.limited': 'warn',
  'address.blocked': 'warn',
  'origin.refused': 'warn',
  'transport.refused': 'warn',
  'request.refused': 'info',
  'request.failed': 'error',
  'upstream.failed': 'error',
  'store.unavailable': 'error',
  'store.data_lost': 'error',
  'keys.rotated': 'info',
  'keys.generated': 'warn',
  'policy.denied': 'warn',
  'policy.reloaded': 'info',
  'clients.reloaded': 'info',
  'policy.reload_failed': 'error',
  'tool.called': 'info',
} as const;

/** Every security event name (DESIGN §9), with its log level. No event name is spelled anywhere else. */
export const SECURITY_EVENTS = Object.keys(LEVELS) as readonly SecurityEvent[];

export type SecurityEvent = keyof typeof LEVELS;

/** Fields an event may carry. Ids are hashed here; tokens and secrets have no field at all. */
export interface EventFields {
  readonly reason?: string;
  readonly clientId?: string | null;
  readonly address?: string;
  readonly route?: string;
  readonly status?: number;
  readonly code?: string;
  readonly limiter?: string;
  /** Hashed before logging. */
  readonly sessionId?: string | null;
  /** Hashed before logging. */
  readonly jti?: string | null;
  /** Hashed before logging. */
  readonly grantId?: string | null;
  readonly count?: number;
  readonly kid?: string;
  /** store.data_lost: when the store's new life began (ISO 8601). */
  readonly since?: string;
  /** Store namespace of the caller (client id, or issuer-qualified subject). */
  readonly principal?: string | null;
  /** MCP method, and the tool, prompt or resource it names (policy events). */
  readonly method?: string | null;
  readonly name?: string | null;
  /** Policy rule id that decided. */
  readonly rule?: string | null;
  /** tool.called: short SHA-256 digest of the canonical arguments, never the arguments. */
  readonly arguments?: string;
  /** tool.called: time from the decision to the end of the response. */
  readonly ms?: number;
  /** policy.reload_failed: every problem of the rejected policy. */
  readonly problems?: readonly string[];
  /** token.issued, token.refreshed, token.refused: the OAuth grant type asked for. */
  readonly grant?: string | null;
}

/** Something that sees every security event a logger writes (metrics). */
export type EventTap = (event: SecurityEvent, fields: EventFields) => void;

const TAP = Symbol('mcp-warden.eventTap');

/**
 * A logger whose security events, its own and its children's (pino children inherit from their
 * parent), also reach `tap`: metrics count events where they are logged, with nothing threaded
 * through every module that logs one.
 */
export function tapEvents(log: Logger, tap: EventTap): Logger {
  const tapped = log.child({});
  Object.defineProperty(tapped, TAP, { value: tap });
  return tapped;
}

/**
 * Logs a security event as one JSON line with a stable `event` name. Session ids, token ids and
 * grant ids appear only as short hashes, so logs can correlate without holding anything usable.
 */
export function logEvent(log: Logger, event: SecurityEvent, fields: EventFields = {}): void {
  const { sessionId, jti, grantId, ...rest } = fields;
  const line: Record<string, unknown> = { event, ...rest };
  if (sessionId) line.session = shortHash(sessionId);
  if (jti) line.jti = shortHash(jti);
  if (grantId) line.grant = shortHash(grantId);
  log[LEVELS[event]](line, event);
  (log as unknown as { [TAP]?: EventTap })[TAP]?.(event, fields);
}
