/**
 * RateLimit headers (draft-ietf-httpapi-ratelimit-headers) on every answer after the client's
 * limit was taken: a POST, a GET event stream's head, and a refusal by a later stage. The proxy
 * adds them where it writes each head (`ctx.responseHeaders`), not through `res.setHeader`.
 */
import t from 'tap';
import { startStack } from '../fixtures/stack.js';
import { forgedId, openSession, openStream, send } from '../fixtures/session-http.js';

const CLIENT_LIMIT = /^"client";r=\d+;t=\d+$/;

t.test('a POST, a GET stream and a later refusal all carry the client RateLimit headers', async (t) => {
  const { proxy, token } = await startStack(t, { rateLimits: { client: { points: 100, duration: '1m' } } });
  const alice = await token();
  const session = await openSession(proxy.mcpUrl, alice);
  t.equal(session.status, 200);
  t.match(session.headers.get('ratelimit'), CLIENT_LIMIT, 'POST');
  t.equal(session.headers.get('ratelimit-policy'), '"client";q=100;w=60');

  const stream = await openStream(proxy.mcpUrl, { token: alice, sessionId: session.sessionId ?? '' });
  t.teardown(() => stream.close());
  t.equal(stream.status, 200);
  t.match(stream.headers.get('content-type'), /^text\/event-stream/);
  t.match(stream.headers.get('ratelimit'), CLIENT_LIMIT, 'GET stream head');
  t.equal(stream.headers.get('ratelimit-policy'), '"client";q=100;w=60');

  // resolve-session refuses an id it does not know, after the rate limit was taken.
  const unknown = await send(proxy.mcpUrl, { token: alice, sessionId: forgedId() });
  t.equal(unknown.status, 404);
  t.match(unknown.headers.get('ratelimit'), CLIENT_LIMIT, 'refusal after the limit');
  t.equal(unknown.headers.get('ratelimit-policy'), '"client";q=100;w=60');
});
