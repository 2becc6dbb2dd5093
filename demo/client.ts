/**
 * Demo MCP client: `npx tsx demo/client.ts <mcpUrl> [accessToken]`.
 * Walks through a typical session (list, call, streamed call, terminate) so a
 * human can see a request go through mcp-warden end to end.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

function resultText(result: unknown): string {
  const content = (result as CallToolResult).content ?? [];
  return content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
}

async function main(): Promise<void> {
  const [urlArg, token] = process.argv.slice(2);
  if (!urlArg) throw new Error('usage: tsx demo/client.ts <mcpUrl> [accessToken]');
  const url = new URL(urlArg);

  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  const client = new Client({ name: 'mcp-warden-demo-client', version: '1.0.0' });

  await client.connect(transport);
  try {
    console.log(`connected to ${url.href} (session ${transport.sessionId ?? 'none'})`);

    const { tools } = await client.listTools();
    console.log(`tools: ${tools.map((t) => t.name).join(', ')}`);

    const echo = await client.callTool({ name: 'echo', arguments: { message: 'hello through mcp-warden' } });
    console.log(`echo -> ${resultText(echo)}`);

    const countdown = await client.callTool(
      { name: 'countdown', arguments: { from: 3, delayMs: 200 } },
      undefined,
      {
        onprogress: (p) => {
          console.log(`  progress ${p.progress}/${p.total ?? '?'}${p.message ? ` ${p.message}` : ''}`);
        },
      },
    );
    console.log(`countdown -> ${resultText(countdown)}`);

    await transport.terminateSession();
    console.log('session terminated');
  } finally {
    await client.close();
  }
}

main().then(
  () => { process.exitCode = 0; },
  (err: unknown) => {
    if (err instanceof StreamableHTTPError) {
      console.error(`error: HTTP ${err.code ?? '?'}: ${err.message}`);
    } else {
      // fetch() hides the useful part (ECONNREFUSED, ENOTFOUND...) in `cause`.
      const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
      console.error(`error: ${err instanceof Error ? err.message : String(err)}${cause}`);
    }
    process.exitCode = 1;
  },
);
