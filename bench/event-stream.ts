/**
 * GET event streams over raw `net` sockets: one socket and one written request per stream, no
 * HTTP client machinery, so holding thousands of them costs the bench process little and the
 * timing includes nothing but the target's work.
 */
import net from 'node:net';

export interface OpenedStream {
  readonly socket: net.Socket;
  /** From writing the request to the first `data:` field of the response. */
  readonly elapsedMs: number;
}

const HEAD_END = '\r\n\r\n';

/**
 * Opens `GET url` with `Accept: text/event-stream` and resolves once a 200 response has delivered
 * its first `data:` field. The timer starts after the TCP connect, so the kernel's accept is not
 * counted. Rejects on another status, an error, or after `timeoutMs`; the socket is destroyed then.
 */
export function openEventStream(url: URL, headers: Record<string, string>, timeoutMs = 10_000): Promise<OpenedStream> {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`, 'accept: text/event-stream'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  const request = `${lines.join('\r\n')}${HEAD_END}`;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    let started = 0n;
    let seen = '';
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no event from ${url.href} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    socket.once('connect', () => {
      socket.setNoDelay(true);
      started = process.hrtime.bigint();
      socket.write(request);
    });
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('latin1');
      const headEnd = seen.indexOf(HEAD_END);
      if (headEnd === -1) return;
      if (!/^HTTP\/1\.1 200 /.test(seen)) {
        clearTimeout(timer);
        return fail(new Error(`${url.href}: ${seen.slice(0, seen.indexOf('\r\n'))}`));
      }
      // The body is chunked: look for the field name, not for a line start.
      if (!seen.includes('data:', headEnd)) return;
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      clearTimeout(timer);
      socket.off('data', onData);
      // Keep reading (and dropping) so a later event never backs up into the target.
      socket.on('data', () => {});
      seen = '';
      resolve({ socket, elapsedMs });
    };
    socket.on('data', onData);
  });
}
