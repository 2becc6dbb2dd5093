import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { parseMessage, readBody } from '../http/jsonrpc.js';
import type { RpcMessage } from '../http/jsonrpc.js';

/** Reads and parses the request's JSON-RPC body once; later calls return the same message. */
export type ReadMessage = (ctx: RequestContext) => Promise<RpcMessage>;

/**
 * The message seam: the one place a POST body on the MCP path is read (bounded by `maxBodyBytes`)
 * and parsed, once, by the first stage that asks (resolve-session reads every POST).
 * Not JSON → INVALID_JSON, not a JSON-RPC message or batch → INVALID_MESSAGE (nothing forwarded).
 */
export function messageReader(maxBodyBytes: number): ReadMessage {
  return async function readMessage(ctx) {
    if (ctx.message) return ctx.message;
    ctx.body = await readBody(ctx.req, maxBodyBytes);
    const parsed = parseMessage(ctx.body);
    if (!parsed.ok) {
      if (parsed.reason === 'initialize_without_id') throw new WardenError('INVALID_MESSAGE', { description: 'initialize must be a request with an id, not a notification' });
      throw new WardenError(parsed.reason === 'json' ? 'INVALID_JSON' : 'INVALID_MESSAGE');
    }
    ctx.message = parsed.value;
    return parsed.value;
  };
}
