/**
 * How Claude Desktop reaches a remote MCP server: through `mcp-remote` in its default,
 * interactive mode. It is run here as Claude runs it (a stdio server the MCP SDK's client spawns),
 * pointed at the proxy URL and nothing else. It discovers mcp-warden, registers itself (RFC 7591),
 * opens the browser (`$BROWSER`: a script that hands the URL to the test, which opens it in
 * Chromium, where the person signs in at the provider and allows on mcp-warden's consent page),
 * receives the code on its own loopback callback, and proxies a tool call with the person's token.
 */
import t from 'tap';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { launchChromium } from '../fixtures/chromium.js';
import { freePort } from '../fixtures/redis.js';
import { signInStack } from '../fixtures/sign-in.js';

const MCP_REMOTE = fileURLToPath(new URL('../../node_modules/mcp-remote/dist/proxy.js', import.meta.url));

async function waitForLine(file: string, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const line = existsSync(file) ? readFileSync(file, 'utf8').split('\n').find(Boolean) : undefined;
    if (line) return line;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing was opened in the browser within ${timeoutMs} ms`);
}

t.test('mcp-remote (how Claude Desktop connects) signs a person in and calls a tool through the proxy', async (t) => {
  const { proxy, upstream } = await signInStack(t, { registration: { dynamic: true } });
  const dir = mkdtempSync(join(tmpdir(), 'mcpw-remote-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const opened = join(dir, 'opened');
  const browserScript = join(dir, 'browser.sh');
  writeFileSync(browserScript, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`);
  chmodSync(browserScript, 0o755);

  const callbackPort = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    BROWSER: browserScript,
    MCP_REMOTE_CONFIG_DIR: join(dir, 'auth'),
  };
  const transport = new StdioClientTransport({ command: process.execPath, args: [MCP_REMOTE, proxy.mcpUrl, String(callbackPort)], env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const client = new Client({ name: 'claude-desktop-stand-in', version: '1' });
  t.teardown(() => client.close());
  const connected = client.connect(transport);

  // The person's side: the page mcp-remote opened, the provider's login, mcp-warden's consent.
  const authorizeUrl = await waitForLine(opened, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\nmcp-remote said:\n${stderr}`);
  });
  t.match(authorizeUrl, new RegExp(`^${proxy.url}/oauth/authorize\\?`), 'mcp-remote opened mcp-warden\'s authorize endpoint');
  const url = new URL(authorizeUrl);
  t.match(url.searchParams.get('client_id'), /^r~/, 'after registering itself');
  t.equal(url.searchParams.get('code_challenge_method'), 'S256');
  const chromium = await launchChromium();
  t.teardown(() => chromium.close());
  const page = await chromium.newPage();
  await page.goto(authorizeUrl);
  await page.fill('input[name="login"]', 'alice');
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  await page.click('button[type="submit"]');
  await page.waitForSelector('button.approve');
  t.match(await page.textContent('.warn'), /registered itself/, 'the consent page says mcp-remote registered itself');
  await page.click('button.approve');
  // The browser lands on mcp-remote's own callback server, which takes the code.
  await page.waitForURL(new RegExp(`^http://localhost:${callbackPort}/oauth/callback\\?code=`));
  await connected;

  const result = await client.callTool({ name: 'echo', arguments: { message: 'from claude' } });
  t.same(result.content, [{ type: 'text', text: 'echo: from claude' }], 'a tool call through mcp-remote and mcp-warden');
  const seen = upstream.requests.at(-1)?.headers ?? {};
  t.match(seen['x-mcp-user'], /^u~[A-Za-z0-9_-]{6}~alice$/, 'the upstream sees the person');
  t.match(seen['x-mcp-client-id'], /^r~/, 'and mcp-remote\'s registration');
  t.match(proxy.logs.events('client.registered'), [{}], 'the registration is an event');
  t.notOk(stderr.includes('refresh_token'), 'nothing secret in mcp-remote\'s own log either');
});
