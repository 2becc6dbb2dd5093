/**
 * Sign-in in a real browser (Debian's Chromium, driven by playwright-core): the provider's login
 * form, its consent, then mcp-warden's own consent page, which a person sees. The page must render
 * with its strict Content-Security-Policy (no script at all) and its buttons must work; a
 * screenshot of it is kept in test/artifacts/ for people to look at.
 */
import { mkdirSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import t from 'tap';
import { launchChromium } from '../fixtures/chromium.js';
import { signInStack } from '../fixtures/sign-in.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url);

t.test('a person clicks through the provider and mcp-warden\'s consent page in Chromium', async (t) => {
  const { proxy } = await signInStack(t, { clients: [{ id: 'inspector', name: 'MCP Inspector', redirectUris: ['http://localhost:6274/oauth/callback'] }] });
  const origin = proxy.url;

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  // The client app's redirect URI: nothing listens there, the test answers for it.
  let landed: URL | null = null;
  await page.route('http://localhost:6274/**', async (route) => {
    landed = new URL(route.request().url());
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'signed in' });
  });

  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${origin}/oauth/authorize`);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: 'inspector', redirect_uri: 'http://localhost:6274/oauth/callback', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256', state: 'browser-state', scope: 'mcp', resource: proxy.mcpUrl })) authorize.searchParams.set(k, v);
  await page.goto(authorize.href);

  // The provider's development login and consent screens.
  await page.fill('input[name="login"]', 'alice');
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  await page.click('button[type="submit"]');

  await page.waitForSelector('button.approve');
  t.match(await page.textContent('h1'), /Allow MCP Inspector to use this MCP server as you\?/);
  t.match(await page.textContent('.box'), /mcp/, 'the scope asked for');
  t.match(await page.textContent('.box'), /localhost:6274/, 'and where the browser goes next');
  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = await page.screenshot({ path: new URL('consent-page.png', ARTIFACTS).pathname, fullPage: true });
  t.ok(shot.length > 5_000, 'a screenshot of the consent page was kept');
  t.same(violations, [], 'the page needs nothing its Content-Security-Policy forbids');

  await page.click('button.approve');
  await page.waitForURL(/localhost:6274/);
  const back = landed as URL | null;
  t.ok(back?.searchParams.get('code'), 'the app got a code');
  t.equal(back?.searchParams.get('state'), 'browser-state');
  t.equal(back?.searchParams.get('iss'), proxy.url);

  const token = await fetch(`${origin}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', code: back?.searchParams.get('code') ?? '', code_verifier: verifier, redirect_uri: 'http://localhost:6274/oauth/callback', client_id: 'inspector' }) });
  t.equal(token.status, 200, 'and redeemed it');
});
