/**
 * SDK discovery end to end: the MCP SDK 1.32 client, given nothing but a client id, a secret and
 * the expected issuer, goes 401 → protected resource metadata → authorization server metadata →
 * token endpoint → MCP, then uses the tools.
 */
import t from 'tap';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startDemoServer } from '../../demo/mcp-server.js';
import { leakGuard } from '../fixtures/leaks.js';
import { startWarden, TEST_CLIENTS } from '../fixtures/warden.js';

const upstream = await startDemoServer();
const proxy = await startWarden({ upstreams: [upstream.url] });
const leaks = leakGuard();
leaks.watch(proxy.logs);
leaks.add(...Object.values(TEST_CLIENTS));
t.teardown(async () => {
  await proxy.close();
  await upstream.close();
});

function connect(clientId: string, clientSecret: string, expectedIssuer = proxy.url) {
  const provider = new ClientCredentialsProvider({ clientId, clientSecret, expectedIssuer });
  const transport = new StreamableHTTPClientTransport(new URL(proxy.mcpUrl), { authProvider: provider });
  const client = new Client({ name: 'discovery-test', version: '1.0.0' });
  return { provider, transport, client, connected: client.connect(transport) };
}

/** Route and status of each request the proxy answered, from its access log. */
function requestLog(from: number): string[] {
  return proxy.logs.lines.slice(from).filter((l) => l.msg === 'request').map((l) => `${String(l.method)} ${String(l.route)} ${String(l.status)}`);
}

t.test('client id + secret only: 401 → PRM → AS metadata → token → tools', async (t) => {
  const from = proxy.logs.lines.length;
  const { provider, client, transport, connected } = connect('alice', TEST_CLIENTS.alice);
  await connected;
  leaks.add(transport.sessionId, ...upstream.sessionIds());
  t.teardown(() => client.close());
  const tokens = provider.tokens();
  t.match(tokens, { token_type: 'Bearer', access_token: String }, 'the provider holds a token from our endpoint');
  t.equal(tokens?.scope, 'mcp extra', 'no scope asked: every scope of the client');
  leaks.add(tokens?.access_token);

  const { tools } = await client.listTools();
  t.ok(tools.some((tool) => tool.name === 'whoami'));
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  const text = (whoami.content as { type: string; text: string }[])[0]?.text ?? '{}';
  t.same(JSON.parse(text), { clientId: 'alice', scopes: 'mcp extra', authorization: null });

  const log = requestLog(from);
  const order = ['POST mcp 401', 'GET /.well-known/oauth-protected-resource{mcpPath} 200', 'GET /.well-known/oauth-authorization-server 200', 'POST /oauth/token 200', 'POST mcp 200'];
  let at = -1;
  for (const step of order) {
    const next = log.indexOf(step, at + 1);
    t.ok(next > at, `then ${step}`);
    at = next;
  }
  t.match(proxy.logs.events('token.issued').at(-1), { clientId: 'alice' });
});

t.test('a wrong secret: the token endpoint refuses, the client gets no session', async (t) => {
  const from = proxy.logs.lines.length;
  const seen = upstream.requests.length;
  const { client, connected } = connect('alice', 'not-alices-secret-0123456789');
  t.teardown(() => client.close());
  await t.rejects(connected);
  const attempts = requestLog(from).filter((l) => l.includes('/oauth/token'));
  t.ok(attempts.length >= 1, `${attempts.length} token request(s)`);
  t.same(attempts.filter((l) => !l.endsWith(' 401')), [], 'every one refused with 401');
  const refusals = proxy.logs.lines.slice(from).filter((l) => l.event === 'auth.failed' && l.route === '/oauth/token');
  t.equal(refusals.length, attempts.length, 'one auth.failed event per attempt');
  t.ok(refusals.every((e) => e.code === 'OAUTH_INVALID_CLIENT' && e.reason === 'client'), 'invalid_client, reason client');
  t.equal(upstream.requests.length, seen, 'the upstream saw nothing');
});

t.test('a different expectedIssuer: the SDK does not send the secret to this proxy', async (t) => {
  const from = proxy.logs.lines.length;
  const { client, connected } = connect('alice', TEST_CLIENTS.alice, 'https://auth.elsewhere.example');
  t.teardown(() => client.close());
  await t.rejects(connected);
  t.notOk(requestLog(from).some((l) => l.includes('/oauth/token')), 'no token request was made');
});

t.test('logs: no token, secret or full session id appears', async (t) => {
  const scan = leaks.scan();
  t.ok(scan.lines > 10);
  t.same(scan.leaked, []);
});
