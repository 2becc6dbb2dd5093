import http from 'node:http';
import https from 'node:https';
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

export function probeTransport(url: string, headers: Readonly<Record<string, string>>, timeoutMs: number): Promise<ProbeResult> {
  const target = new URL(url);
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      resolve(result);
    };
    // Its own connection, closed after: a probe must not leave a pooled socket at the upstream.
    const req = (target.protocol === 'https:' ? https : http).get(target, { headers: { ...headers, accept: 'text/event-stream', connection: 'close' }, agent: false }, (res) => {
      const type = String(res.headers['content-type'] ?? '');
      const status = res.statusCode ?? 0;
      if (status !== 200 || !type.startsWith('text/event-stream')) {
        if ([400, 404, 405, 406].includes(status)) return done({ kind: 'streamable-http', detail: `GET without a session answered ${status}` });
        return done({ kind: 'unknown', detail: `GET answered ${status} ${type}`.trim() });
      }
      // A stream: legacy servers name their message endpoint first.
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (/^event:\s*endpoint\s*$/m.test(text)) done({ kind: 'legacy-sse', detail: 'GET opened an event stream that named a message endpoint' });
        else if (/\n\r?\n/.test(text) || text.length > 4096) done({ kind: 'streamable-http', detail: 'GET opened an event stream without an endpoint event' });
      });
      res.once('end', () => done({ kind: 'unknown', detail: 'GET opened an event stream that ended at once' }));
    });
    req.setTimeout(timeoutMs, () => done({ kind: 'unknown', detail: `no answer within ${timeoutMs} ms` }));
    req.once('error', (err: NodeJS.ErrnoException) => done({ kind: 'unreachable', detail: err.code ?? err.message }));
  });
}
