import type { Config } from '../config/schema.js';
import type { ClientRegistry } from '../auth/clients.js';
import type { VerifyAccessToken } from '../auth/access-token.js';
import type { FingerprintInput } from '../session/binding.js';
import type { SessionIds } from '../session/session-id.js';
import type { StreamGauge } from '../session/streams.js';
import type { UpstreamPicker } from '../session/upstreams.js';
import type { Generation } from '../store/generation.js';
import type { AuditTrail } from '../audit/trail.js';
import { compileGlob } from '../policy/glob.js';
import { enforceBudgets } from './enforce-budgets.js';
import { recordAudit } from './record-audit.js';
import type { Limiters } from '../store/limiters.js';
import type { Store } from '../store/types.js';
import type { Relay } from '../session/relay.js';
import type { SessionEnder } from '../session/end-session.js';
import { acceptRelay } from './accept-relay.js';
import { legacySseBridge } from './legacy-bridge.js';
import type { UpstreamTransport } from './upstream-transport.js';
import { legacyMessageTarget, legacySessionFromQuery, openLegacyStream } from './legacy-sse.js';
import { authenticate, refuseUnauthenticated } from './authenticate.js';
import { authorize } from './authorize.js';
import type { AuthorizeDeps } from './authorize.js';
import { filterLists, streamListFilter } from './filter-lists.js';
import type { EventTransform } from './sse-rewrite.js';
import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { compilePolicy } from '../policy/decide.js';
import type { Policy } from '../policy/decide.js';
import { checkTransport } from './check-transport.js';
import { enforceRateLimit } from './enforce-rate-limit.js';
import { createUpstreamAgent, forward, streamableHttp } from './forward.js';
import type { ForwardDeps } from './forward.js';
import { loadState } from './load-state.js';
import { loadAddressBlock, rejectBlocked } from './reject-blocked.js';
import { refuseRevoked } from './refuse-revoked.js';
import { resolveClientAddress } from './resolve-client-address.js';
import { messageReader } from './read-message.js';
import type { ReadMessage } from './read-message.js';
import { resolveSession } from './resolve-session.js';
import { capStreams, endOnDelete, forgetGoneSession, swapSessionId } from './rewrite-response.js';
import type { RewriteDeps } from './rewrite-response.js';
import type { ResponseStage, Stage } from './stage.js';
import type { Tracing } from '../observability/tracing.js';

export { runStages } from './stage.js';
export { buildRefusalHooks, clientIdOf } from './refusals.js';
export type { RefusalHook } from './refusals.js';
export type { Stage, ResponseStage } from './stage.js';

const constant = <T>(value: T) => (): T => value;

/** Everything the stages need, built once by the composition root. */
export interface StageDeps {
  readonly store: Store;
  readonly limiters: Limiters;
  readonly clients: ClientRegistry;
  readonly verify: VerifyAccessToken;
  readonly sessionIds: SessionIds;
  readonly upstreams: UpstreamPicker;
  readonly streams: StreamGauge;
  /** Sidecar layout's relay between replicas (inert in the gateway layout). */
  readonly relay: Relay;
  readonly fingerprint: (input: FingerprintInput) => string;
  readonly endUpstreamSession: RewriteDeps['endUpstreamSession'];
  /** The one way sessions end (DELETE, eviction, upstream 404, owner gone, stream closed). */
  readonly ender: SessionEnder;
  readonly onStreamStart?: ForwardDeps['onStreamStart'];
  /** Upstream connection pools, owned (and destroyed on close) by the composition root. */
  readonly agent?: ForwardDeps['agent'];
  readonly clock: () => number;
  readonly stopwatch: () => number;
  readonly generation: Generation;
  /** The audit trail (audit.sinks), or null. */
  readonly audit: AuditTrail | null;
  /** Counts store failures outside the hot path (budgets). */
  readonly onStoreError?: (err: unknown) => void;
  /** The policy in force (reloadable); compiled from config.policy when absent. Unused without a policy. */
  readonly policy?: () => Policy;
  /** Counts policy decisions (metrics). */
  readonly onPolicyDecision?: AuthorizeDeps['onDecision'];
  /** The MCP path's upstream transport, made by the composition root (which closes it); built here when absent. */
  readonly upstreamTransport?: UpstreamTransport;
  /** Tracing, when configured: it wraps the traced stages in spans. */
  readonly tracing?: Tracing | null;
}

/** The stages as built, or each traced one wrapped in its span when tracing is on. */
function traced(deps: Pick<StageDeps, 'tracing'>, stages: Stage[]): Stage[] {
  const { tracing } = deps;
  return tracing ? stages.map((s) => tracing.stage(s)) : stages;
}

/**
 * Authentication and what the store knows about the caller, then the decisions on it, each its own
 * stage (DESIGN §4 steps 3-6): load-state reads the address's block with the rest, so the block is
 * refused first, then a failed authentication, then a revoked token, then the rate limit.
 */
function authenticatedStages(config: Config, deps: StageDeps): Stage[] {
  return [
    authenticate({ verify: deps.verify, requiredScope: config.tokens.requiredScope }),
    loadState({
      limiters: deps.limiters, clients: deps.clients, sessionIds: deps.sessionIds, idleTimeoutMs: config.sessions.idleTimeout, maxLifetimeMs: config.sessions.maxLifetime,
      clock: deps.clock, generation: deps.generation,
    }),
    rejectBlocked({ limiters: deps.limiters }),
    refuseUnauthenticated(),
    refuseRevoked({ generation: deps.generation, skewMs: config.tokens.clockSkew }),
    enforceRateLimit(),
  ];
}

/**
 * The stages every route starts with: transport checks, the client address, and (unless the route
 * reads it with its state, or is the admin listener's) the address's failed-attempt block.
 */
export function buildEntryStages(config: Config, deps: Pick<StageDeps, 'limiters'>, addressBlock: 'now' | 'with-state' | 'none' = 'now'): Stage[] {
  const { security } = config;
  return [
    checkTransport({ maxBodyBytes: security.maxBodyBytes, requireSecureTransport: security.requireSecureTransport, allowedOrigins: security.allowedOrigins, trustProxy: security.trustProxy }),
    resolveClientAddress({ trustProxy: security.trustProxy }),
    ...(addressBlock === 'now' ? [loadAddressBlock({ limiters: deps.limiters }), rejectBlocked({ limiters: deps.limiters })] : []),
  ];
}

/** The MCP path's response stages, in order (DESIGN §4 step 9). */
export function buildResponseStages(config: Config, deps: StageDeps): ResponseStage[] {
  const { sessions } = config;
  const rewrite: RewriteDeps = {
    store: deps.store,
    sessionIds: deps.sessionIds,
    fingerprint: deps.fingerprint,
    maxConcurrent: sessions.maxConcurrent,
    onLimit: sessions.onLimit,
    idleTimeoutMs: sessions.idleTimeout,
    maxLifetimeMs: sessions.maxLifetime,
    clock: deps.clock,
    owner: deps.relay.enabled ? deps.relay.replicaId : null,
    endUpstreamSession: deps.endUpstreamSession,
    ender: deps.ender,
  };
  // With a policy, list results lose what the caller may not use (DESIGN §12); without, no stage.
  const filter = config.policy ? [filterLists({ policy: deps.policy ?? constant(compilePolicy(config.policy)), maxBodyBytes: config.security.maxBodyBytes })] : [];
  return [capStreams({ streams: deps.streams, endUpstreamSession: deps.endUpstreamSession }), swapSessionId(rewrite), forgetGoneSession(rewrite), endOnDelete(rewrite), ...filter];
}

/** The MCP path's request stages, in DESIGN §4 order. A test pins the names. */
export function buildRequestStages(config: Config, deps: StageDeps): Stage[] {
  const { security, sessions } = config;
  // One message seam for every stage that needs the body: it is read and parsed at most once.
  const readMessage = messageReader(security.maxBodyBytes);
  const authorizeStage = authorizeStages(config, deps, readMessage);
  return traced(deps, [
    ...buildEntryStages(config, deps, 'with-state'),
    acceptRelay({ relay: deps.relay }),
    ...authenticatedStages(config, deps),
    resolveSession({ store: deps.store, ender: deps.ender, limiters: deps.limiters, upstreams: deps.upstreams, fingerprint: deps.fingerprint, maxBodyBytes: security.maxBodyBytes, maxConcurrent: sessions.maxConcurrent, onLimit: sessions.onLimit, streams: deps.streams, relay: deps.relay, transport: 'streamable-http', clock: deps.clock, readMessage }),
    ...auditStages(config, deps, readMessage),
    ...authorizeStage,
    ...budgetStages(config, deps, readMessage),
    (deps.upstreamTransport ?? createUpstreamTransport(config, deps)).forward,
  ]);
}

/** The MCP path's way to its upstream: the legacy bridge when `legacySse.bridge` is on, else Streamable HTTP. */
export function createUpstreamTransport(config: Config, deps: StageDeps): UpstreamTransport {
  const { security, legacySse } = config;
  if (!legacySse.bridge || legacySse.upstream === null) return streamableHttp(forwardDeps(config, deps));
  return legacySseBridge({
    sseUrl: legacySse.upstream, agent: deps.agent ?? createUpstreamAgent(security.upstreamTimeout), upstreamHeaders: config.upstreamHeaders,
    upstreamTimeoutMs: security.upstreamTimeout, responseStages: buildResponseStages(config, deps), readMessage: messageReader(security.maxBodyBytes),
    stopwatch: deps.stopwatch, onStreamStart: deps.onStreamStart,
  });
}

/** The audit trail's stage when `audit.sinks` has any. */
function auditStages(config: Config, deps: StageDeps, readMessage: ReadMessage): Stage[] {
  if (!deps.audit) return [];
  return [recordAudit({ trail: deps.audit, readMessage, key: config.audit.key ?? '', rawArguments: config.audit.rawArguments.map((g) => compileGlob(g)), failClosed: config.audit.failClosed, stopwatch: deps.stopwatch })];
}

/** Budgets and the loop breaker, when any is configured. */
function budgetStages(config: Config, deps: StageDeps, readMessage: ReadMessage): Stage[] {
  const { budgets } = config;
  const any = budgets.session || budgets.principal || budgets.sessionTotal !== null || budgets.concurrent !== null || budgets.tools.length > 0 || config.loopBreaker.maxRepeats !== null;
  if (!any) return [];
  return [enforceBudgets({ store: deps.store, budgets, loopBreaker: config.loopBreaker, sessionLifetimeMs: config.sessions.maxLifetime, readMessage, onStoreError: deps.onStoreError ?? (() => {}) })];
}

/** The authorize stage when a policy is configured; none at all otherwise (the no-policy path reads no body). */
function authorizeStages(config: Config, deps: StageDeps, readMessage: ReadMessage, legacy = false): Stage[] {
  if (!config.policy && !config.log.toolCalls) return [];
  const policy = config.policy ? (deps.policy ?? constant(compilePolicy(config.policy))) : null;
  return [authorize({ policy, readMessage, onDecision: deps.onPolicyDecision, auditToolCalls: config.log.toolCalls, stopwatch: deps.stopwatch, legacy })];
}

/** With a policy: the list filter for a legacy event stream (answers come there, not in the POST's response). */
function listFilterOf(config: Config, deps: StageDeps): ((ctx: RequestContext) => EventTransform) | undefined {
  if (!config.policy) return undefined;
  const policy = deps.policy ?? constant(compilePolicy(config.policy));
  return (ctx) => streamListFilter(policy(), need(ctx.identity, 'ctx.identity'));
}

/**
 * Legacy HTTP+SSE clients (DESIGN §16), when `legacySse.upstream` is set: the event stream and the
 * message endpoint. Messages run the MCP path's checks; the stream is the session.
 */
export function buildLegacyStages(config: Config, deps: StageDeps): { stream: Stage[]; message: Stage[] } | null {
  const { security, sessions, legacySse } = config;
  if (legacySse.upstream === null) return null;
  const sseUrl = legacySse.upstream;
  const readMessage = messageReader(security.maxBodyBytes);
  return {
    stream: traced(deps, [
      ...buildEntryStages(config, deps, 'with-state'),
      ...authenticatedStages(config, deps),
      openLegacyStream({
        sseUrl, messagePath: legacySse.messagePath, agent: deps.agent ?? createUpstreamAgent(security.upstreamTimeout), upstreamHeaders: config.upstreamHeaders,
        upstreamTimeoutMs: security.upstreamTimeout, store: deps.store, ender: deps.ender, sessionIds: deps.sessionIds, streams: deps.streams, fingerprint: deps.fingerprint,
        maxConcurrent: sessions.maxConcurrent, onLimit: sessions.onLimit, idleTimeoutMs: sessions.idleTimeout, maxLifetimeMs: sessions.maxLifetime, clock: deps.clock, onStreamStart: deps.onStreamStart,
        rewriteEvents: listFilterOf(config, deps),
      }),
    ]),
    message: traced(deps, [
      ...buildEntryStages(config, deps, 'with-state'),
      legacySessionFromQuery(),
      ...authenticatedStages(config, deps),
      resolveSession({ store: deps.store, ender: deps.ender, limiters: deps.limiters, upstreams: deps.upstreams, fingerprint: deps.fingerprint, maxBodyBytes: security.maxBodyBytes, maxConcurrent: sessions.maxConcurrent, onLimit: sessions.onLimit, streams: deps.streams, relay: deps.relay, transport: 'legacy-sse', clock: deps.clock, readMessage }),
      // The legacy message endpoint is another way in: the same policy judges its messages.
      ...authorizeStages(config, deps, readMessage, true),
      legacyMessageTarget({ sseUrl }),
      forward(forwardDeps(config, deps)),
    ]),
  };
}

function forwardDeps(config: Config, deps: StageDeps): ForwardDeps {
  const { security } = config;
  return {
    upstreamTimeoutMs: security.upstreamTimeout,
    maxBodyBytes: security.maxBodyBytes,
    upstreamHeaders: config.upstreamHeaders,
    identityHeaders: config.identityHeaders,
    responseStages: buildResponseStages(config, deps),
    stopwatch: deps.stopwatch,
    onStreamStart: deps.onStreamStart,
    agent: deps.agent,
    relay: deps.relay,
    endUpstreamSession: deps.endUpstreamSession,
  };
}
