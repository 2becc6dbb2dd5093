/**
 * The floor for any Node proxy, run as its own process:
 * `node --import tsx bench/bare-proxy.ts <port> <upstream origin>`.
 * http-proxy-3 with the same keep-alive agent settings as mcp-warden's forward stage and nothing
 * else: no auth, no body peek, no header rewriting. mcp-warden's numbers are read against this.
 */
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';
import { HOST } from './ports.js';

const port = Number(process.argv[2]);
const upstream = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || !upstream) {
  process.stderr.write('usage: bare-proxy.ts <port> <upstream origin>\n');
  process.exit(2);
}

// Same agent as src/pipeline/forward.ts, so the comparison is about what mcp-warden does per
// request, not about connection reuse.
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
const proxy = createProxyServer({ target: upstream, agent, changeOrigin: true, xfwd: false });
// Without a listener an upstream error crashes the process; answer 502 like any proxy would.
proxy.on('error', (_err, _req, res) => {
  if (!(res instanceof http.ServerResponse)) return void res.destroy();
  if (res.headersSent) return void res.destroy();
  res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.listen(port, HOST);

// Exit with the parent (the bench run), even when it was SIGKILLed and could not clean up.
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.once('SIGTERM', () => process.exit(0));
