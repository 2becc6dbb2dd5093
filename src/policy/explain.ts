import { parseMessage } from '../http/jsonrpc.js';
import type { Decision, Policy, Principal } from './decide.js';

/** One message's decision, for `mcp-warden policy test`. */
export interface Explained {
  readonly method: string | null;
  readonly target: string | null;
  readonly decision: Decision;
}

/**
 * Decides every message of a JSON-RPC body (one message or a batch) for a principal, exactly as
 * the authorize stage would; `ok: false` with the reason when the body is not a JSON-RPC message.
 */
export function explainMessage(policy: Policy, principal: Principal, body: string): { readonly ok: true; readonly results: readonly Explained[] } | { readonly ok: false; readonly reason: string } {
  const parsed = parseMessage(Buffer.from(body));
  if (!parsed.ok) return { ok: false, reason: parsed.reason === 'json' ? 'the message is not valid JSON' : 'the message is not a JSON-RPC message or batch' };
  return { ok: true, results: parsed.value.calls.map((call) => ({ method: call.method, target: call.target, decision: policy.decide(principal, call) })) };
}

/** One line per message: `deny tools/call "delete_x" (rule no-deletes)`. */
export function formatExplained(e: Explained): string {
  const what = `${e.method ?? '(response)'}${e.target === null ? '' : ` ${JSON.stringify(e.target)}`}`;
  const d = e.decision;
  const why = d.rule !== null ? `rule ${d.rule}` : d.by === 'default' ? 'the default' : d.by === 'baseline' ? 'baseline (handshake, ping, notifications, lists)' : 'not judgeable (ambiguous path or missing name)';
  if (d.allowed) return `allow ${what} (${why})`;
  return d.stepUp ? `step-up ${what} (${why}; allowed with scope ${d.stepUp.join(' ')})` : `deny ${what} (${why})`;
}
