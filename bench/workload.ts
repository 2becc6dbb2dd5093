/** What the bench sends: the MCP messages and the headers that go with a prepared session. */

export const PROTOCOL_VERSION = '2025-11-25';

/** What the measured requests carry, obtained once per target by its prepare step. */
export interface Credentials {
  /** The session id the target returned on `initialize` (mcp-warden's own, once it mints them). */
  readonly sessionId: string;
  /** Bearer token, or null when the target has no token endpoint yet. */
  readonly token: string | null;
}

export const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'mcp-warden-bench', version: '1.0.0' } },
});

export const INITIALIZED = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });

/** The measured request: a small tool call, as an agent would send it. */
export const TOOLS_CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'echo', arguments: { message: 'hello' } },
});

/** Headers of a POST on the MCP path (Streamable HTTP: the client accepts JSON or SSE). */
export function postHeaders(credentials: Credentials | null): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...sessionHeaders(credentials),
  };
}

/** Session id, protocol version and bearer token, for any request after `initialize`. */
export function sessionHeaders(credentials: Credentials | null): Record<string, string> {
  if (!credentials) return {};
  return {
    'mcp-session-id': credentials.sessionId,
    'mcp-protocol-version': PROTOCOL_VERSION,
    ...(credentials.token ? { authorization: `Bearer ${credentials.token}` } : {}),
  };
}
