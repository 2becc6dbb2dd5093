/**
 * SIGHUP (`reloadFrom`, what the serve command runs on the signal): the config file's clients are
 * read again, validated like at start. A changed secret and a new client work at once, a removed
 * client's tokens stop, and a bad file keeps what runs.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reloadFrom } from '../../src/cli/serve.js';
import { basic, mcpPost, postForm } from '../fixtures/http.js';
import { startWarden } from '../fixtures/warden.js';
import { startDemoServer } from '../../demo/mcp-server.js';

t.test('SIGHUP reloads the clients of the config file', async (t) => {
  const secret = 'reload-signing-secret-0123456789abcdef';
  const upstream = await startDemoServer();
  t.teardown(() => upstream.close());
  const proxy = await startWarden({ upstreams: [upstream.url], tokens: { secret }, clients: [{ id: 'alice', secret: 'alice-secret-before-0123' }, { id: 'bob', secret: 'bob-secret-before-01234' }] });
  t.teardown(() => proxy.close());
  const token = (id: string, pass: string) => postForm(`${proxy.url}/oauth/token`, { grant_type: 'client_credentials' }, { authorization: basic(id, pass) });
  const bobToken = String((await token('bob', 'bob-secret-before-01234')).json().access_token);
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${bobToken}`)).status, 200, 'bob works before');

  const file = join(mkdtempSync(join(tmpdir(), 'mcpw-reload-')), 'proxy.json');
  writeFileSync(file, JSON.stringify({ upstreams: [upstream.url], tokens: { secret }, clients: [{ id: 'alice', secret: 'alice-secret-after-01234' }, { id: 'carol', secret: 'carol-secret-new-012345' }] }));
  t.equal(await reloadFrom(file, proxy.warden), true);
  t.equal((await token('alice', 'alice-secret-before-0123')).status, 401, 'alice\'s old secret is refused');
  t.equal((await token('alice', 'alice-secret-after-01234')).status, 200, 'her new one works');
  t.equal((await token('carol', 'carol-secret-new-012345')).status, 200, 'a new client works');
  t.equal((await mcpPost(proxy.mcpUrl, `Bearer ${bobToken}`)).status, 401, 'a removed client\'s token is refused on its next request');
  t.match(proxy.logs.events('clients.reloaded'), [{ count: 2 }]);
  t.equal(proxy.logs.events('policy.reload_failed').length, 0, 'no policy before or after: nothing to complain about');

  writeFileSync(file, JSON.stringify({ tokens: { secret }, clients: [{ id: 'alice', secret: 'short' }] }));
  t.equal(await reloadFrom(file, proxy.warden), false, 'a bad file');
  t.match(proxy.logs.events('policy.reload_failed').at(-1), { problems: ['clients[0].secret: must be at least 16 bytes'] });
  t.equal((await token('alice', 'alice-secret-after-01234')).status, 200, 'keeps what runs');
});
