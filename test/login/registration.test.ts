/** The rules behind self-registered clients, one by one: addresses, redirect URIs, metadata URLs, caching. */
import t from 'tap';
import { isPublicAddress } from '../../src/login/outbound.js';
import { cacheLifetimeMs, metadataUrlProblem } from '../../src/login/metadata-document.js';
import { compileRedirectPolicy, redirectUriProblem } from '../../src/login/redirect-uris.js';

t.test('only public addresses are public', async (t) => {
  for (const a of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255',
    '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '64:ff9b::a00:1', '2001:db8::1', 'not-an-ip']) {
    t.notOk(isPublicAddress(a), `${a} is not public`);
  }
  for (const a of ['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e']) t.ok(isPublicAddress(a), `${a} is public`);
});

t.test('redirect URIs a client may register', async (t) => {
  const policy = compileRedirectPolicy(['http://127.0.0.1/*', 'http://localhost/*', 'https://*', 'vscode://*']);
  for (const uri of ['http://127.0.0.1:33418/callback', 'http://127.0.0.1/cb', 'http://localhost:6274/oauth/callback', 'https://app.example/cb', 'vscode://vscode.github-authentication/did-authenticate']) {
    t.equal(redirectUriProblem(policy, uri), null, `${uri} is allowed`);
  }
  for (const [uri, why] of [
    ['http://app.example/cb', /not allowed/],
    ['http://127.0.0.1.evil.example/cb', /not allowed/],
    ['http://[::1]:80/cb', /not allowed/],
    ['cursor://anysphere/cb', /not allowed/],
    ['javascript:alert(1)//https://x', /javascript/],
    ['data:text/html,x', /data/],
    ['https://a.example/cb#frag', /fragment/],
    ['https://user@a.example/cb', /user name/],
    ['https://a.example/c b', /absolute URI/],
    ['https:\\\\a.example\\cb', /absolute URI/],
    ['/relative', /absolute URI/],
    [`https://a.example/${'x'.repeat(2100)}`, /too long/],
  ] as const) t.match(redirectUriProblem(policy, uri), why, `${uri.slice(0, 40)}: refused`);
});

t.test('metadata URLs', async (t) => {
  t.equal(metadataUrlProblem('https://app.example/client.json', false), null);
  t.equal(metadataUrlProblem('http://localhost:8000/client.json', true), null, 'plain http on loopback where private hosts are allowed');
  t.match(metadataUrlProblem('http://localhost:8000/client.json', false), /https/);
  t.match(metadataUrlProblem('http://app.example/client.json', true), /https/, 'plain http elsewhere, never');
  t.match(metadataUrlProblem('https://APP.example/client.json', false), /normal form/, 'a URL that normalises differently');
  t.match(metadataUrlProblem('https://app.example', false), /normal form|path/);
});

t.test('Cache-Control of metadata documents', async (t) => {
  t.equal(cacheLifetimeMs(null), 300_000, 'no header: five minutes');
  t.equal(cacheLifetimeMs('public, max-age=60'), 60_000);
  t.equal(cacheLifetimeMs('max-age=99999999'), 86_400_000, 'at most a day');
  t.equal(cacheLifetimeMs('no-store'), 0);
  t.equal(cacheLifetimeMs('max-age=60, no-cache'), 0);
  t.equal(cacheLifetimeMs('private, max-age=60'), 0);
  t.equal(cacheLifetimeMs('max-age=abc'), 300_000, 'nonsense is ignored');
});
