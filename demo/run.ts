/**
 * `npm run demo`: the bundled demo MCP server with mcp-warden in front of it, on the embedded
 * in-memory store. Prints the proxy URL and a command that exercises it; Ctrl-C stops both.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { createWarden } from '../src/warden.js';
import { startDemoServer } from './mcp-server.js';

const upstream = await startDemoServer({ port: 0 });
const port = Number(process.env.MCP_WARDEN_PORT ?? '8080') || (await freePort());
const origin = `http://127.0.0.1:${port}`;

// People sign in too: a development OpenID provider (oidc-provider, a devDependency: the demo
// only) that takes any login name and password. Production points login.oidc at a real one.
const idpPort = await freePort();
const idpIssuer = `http://127.0.0.1:${idpPort}`;
const idpSecret = randomBytes(24).toString('base64url');
// Its development-mode warnings (in-memory adapter, dev keys, dev screens) are what a demo is.
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (!String(args[0]).startsWith('oidc-provider WARNING')) warn(...args);
};
const idp = new Provider(idpIssuer, {
  clients: [{ client_id: 'mcp-warden', client_secret: idpSecret, redirect_uris: [`${origin}/oauth/callback`], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post' }],
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: `${id}@demo.test` }) }),
  cookies: { keys: [randomBytes(24).toString('base64url')] },
  features: { devInteractions: { enabled: true } },
});
console.warn = warn;
const idpServer = http.createServer(idp.callback());
await new Promise<void>((resolve) => idpServer.listen(idpPort, '127.0.0.1', resolve));

// A throwaway config: one machine client and one app people sign in through, fresh secrets;
// nothing is written into the repository.
const clientSecret = randomBytes(24).toString('base64url');
const secretsDir = mkdtempSync(join(tmpdir(), 'mcp-warden-demo-'));
const configFile = join(secretsDir, 'config.json');
// The config holds fresh secrets: gone when the demo ends, however it ends.
process.once('exit', () => rmSync(secretsDir, { recursive: true, force: true }));
writeFileSync(configFile, JSON.stringify({
  tokens: { secret: randomBytes(32).toString('base64url') },
  clients: [{ id: 'demo', secret: clientSecret, scopes: ['mcp'] }],
  login: {
    oidc: { issuer: idpIssuer, clientId: 'mcp-warden', clientSecret: idpSecret },
    clients: [{ id: 'inspector', name: 'MCP Inspector', redirectUris: ['http://localhost:6274/oauth/callback', 'http://127.0.0.1/callback'] }],
    // MCP clients that register themselves (mcp-remote, the Inspector, VS Code) get in too.
    registration: { dynamic: true },
  },
}), { mode: 0o600 });
const loaded = await loadConfig({
  file: configFile,
  env: { MCP_WARDEN_LOG_LEVEL: 'warn', ...process.env },
  flags: { upstream: [upstream.url], port: String(port) },
});
if (!loaded.ok) {
  for (const p of loaded.problems) console.error(`  ${p.path}: ${p.message}`);
  process.exit(2);
}
const warden = await createWarden(loaded.config).catch(async (err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES') throw err;
  console.error(`mcp-warden demo: port ${port} is ${code === 'EADDRINUSE' ? 'taken by another program' : 'not allowed here'}.
Pick another one with MCP_WARDEN_PORT, for example:
  MCP_WARDEN_PORT=${port + 1} npm run demo
(MCP_WARDEN_PORT=0 takes any free port.)`);
  await upstream.close();
  idpServer.closeAllConnections();
  idpServer.close();
  process.exit(1);
});
const token = await warden.issueToken('demo', 'mcp');
// A ready sign-in link (PKCE S256 with a verifier printed for the code exchange).
const verifier = randomBytes(32).toString('base64url');
const signIn = new URL(`${warden.url}/oauth/authorize`);
for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'inspector', redirect_uri: 'http://127.0.0.1:9/callback', scope: 'mcp', state: 'demo', resource: warden.mcpUrl, code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256' })) signIn.searchParams.set(k, v);

console.log(`
mcp-warden demo
  demo MCP server (upstream, not exposed to clients): ${upstream.url}
  mcp-warden (clients connect here):                  ${warden.mcpUrl}
  client: demo / ${clientSecret}   (token endpoint: ${warden.url}/oauth/token)

An access token (valid 1 hour):
  ${token}

Try it in another terminal:
  npx tsx demo/client.ts ${warden.mcpUrl} ${token}

Without the token the proxy refuses (401):
  npx tsx demo/client.ts ${warden.mcpUrl}

Get a new token yourself:
  curl -s -u demo:${clientSecret} -d grant_type=client_credentials ${warden.url}/oauth/token

People sign in (demo identity provider at ${idpIssuer}: any login name, any password):
  1. Open in a browser: ${signIn.href}
  2. Sign in, continue, allow. The browser lands on http://127.0.0.1:9/callback?code=...
     (nothing listens there: copy the code from the address bar).
  3. curl -s ${warden.url}/oauth/token -d grant_type=authorization_code -d client_id=inspector \\
       -d redirect_uri=http://127.0.0.1:9/callback -d code_verifier=${verifier} -d code=<the code>
  Or as Claude Desktop does (registers itself, opens your browser):
     npx mcp-remote ${warden.mcpUrl}
  Or the MCP Inspector: npx @modelcontextprotocol/inspector, Streamable HTTP, ${warden.mcpUrl}
     (it registers itself; or give OAuth client id "inspector", whose redirect is registered).

Ctrl-C stops the demo.
`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await warden.close();
  await upstream.close();
  idpServer.closeAllConnections();
  idpServer.close();
  process.exit(0);
}
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = http.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as AddressInfo;
      probe.close(() => resolve(free));
    });
  });
}
