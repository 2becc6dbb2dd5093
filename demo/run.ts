/**
 * `npm run demo`: the bundled demo MCP server with mcp-warden in front of it, on the embedded
 * in-memory store. Prints the proxy URL and a command that exercises it; Ctrl-C stops both.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { createWarden } from '../src/warden.js';
import { startDemoServer } from './mcp-server.js';

const upstream = await startDemoServer({ port: 0 });
// A throwaway config: one client with a fresh secret; nothing is written into the repository.
const clientSecret = randomBytes(24).toString('base64url');
const configFile = join(mkdtempSync(join(tmpdir(), 'mcp-warden-demo-')), 'config.json');
writeFileSync(configFile, JSON.stringify({ tokens: { secret: randomBytes(32).toString('base64url') }, clients: [{ id: 'demo', secret: clientSecret, scopes: ['mcp'] }] }), { mode: 0o600 });
const loaded = await loadConfig({
  file: configFile,
  env: { MCP_WARDEN_LOG_LEVEL: 'warn', ...process.env },
  flags: { upstream: [upstream.url], port: process.env.MCP_WARDEN_PORT ?? '8080' },
});
if (!loaded.ok) {
  for (const p of loaded.problems) console.error(`  ${p.path}: ${p.message}`);
  process.exit(2);
}
const warden = await createWarden(loaded.config);
const token = await warden.issueToken('demo', 'mcp');

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

Ctrl-C stops the demo.
`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await warden.close();
  await upstream.close();
  process.exit(0);
}
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
