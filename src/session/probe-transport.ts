/**
 * Which MCP transport an upstream speaks, found by asking it (DESIGN §16): a GET that asks for an
 * event stream. A legacy HTTP+SSE (2024-11-05) server answers with a stream whose first event is
 * `endpoint`; a Streamable HTTP server refuses a GET without a session (400, 404, 405) or opens a
 * stream of its own without one. Read once at start, off the request path; a probe opens a legacy
 * session for a moment and closes it.
 */
export type TransportKind = 'streamable-http' | 'legacy-sse' | 'unreachable' | 'unknown';

export interface ProbeResult {
  readonly kind: TransportKind;
  /** What was seen, for the log: a status, a content type, an error code. */
  readonly detail: string;
}

export async function probeTransport(url: string, headers: Readonly<Record<string, string>>, timeoutMs: number): Promise<ProbeResult> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(url, { method: 'GET', headers: { ...headers, accept: 'text/event-stream' }, signal: abort.signal, redirect: 'manual' });
    const type = res.headers.get('content-type') ?? '';
    if (res.status !== 200 || !type.startsWith('text/event-stream') || !res.body) {
      await res.body?.cancel().catch(() => {});
      if ([400, 404, 405, 406].includes(res.status)) return { kind: 'streamable-http', detail: `GET without a session answered ${res.status}` };
      return { kind: 'unknown', detail: `GET answered ${res.status} ${type}`.trim() };
    }
    // A stream: legacy servers name their message endpoint first.
    const reader = res.body.getReader();
    let text = '';
    try {
      while (text.length < 4096 && !/\n\r?\n/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
    return /^event:\s*endpoint\s*$/m.test(text)
      ? { kind: 'legacy-sse', detail: 'GET opened an event stream that named a message endpoint' }
      : { kind: 'streamable-http', detail: 'GET opened an event stream without an endpoint event' };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return abort.signal.aborted ? { kind: 'unknown', detail: `no answer within ${timeoutMs} ms` } : { kind: 'unreachable', detail: cause ?? (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
