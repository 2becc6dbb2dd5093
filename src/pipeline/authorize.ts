import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { ERROR_CATALOG, WardenError } from '../errors.js';
import { TARGET_PARAM } from '../http/jsonrpc.js';
import type { RpcCall, RpcMessage } from '../http/jsonrpc.js';
import { createHash } from 'node:crypto';
import { canonical } from '../audit/chain.js';
import type { Decision, Policy } from '../policy/decide.js';
import { logEvent } from '../observability/events.js';
import type { PolicyOutcome } from '../observability/metrics.js';
import type { ReadMessage } from './read-message.js';

export interface AuthorizeDeps {
  /** The policy in force now: read per request, so a reload applies to the next request only. Null: audit only. */
  readonly policy: (() => Policy) | null;
  readonly readMessage: ReadMessage;
  /** Counts each decision (metrics); `tool` is already bounded to the names the policy lists. */
  readonly onDecision?: (method: string | null, outcome: PolicyOutcome, tool: string) => void;
  /** `log.toolCalls`: a `tool.called` event for every allowed `tools/call`, when its response ends. */
  readonly auditToolCalls?: boolean;
  readonly stopwatch?: () => number;
  /**
   * The legacy HTTP+SSE message endpoint: a client there reads answers only from its event stream
   * and ignores a 200 body, so a denial is a 403 its POST fails with at once (not a 60 s wait).
   */
  readonly legacy?: boolean;
}

const ALLOWED: Decision = { allowed: true, rule: null, by: 'default' };

/** A short digest of tool arguments: correlates calls in an audit trail without logging what they carried. */
export function argumentDigest(args: unknown): string {
  return createHash('sha256').update(canonical(args)).digest('base64url').slice(0, 16);
}

const KIND: Readonly<Record<string, string>> = { 'tools/call': 'tool', 'prompts/get': 'prompt', 'resources/read': 'resource', 'resources/subscribe': 'resource', 'resources/unsubscribe': 'resource' };
// RFC 2047-style encoding MCP 2026-07-28 uses for header values that are not plain ASCII.
const ENCODED = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** A header value as the client meant it: `=?base64?...?=` decoded, anything else as sent. */
function headerValue(raw: string): string {
  const m = ENCODED.exec(raw);
  return m ? Buffer.from(m[1] ?? '', 'base64').toString('utf8') : raw;
}

/**
 * MCP 2026-07-28 `Mcp-Method` / `Mcp-Name` must say what the body says: an upstream or a later hop
 * that routes or decides on the headers would otherwise be told one thing while doing another.
 * Checked before any decision.
 */
function checkHeaders(ctx: RequestContext, message: RpcMessage): void {
  const method = ctx.req.headers['mcp-method'];
  const name = ctx.req.headers['mcp-name'];
  if (method === undefined && name === undefined) return;
  const call = message.isBatch ? null : message.calls[0];
  const mismatch = (): WardenError => new WardenError('HEADER_MISMATCH', { reason: 'mismatch' });
  // A repeated header arrives joined by ", " (or as an array): never equal to one value.
  if (!call || Array.isArray(method) || Array.isArray(name)) throw mismatch();
  if (method !== undefined && headerValue(method) !== call.method) throw mismatch();
  if (name !== undefined && (call.target === null || headerValue(name) !== call.target)) throw mismatch();
}

/** The client-facing error of one denied message: names the tool (or prompt, resource, method), never the rule. */
function deniedError(call: RpcCall): { code: 'POLICY_DENIED' | 'METHOD_DENIED'; message: string } {
  const kind = call.method !== null && Object.hasOwn(KIND, call.method) ? KIND[call.method] : undefined;
  // The MCP spec's own wording for an unknown tool, so a hidden tool reads like a missing one.
  if (kind !== undefined) return { code: 'POLICY_DENIED', message: `Unknown ${kind}: ${call.target ?? ''}` };
  return { code: 'METHOD_DENIED', message: ERROR_CATALOG.METHOD_DENIED.message };
}

/** Logs `tool.called` for each tools/call of an allowed message once the client's response is over. */
function audit(ctx: RequestContext, message: RpcMessage, stopwatch: () => number = () => performance.now()): void {
  const tools = message.calls.filter((c) => c.method === 'tools/call');
  if (tools.length === 0) return;
  const started = stopwatch();
  ctx.res.once('close', () => {
    for (const call of tools) {
      logEvent(ctx.log, 'tool.called', {
        principal: ctx.identity?.principal, clientId: ctx.identity?.clientId, sessionId: ctx.session?.key, name: call.target?.slice(0, 256),
        arguments: argumentDigest(call.arguments ?? null), status: ctx.response?.status ?? ctx.res.statusCode, ms: Math.round(stopwatch() - started),
      });
    }
  });
}

/**
 * Stage 8 (with a policy, or `log.toolCalls` for the audit alone): every message of a POST body is judged by the policy before the
 * upstream sees any of it. A denial a wider scope would lift answers 403 `insufficient_scope`
 * naming the scope (MCP step-up); any other denial answers a JSON-RPC error for the request's id;
 * a batch with any denied message is refused whole, one error per request id. GET and DELETE carry
 * no message and pass.
 */
export function authorize(deps: AuthorizeDeps) {
  return async function authorize(ctx: RequestContext): Promise<void> {
    if (ctx.req.method !== 'POST') return;
    const message = await deps.readMessage(ctx);
    checkHeaders(ctx, message);
    const identity = need(ctx.identity, 'ctx.identity');
    for (const call of message.calls) {
      // Fail closed: a tools/call whose name is not a string cannot be judged, so it goes nowhere.
      if (call.method !== null && Object.hasOwn(TARGET_PARAM, call.method) && call.target === null) {
        throw new WardenError('INVALID_MESSAGE', { description: `${call.method} needs a string params.${TARGET_PARAM[call.method] ?? 'name'}` });
      }
    }
    const policy = deps.policy?.() ?? null;
    const decisions: Decision[] = message.calls.map((call) => (policy ? policy.decide(identity, call) : ALLOWED));
    if (policy && deps.onDecision) {
      message.calls.forEach((call, i) => {
        const d = decisions[i] as Decision;
        const tool = call.method !== 'tools/call' ? 'none' : call.target !== null && policy.namedTools.has(call.target) ? call.target : 'other';
        deps.onDecision?.(call.method, d.allowed ? 'allow' : d.stepUp ? 'step_up' : 'deny', tool);
      });
    }
    ctx.decisions = decisions.map((d) => ({ outcome: d.allowed ? 'allow' : d.stepUp ? 'step_up' : 'deny', rule: d.rule }));
    const first = decisions.findIndex((d) => !d.allowed);
    if (first === -1) {
      if (deps.auditToolCalls) audit(ctx, message, deps.stopwatch);
      return;
    }
    const deniedCall = message.calls[first] as RpcCall;
    const decision = decisions[first] as Decision & { allowed: false };
    const denial = { method: deniedCall.method, name: deniedCall.target, rule: decision.rule };
    const reason = decision.by;
    const denied = decisions.filter((d): d is Decision & { allowed: false } => !d.allowed);
    if (denied.every((d) => d.stepUp !== null)) {
      const scope = [...new Set([...identity.scopes, ...denied.flatMap((d) => d.stepUp ?? [])])].join(' ');
      throw new WardenError('STEP_UP_REQUIRED', { reason, scope, denial });
    }
    if (!message.isBatch) {
      const { code, message: description } = deniedError(deniedCall);
      throw new WardenError(deps.legacy ? 'LEGACY_MESSAGE_DENIED' : code, { reason, denial, description });
    }
    const batchErrors = message.calls.flatMap((call, i): { id: string | number | null; code: number; message: string }[] => {
      if (!call.isRequest) return [];
      if (decisions[i]?.allowed) return [{ id: call.id, code: ERROR_CATALOG.INVALID_MESSAGE.rpcCode, message: 'Not run: another message of this batch was refused' }];
      const { code, message: m } = deniedError(call);
      return [{ id: call.id, code: ERROR_CATALOG[code].rpcCode, message: m }];
    });
    throw new WardenError('POLICY_DENIED', { reason, denial, batchErrors });
  };
}
