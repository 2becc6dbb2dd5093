import type { IncomingMessage } from 'node:http';
import { WardenError } from '../errors.js';
import type { WardenErrorCode } from '../errors.js';

/**
 * One JSON-RPC message of a body, as policy sees it: what it asks for and of what. The target is
 * read only for the methods that name one; everything else of `params` stays in the parse tree.
 */
export interface RpcCall {
  /** The request id to echo in refusals (see {@link RpcMessage.id}); null for a notification. */
  readonly id: string | number | null;
  /** A request (it has an `id` member) rather than a notification. */
  readonly isRequest: boolean;
  /** Null for a response the client posts back (sampling, elicitation) or a message without a string method. */
  readonly method: string | null;
  /**
   * `params.name` of `tools/call` and `prompts/get`, `params.uri` of `resources/read`,
   * `resources/subscribe` and `resources/unsubscribe`; null when absent or not a string (a consumer
   * that must judge the target refuses such a message: fail closed).
   */
  readonly target: string | null;
  /** `params.arguments` of `tools/call` (untrusted JSON; undefined when absent). */
  readonly arguments: unknown;
}

/** A parsed JSON-RPC request body: one message or a batch of them. */
export interface RpcMessage {
  /** The request id to echo in refusals: a number or a short string, else null (always null for a batch). */
  readonly id: string | number | null;
  /** The method of a single message; null for a batch (see `calls`). */
  readonly method: string | null;
  /** An `initialize` request (alone): the only kind that may create a session. */
  readonly isInitialize: boolean;
  /** A JSON array (2025-03-26 batch). */
  readonly isBatch: boolean;
  /** Every message of the body, in order (one for a single message). */
  readonly calls: readonly RpcCall[];
}

/** Methods whose target (tool, prompt or resource) is read into {@link RpcCall.target}, and the param holding it. */
export const TARGET_PARAM: Readonly<Record<string, 'name' | 'uri'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'resources/subscribe': 'uri',
  'resources/unsubscribe': 'uri',
};

const MAX_ECHOED_ID_LENGTH = 128;
// The SDK server (1.32.2) refuses larger batches too; more would only multiply policy work per body.
export const MAX_BATCH = 100;

function bodyEndedEarly(): WardenError {
  return new WardenError('INVALID_MESSAGE', { description: 'The request body ended early' });
}

/**
 * Reads a request body up to `maxBytes`. Stops reading as soon as the cap is passed (413) instead
 * of buffering the whole body first; a declared Content-Length over the cap is refused unread.
 * The socket is left alone on overflow so the 413 can still be sent (with `Connection: close`).
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) return Promise.reject(new WardenError('BODY_TOO_LARGE'));
  // The client hung up before the body was read (an earlier stage waited on the store): a destroyed
  // request emits nothing more, so waiting for its data would never end.
  if (req.destroyed) return Promise.reject(bodyEndedEarly());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        stop();
        req.pause();
        reject(new WardenError('BODY_TOO_LARGE'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    // The client broke off the upload: a refusal, not a bug (nothing can be sent back anyway).
    const onError = (): void => {
      stop();
      reject(bodyEndedEarly());
    };
    // A client that hangs up mid-body must not leave this promise (and its request) pending forever.
    const onClose = (): void => {
      if (!req.complete) onError();
    };
    req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  });
}

function echoableId(id: unknown): string | number | null {
  if (typeof id === 'number' && Number.isSafeInteger(id)) return id;
  if (typeof id === 'string' && id.length <= MAX_ECHOED_ID_LENGTH) return id;
  return null;
}

function isMessage(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function callOf(message: Record<string, unknown>): RpcCall {
  const method = typeof message.method === 'string' ? message.method : null;
  const params = isMessage(message.params) ? message.params : null;
  // Object.hasOwn: a key inherited from Object.prototype (say "name" via __proto__) is not the message's.
  const key = method !== null && Object.hasOwn(TARGET_PARAM, method) ? TARGET_PARAM[method] : undefined;
  const raw = key !== undefined && params !== null && Object.hasOwn(params, key) ? params[key] : undefined;
  return {
    id: echoableId(message.id),
    isRequest: Object.hasOwn(message, 'id'),
    method,
    target: typeof raw === 'string' ? raw : null,
    arguments: method === 'tools/call' && params !== null && Object.hasOwn(params, 'arguments') ? params.arguments : undefined,
  };
}

/**
 * Parses a JSON-RPC body: one message or a batch, each with its method and target, and whether
 * it is `initialize`. Refuses bodies that are not JSON (`json`), or not a JSON-RPC object or a
 * batch of 1-100 of them without `initialize` (`shape`). The body is bounded by the caller's read.
 */
export function parseMessage(body: Buffer): { ok: true; value: RpcMessage } | { ok: false; reason: 'json' | 'shape' | 'initialize_without_id' } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, reason: 'json' };
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0 || parsed.length > MAX_BATCH || !parsed.every(isMessage)) return { ok: false, reason: 'shape' };
    const calls = parsed.map(callOf);
    // MCP 2025-03-26: initialize MUST NOT be part of a batch.
    if (calls.some((c) => c.method === 'initialize')) return { ok: false, reason: 'shape' };
    return { ok: true, value: { id: null, method: null, isInitialize: false, isBatch: true, calls } };
  }
  if (!isMessage(parsed)) return { ok: false, reason: 'shape' };
  const call = callOf(parsed);
  // An initialize sent as a notification would create an upstream session whose id no response
  // ever carries back: the proxy could neither map it nor end it.
  if (call.method === 'initialize' && (parsed.id === undefined || parsed.id === null)) return { ok: false, reason: 'initialize_without_id' };
  return { ok: true, value: { id: call.id, method: call.method, isInitialize: call.method === 'initialize', isBatch: false, calls: [call] } };
}

/**
 * An `application/json` body of at most `maxBytes`, parsed; anything else is `code`'s refusal
 * with a description that says what was wrong (the OAuth registration and admin endpoints).
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number, code: WardenErrorCode): Promise<unknown> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new WardenError(code, { description: 'The body must be application/json' });
  try {
    return JSON.parse((await readBody(req, maxBytes)).toString('utf8'));
  } catch {
    throw new WardenError(code, { description: `The body must be JSON of at most ${Math.round(maxBytes / 1024)} KiB` });
  }
}
