/**
 * `mcp-warden doctor`: an end-to-end self-test of a live deployment, walking what a real client
 * does (RFC 9728 discovery, RFC 8414 metadata, token, initialize, tools/list, DELETE) and reporting
 * the first step that fails with what was expected and what came back.
 */

export interface DoctorOptions {
  /** The public MCP URL, e.g. `https://mcp.example/mcp`. */
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly fetch?: typeof fetch;
}

export interface StepResult {
  readonly step: string;
  readonly ok: boolean;
  readonly detail: string;
  /** On failure: what a healthy deployment answers, and what came back. */
  readonly expected?: string;
  readonly got?: string;
}

class StepFailure extends Error {
  readonly expected: string;
  readonly got: string;

  constructor(expected: string, got: string) {
    super(`expected ${expected}, got ${got}`);
    this.expected = expected;
    this.got = got;
  }
}

const ACCEPT = 'application/json, text/event-stream';
const PROTOCOL = '2025-11-25';

function expect(condition: boolean, expected: string, got: string): asserts condition {
  if (!condition) throw new StepFailure(expected, got);
}

async function describe(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  return `HTTP ${res.status}${text ? ` ${text.slice(0, 300)}` : ''}`;
}

/** The JSON-RPC response with `id` from a JSON or SSE body. */
async function rpcResult(res: Response, id: number): Promise<Record<string, unknown> | null> {
  const text = await res.text();
  const candidates = (res.headers.get('content-type') ?? '').includes('text/event-stream')
    ? text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim())
    : [text];
  for (const candidate of candidates) {
    try {
      const message = JSON.parse(candidate) as Record<string, unknown>;
      if (message.id === id) return message;
    } catch {
      // not JSON: a priming event or a comment
    }
  }
  return null;
}

function param(header: string, name: string): string | null {
  return new RegExp(`${name}="([^"]*)"`).exec(header)?.[1] ?? null;
}

/** Runs the walk; stops at the first failing step. */
export async function runDoctor(options: DoctorOptions): Promise<StepResult[]> {
  const http = options.fetch ?? fetch;
  const results: StepResult[] = [];
  const state = { prm: '', tokenEndpoint: '', token: '', sessionId: null as string | null };
  const rpc = (id: number, method: string, params: object, headers: Record<string, string> = {}) =>
    http(options.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: ACCEPT, ...headers }, body: JSON.stringify({ jsonrpc: '2.0', id, method, params }) });
  const authed = (): Record<string, string> => ({
    authorization: `Bearer ${state.token}`,
    'mcp-protocol-version': PROTOCOL,
    ...(state.sessionId ? { 'mcp-session-id': state.sessionId } : {}),
  });

  const steps: [string, () => Promise<string>][] = [
    ['challenge: an unauthenticated request gets 401 with resource_metadata', async () => {
      const res = await rpc(0, 'ping', {});
      const challenge = res.headers.get('www-authenticate') ?? '';
      expect(res.status === 401, '401', await describe(res));
      const prm = param(challenge, 'resource_metadata');
      expect(challenge.startsWith('Bearer ') && prm !== null, 'WWW-Authenticate: Bearer resource_metadata="..."', challenge || '(none)');
      state.prm = prm;
      return prm;
    }],
    ['discovery: protected resource metadata (RFC 9728)', async () => {
      const res = await http(state.prm);
      expect(res.ok, '200 JSON', await describe(res.clone()));
      const doc = (await res.json()) as { resource?: string; authorization_servers?: string[] };
      expect(doc.resource === options.url, `resource ${options.url}`, `resource ${doc.resource ?? '(none)'}`);
      const issuer = doc.authorization_servers?.[0];
      expect(typeof issuer === 'string', 'authorization_servers[0]', JSON.stringify(doc.authorization_servers));
      const meta = await http(`${new URL(issuer).origin}/.well-known/oauth-authorization-server${new URL(issuer).pathname.replace(/\/$/, '')}`);
      expect(meta.ok, '200 from the authorization server metadata', await describe(meta.clone()));
      const as = (await meta.json()) as { issuer?: string; token_endpoint?: string };
      expect(as.issuer === issuer && typeof as.token_endpoint === 'string', `issuer ${issuer} with a token_endpoint`, JSON.stringify({ issuer: as.issuer, token_endpoint: as.token_endpoint }));
      state.tokenEndpoint = as.token_endpoint;
      return `issuer ${issuer}, token endpoint ${as.token_endpoint}`;
    }],
    ['token: client_credentials (RFC 6749 §4.4)', async () => {
      const res = await http(state.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: options.url }).toString(),
      });
      expect(res.ok, '200 with an access_token', await describe(res.clone()));
      const body = (await res.json()) as { access_token?: string; expires_in?: number; scope?: string };
      expect(typeof body.access_token === 'string', 'access_token', JSON.stringify(Object.keys(body)));
      state.token = body.access_token;
      return `token for "${body.scope ?? ''}", expires in ${body.expires_in ?? '?'} s`;
    }],
    ['upstream transports, as the proxy probed them (/readyz)', async () => {
      const res = await http(`${new URL(options.url).origin}/readyz`);
      const body = (await res.json().catch(() => ({}))) as { transports?: Record<string, string> };
      const found = Object.entries(body.transports ?? {});
      if (found.length === 0) return `not reported (HTTP ${res.status})`;
      const wrong = found.filter(([key, kind]) => (key === 'legacySse.upstream' ? kind === 'streamable-http' : kind === 'legacy-sse'));
      const listed = found.map(([key, kind]) => `${key}: ${kind}`).join(', ');
      expect(wrong.length === 0, 'each upstream configured as the transport it speaks', `${listed} (${wrong.map(([key]) => key).join(', ')} configured as the other transport)`);
      return listed;
    }],
    ['initialize with the token', async () => {
      const res = await rpc(1, 'initialize', { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'mcp-warden-doctor', version: '1' } }, { authorization: `Bearer ${state.token}` });
      expect(res.ok, '200 with an InitializeResult', await describe(res.clone()));
      state.sessionId = res.headers.get('mcp-session-id');
      const result = await rpcResult(res, 1);
      expect(result !== null && 'result' in result, 'an InitializeResult', JSON.stringify(result));
      await rpc(2, 'notifications/initialized', {}, authed()).then((r) => r.text());
      return state.sessionId ? `session ${state.sessionId.slice(0, 8)}…` : 'no session (stateless upstream)';
    }],
    ['tools/list', async () => {
      const res = await rpc(3, 'tools/list', {}, authed());
      expect(res.ok, '200', await describe(res.clone()));
      const result = (await rpcResult(res, 3))?.result as { tools?: { name: string }[] } | undefined;
      expect(Array.isArray(result?.tools), 'result.tools', JSON.stringify(result));
      return `${result.tools.length} tools: ${result.tools.map((t) => t.name).join(', ')}`;
    }],
    ['DELETE ends the session', async () => {
      if (!state.sessionId) return 'skipped: no session';
      const res = await http(options.url, { method: 'DELETE', headers: authed() });
      expect(res.status < 300 || res.status === 405, '2xx (or 405 from an upstream without DELETE)', await describe(res));
      const again = await rpc(4, 'tools/list', {}, authed());
      expect(again.status === 404, '404 for the ended session', await describe(again));
      return `HTTP ${res.status}, then 404`;
    }],
    ['store: does it keep its data across a restart (/readyz)', async () => {
      const res = await http(`${new URL(options.url).origin}/readyz`);
      const body = (await res.json().catch(() => ({}))) as { persistence?: string; warning?: string };
      // Informational: a proxy behind a gateway may not expose /readyz, and a store without
      // persistence works; the operator should know what a restart costs.
      if (typeof body.persistence !== 'string') return `not reported (HTTP ${res.status})`;
      return body.warning ? `${body.persistence}: WARNING ${body.warning}` : body.persistence;
    }],
  ];

  for (const [step, run] of steps) {
    try {
      results.push({ step, ok: true, detail: await run() });
    } catch (err) {
      const failure = err instanceof StepFailure ? err : new StepFailure('an answer', describeFailure(err));
      results.push({ step, ok: false, detail: failure.message, expected: failure.expected, got: failure.got });
      break;
    }
  }
  return results;
}

/**
 * What went wrong, down to the cause: fetch says only "fetch failed", the reason (ECONNREFUSED
 * 127.0.0.1:9, ENOTFOUND, a certificate error) is in its `cause` chain.
 */
export function describeFailure(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const { code, address, port, hostname } = e as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
    const where = address ? ` ${address}${port ? `:${port}` : ''}` : hostname ? ` ${hostname}` : '';
    const text = `${e.message}${code && !e.message.includes(code) ? ` (${code}${where})` : ''}`;
    if (!parts.includes(text)) parts.push(text);
  }
  return parts.length ? parts.join(': ') : String(err);
}
