import { createParser } from 'eventsource-parser';
import type { EventSourceMessage } from 'eventsource-parser';

/**
 * Rewrites the data of one event; returns it unchanged when there is nothing to do. Throws when it
 * cannot parse what it must inspect: the stream is then cut (fail closed), never passed through.
 */
export type EventTransform = (data: string) => string;

/** A streaming SSE rewriter: bytes in, rewritten event text out, one whole event at a time. */
export interface SseRewriter {
  /** Feeds upstream bytes; returns the text of every event they completed (possibly ''). Throws to fail closed. */
  push(chunk: Buffer): string;
}

// One event larger than this is refused rather than held (a bounded buffer, like the request body cap).
const MAX_EVENT_BYTES = 16 * 1024 * 1024;

function serialize(event: EventSourceMessage, data: string): string {
  let out = '';
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  // A data field cannot hold a line break: each line of the data is its own field (WHATWG SSE).
  for (const line of data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Parses an event stream with eventsource-parser (the maintained WHATWG parser the MCP SDKs use)
 * and writes it back event by event: nothing is held past the end of the event it belongs to, so
 * progress notifications keep flowing. Comments (keep-alives) and `retry` pass through; an
 * event's id and type are kept (resumption with Last-Event-ID still works).
 */
export function createSseRewriter(transform: EventTransform): SseRewriter {
  const decoder = new TextDecoder('utf-8');
  let out = '';
  let failure: Error | null = null;
  const parser = createParser({
    maxBufferSize: MAX_EVENT_BYTES,
    onEvent(event) {
      // Only message events carry JSON-RPC; an empty one (an SDK priming event) has nothing to inspect.
      const inspect = (event.event === undefined || event.event === 'message') && event.data !== '';
      out += serialize(event, inspect ? transform(event.data) : event.data);
    },
    onRetry(ms) {
      out += `retry: ${ms}\n\n`;
    },
    onComment(comment) {
      out += `: ${comment}\n\n`;
    },
    onError(err) {
      // An over-long event cannot be judged; unknown fields are ignored as browsers ignore them.
      if (err.type === 'max-buffer-size-exceeded') failure = err;
    },
  });
  return {
    push(chunk) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (failure) throw failure;
      const text = out;
      out = '';
      return text;
    },
  };
}
