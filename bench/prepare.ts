/**
 * Prepare steps: how a target's credentials (token, session) are obtained before measuring.
 * Kept pluggable because what mcp-warden needs grows as authentication and sessions land.
 */
import type { BenchClient } from './warden-config.js';
import { INITIALIZE, INITIALIZED, postHeaders } from './workload.js';
import type { Credentials } from './workload.js';

/** Obtains credentials against a target's MCP URL. */
export type Prepare = (mcpUrl: string) => Promise<Credentials>;

async function expectStatus(res: Response, ok: (status: number) => boolean, what: string): Promise<string> {
  const text = await res.text();
  if (!ok(res.status)) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return text;
}

/** `initialize` (with the token, if any), then `notifications/initialized` on the returned session. */
async function initialize(mcpUrl: string, token: string | null): Promise<Credentials> {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(mcpUrl, { method: 'POST', headers: { ...postHeaders(null), ...auth }, body: INITIALIZE });
  await expectStatus(res, (s) => s === 200, `initialize at ${mcpUrl}`);
  const sessionId = res.headers.get('mcp-session-id');
  if (!sessionId) throw new Error(`initialize at ${mcpUrl} returned no Mcp-Session-Id`);
  const credentials = { sessionId, token };
  const ack = await fetch(mcpUrl, { method: 'POST', headers: postHeaders(credentials), body: INITIALIZED });
  await expectStatus(ack, (s) => s >= 200 && s < 300, `notifications/initialized at ${mcpUrl}`);
  return credentials;
}

/** For targets without authentication (the upstream itself, the bare proxy). */
export function initializeOnly(): Prepare {
  return (mcpUrl) => initialize(mcpUrl, null);
}

/**
 * For mcp-warden: a client_credentials token (client_secret_basic, RFC 6749 §2.3.1) from
 * `POST /oauth/token`, then `initialize` with it. A 404 there means the token endpoint is not
 * built yet: the run goes on without a token and the report says `auth: none`. Any other
 * failure stops the run, so a broken endpoint is never benchmarked as if it were absent.
 */
export function tokenThenInitialize(origin: string, client: BenchClient): Prepare {
  return async (mcpUrl) => {
    const basic = Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64');
    const res = await fetch(`${origin}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'mcp' }).toString(),
    });
    if (res.status === 404) {
      await res.arrayBuffer();
      return initialize(mcpUrl, null);
    }
    const body: unknown = JSON.parse(await expectStatus(res, (s) => s === 200, `POST ${origin}/oauth/token`));
    const token = typeof body === 'object' && body !== null && 'access_token' in body ? body.access_token : undefined;
    if (typeof token !== 'string' || !token) throw new Error(`POST ${origin}/oauth/token returned no access_token`);
    return initialize(mcpUrl, token);
  };
}
