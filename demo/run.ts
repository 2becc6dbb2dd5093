/**
 * `npm run demo`: the bundled demo MCP server with mcp-warden in front of it, on the embedded
 * in-memory store. Prints the proxy URL and a command that exercises it; Ctrl-C stops both.
 */
import { loadConfig } from '../src/config/load.js';
import { createWarden } from '../src/warden.js';
import { startDemoServer } from './mcp-server.js';

const upstream = await startDemoServer({ port: 0 });
const loaded = await loadConfig({
  env: { MCP_WARDEN_LOG_LEVEL: 'warn', ...process.env },
  flags: { upstream: [upstream.url], port: process.env.MCP_WARDEN_PORT ?? '8080' },
});
if (!loaded.ok) {
  for (const p of loaded.problems) console.error(`  ${p.path}: ${p.message}`);
  process.exit(2);
}
const warden = await createWarden(loaded.config);

console.log(`
mcp-warden demo
  demo MCP server (upstream, not exposed to clients): ${upstream.url}
  mcp-warden (clients connect here):                  ${warden.mcpUrl}

Try it in another terminal:
  npx tsx demo/client.ts ${warden.mcpUrl}

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
