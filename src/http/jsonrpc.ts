import type { IncomingMessage } from 'node:http';
import { WardenError } from '../errors.js';

/** What the proxy needs to know about a JSON-RPC request body, without keeping the parse tree. */
export interface RpcPeek {
  /** The request id to echo in refusals: a number or a short string, else null. */
  readonly id: string | number | null;
  readonly method: string | null;
  /** An `initialize` request (alone): the only kind that may create a session. */
  readonly isInitialize: boolean;
  /** A JSON array (2025-03-26 batch). */
  readonly isBatch: boolean;
}

const MAX_ECHOED_ID_LENGTH = 128;

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

/**
 * Classifies a JSON-RPC body: one message or a batch, and whether it is `initialize`.
 * Returns `null` for bodies that are not JSON, or not JSON-RPC objects or arrays of them.
 */
export function peekMessage(body: Buffer): { ok: true; value: RpcPeek } | { ok: false; reason: 'json' | 'shape' | 'initialize_without_id' } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, reason: 'json' };
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0 || !parsed.every(isMessage)) return { ok: false, reason: 'shape' };
    const hasInitialize = parsed.some((m) => m.method === 'initialize');
    // MCP 2025-03-26: initialize MUST NOT be part of a batch.
    return hasInitialize ? { ok: false, reason: 'shape' } : { ok: true, value: { id: null, method: null, isInitialize: false, isBatch: true } };
  }
  if (!isMessage(parsed)) return { ok: false, reason: 'shape' };
  const method = typeof parsed.method === 'string' ? parsed.method : null;
  // An initialize sent as a notification would create an upstream session whose id no response
  // ever carries back: the proxy could neither map it nor end it.
  if (method === 'initialize' && (parsed.id === undefined || parsed.id === null)) return { ok: false, reason: 'initialize_without_id' };
  return { ok: true, value: { id: echoableId(parsed.id), method, isInitialize: method === 'initialize', isBatch: false } };
}
