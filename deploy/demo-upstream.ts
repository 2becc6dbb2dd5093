/**
 * Container entry of the demo MCP upstream (deploy/Dockerfile.demo-upstream): the bundled demo
 * server (demo/mcp-server.ts) on HOST:PORT until SIGTERM/SIGINT. HOST defaults to 0.0.0.0 for
 * compose, where only the internal network reaches it; the Kubernetes sidecar pod sets
 * HOST=127.0.0.1 so that only mcp-warden, in the same pod, can reach it.
 */
import { startDemoServer } from '../demo/mcp-server.js';

const host = process.env.HOST ?? '0.0.0.0';
const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`demo-upstream: PORT must be a port number, got ${JSON.stringify(process.env.PORT)}\n`);
  process.exit(2);
}

const server = await startDemoServer({ host, port });
process.stdout.write(`demo MCP server listening on ${server.url}\n`);

// As PID 1 in a container, node gets no default signal handling: without these handlers
// `docker stop` and pod termination would wait for the kill timeout.
let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
