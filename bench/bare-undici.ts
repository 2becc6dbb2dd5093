/**
 * A second floor, for reference: the least a Node proxy on undici's dispatcher (what mcp-warden
 * forwards with) does per request, run as its own process:
 * `node --import tsx bench/bare-undici.ts <port> <upstream origin>`. No auth, no header rewriting
 * beyond hop-by-hop headers, no response stages. The ratios stay against `bare`
 * (http-proxy-3); this row shows how much of mcp-warden's cost is forwarding on its own engine.
 */
import http from 'node:http';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { HOST } from './ports.js';

const port = Number(process.argv[2]);
const upstream = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || !upstream) {
  process.stderr.write('usage: bare-undici.ts <port> <upstream origin>\n');
  process.exit(2);
}

// Same pool settings as src/pipeline/forward.ts (createUpstreamAgent with a 60 s timeout).
const agent = new Agent({ connect: { timeout: 60_000 }, headersTimeout: 60_000, bodyTimeout: 0 });
const HOP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection']);

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const headers: Record<string, string | string[]> = {};
  for (const name in req.headers) {
    const value = req.headers[name];
    if (value !== undefined && !HOP.has(name)) headers[name] = value;
  }
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(controller) {
      res.once('close', () => controller.abort(new Error('client closed the connection')));
    },
    onResponseStart(_controller, status, parsed) {
      const out: Record<string, string | string[]> = {};
      for (const name in parsed) {
        const value = parsed[name];
        if (value !== undefined && !HOP.has(name)) out[name] = value;
      }
      res.writeHead(status, out);
    },
    onResponseData(controller, chunk) {
      if (res.write(chunk)) return;
      controller.pause();
      res.once('drain', () => controller.resume());
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError() {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
      else res.destroy();
    },
  };
  agent.dispatch({ origin: upstream as string, path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers, body: req.method === 'POST' ? req : null }, handler);
}

http.createServer(handle).listen(port, HOST);

// Exit with the parent (the bench run), even when it was SIGKILLed and could not clean up.
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.once('SIGTERM', () => process.exit(0));
