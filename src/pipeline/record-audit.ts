import { createHmac, createSecretKey } from 'node:crypto';
import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import { canonical } from '../audit/chain.js';
import type { AuditTrail } from '../audit/trail.js';
import { shortHash } from '../observability/short-hash.js';
import { anyGlob } from '../policy/glob.js';
import type { Glob } from '../policy/glob.js';
import type { ReadMessage } from './read-message.js';

export interface RecordAuditDeps {
  readonly trail: AuditTrail;
  readonly readMessage: ReadMessage;
  /** HMAC key of argument digests: equal arguments match across the trail, none is stored. */
  readonly key: string;
  /** Tools whose raw arguments are recorded too (audit.rawArguments). */
  readonly rawArguments: readonly Glob[];
  readonly failClosed: boolean;
  readonly stopwatch: () => number;
}

/**
 * Stage (with `audit.sinks`): every MCP message that reached the policy decision gets one audit
 * record when its response is over: who, which session (short hash), what (method and tool,
 * prompt or resource; arguments as an HMAC digest), the decision and its rule, the refusal or
 * the upstream status, and the time taken. Writing never waits; with `failClosed`, a trail that
 * cannot keep up refuses the request instead (503).
 */
export function recordAudit(deps: RecordAuditDeps) {
  // A key object made once: a string key is imported again by every createHmac.
  const key = createSecretKey(Buffer.from(deps.key, 'utf8'));
  const digest = (args: unknown): string => createHmac('sha256', key).update(canonical(args ?? null)).digest('base64url').slice(0, 22);
  return async function recordAudit(ctx: RequestContext): Promise<void> {
    // A relayed request was recorded by the replica that took it.
    if (ctx.req.method !== 'POST' || ctx.relayedFrom !== null) return;
    if (deps.failClosed && !deps.trail.accepting()) throw new WardenError('AUDIT_UNAVAILABLE', { reason: 'store', retryAfterMs: 2_000 });
    const message = await deps.readMessage(ctx);
    const identity = need(ctx.identity, 'ctx.identity');
    const started = deps.stopwatch();
    ctx.res.once('close', () => {
      const ms = Math.round(deps.stopwatch() - started);
      message.calls.forEach((call, i) => {
        const decision = ctx.decisions?.[i];
        const raw = call.method === 'tools/call' && call.target !== null && anyGlob(deps.rawArguments, call.target);
        deps.trail.append({
          principal: identity.principal,
          client: identity.clientId,
          session: ctx.session ? shortHash(ctx.session.key) : null,
          method: call.method ?? 'response',
          name: call.target?.slice(0, 512) ?? null,
          args: call.method === 'tools/call' ? digest(call.arguments) : null,
          ...(raw ? { arguments: call.arguments ?? null } : {}),
          decision: decision?.outcome ?? (ctx.refusal ? 'refused' : 'allow'),
          rule: decision?.rule ?? null,
          refusal: ctx.refusal,
          status: ctx.res.statusCode,
          ms,
        });
      });
    });
  };
}
