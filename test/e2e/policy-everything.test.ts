/**
 * The policy in front of `@modelcontextprotocol/server-everything` (the reference test server,
 * Streamable HTTP, SSE answers) with a real v1 SDK client: lists filtered, denied calls refused
 * without reaching it, resource reads fenced.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { connectClient } from '../fixtures/mcp-client.js';
import { startWarden } from '../fixtures/warden.js';

/** A port the OS says is free (server-everything takes a fixed PORT, not 0). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

t.test('server-everything behind a policy', async (t) => {
  const port = await freePort();
  const child = spawn(process.execPath, [new URL('../../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url).pathname, 'streamableHttp'], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    child.kill();
  });
  let posts = 0;
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      posts += (text.match(/Received MCP POST request/g) ?? []).length;
      if (text.includes('listening on port')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`server-everything exited (${code})`)));
  });
  const proxy = await startWarden({ upstreams: [`http://127.0.0.1:${port}/mcp`], policy: { default: 'deny', rules: [
    { id: 'safe-tools', effect: 'allow', tools: ['echo', 'get-sum', 'get-tiny-image'] },
    { id: 'prompts', effect: 'allow', prompts: ['simple-prompt'] },
    { id: 'docs', effect: 'allow', methods: ['resources/read'], resources: ['demo://resource/static/document/*'] },
    { id: 'no-features', effect: 'deny', resources: ['demo://resource/static/document/features.md'] },
  ] } });
  t.teardown(() => proxy.close());
  const { client, close } = await connectClient(proxy.mcpUrl, { token: await proxy.token() });
  t.teardown(close);

  t.same((await client.listTools()).tools.map((x) => x.name).sort(), ['echo', 'get-sum', 'get-tiny-image']);
  t.same((await client.listPrompts()).prompts.map((x) => x.name), ['simple-prompt']);
  const resources = (await client.listResources()).resources.map((r) => r.uri);
  t.ok(resources.length >= 2 && resources.every((u) => u.startsWith('demo://resource/static/document/')), 'only the documents');
  t.notOk(resources.includes('demo://resource/static/document/features.md'), 'the fenced one is hidden');
  t.same((await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } })).content, [{ type: 'text', text: 'The sum of 2 and 3 is 5.' }]);
  const before = posts;
  const env = await client.callTool({ name: 'get-env', arguments: {} }).catch((err: unknown) => err);
  t.ok(env instanceof McpError && env.code === -32602 && /Unknown tool: get-env/.test(env.message), 'get-env is refused as unknown');
  const features = await client.readResource({ uri: 'demo://resource/static/document/features.md' }).catch((err: unknown) => err);
  t.match(features, { code: -32602 }, 'a fenced resource');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(posts, before, 'neither reached server-everything');
  t.ok((await client.readResource({ uri: resources[0] ?? '' })).contents.length > 0, 'an allowed read works');
});
