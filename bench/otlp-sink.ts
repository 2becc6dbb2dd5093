/**
 * An OTLP/HTTP traces receiver that accepts every export and drops it: tracing's cost in
 * mcp-warden (spans, batching, the export request) without a collector's.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HOST } from './ports.js';

export interface OtlpSink {
  /** The traces endpoint, for `tracing.otlpEndpoint`. */
  readonly url: string;
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${HOST}:${port}/v1/traces`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
