import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { authorizationField, parseBasic } from '../http/headers.js';
import { readBody } from '../http/jsonrpc.js';
import type { Client, ClientRegistry } from '../auth/clients.js';
import type { LimitResult, Limiters } from '../store/limiters.js';

const MAX_FORM_BYTES = 16 * 1024;
const MAX_PARAM_LENGTH = 4096;

/** An OAuth request body: each parameter once (RFC 6749 §3.2), bounded. */
export type Form = ReadonlyMap<string, string>;

/** Reads an `application/x-www-form-urlencoded` body; anything else is invalid_request. */
export async function readForm(ctx: RequestContext): Promise<Form> {
  const type = String(ctx.req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new WardenError('OAUTH_INVALID_REQUEST', { description: 'The body must be application/x-www-form-urlencoded' });
  }
  let body: Buffer;
  try {
    body = await readBody(ctx.req, MAX_FORM_BYTES);
  } catch {
    throw new WardenError('OAUTH_INVALID_REQUEST', { description: 'The body is too large' });
  }
  const form = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
    // RFC 6749 §3.2: parameters MUST NOT be included more than once.
    if (form.has(name)) throw new WardenError('OAUTH_INVALID_REQUEST', { description: `Parameter "${name.slice(0, 40)}" is repeated` });
    if (value.length > MAX_PARAM_LENGTH) throw new WardenError('OAUTH_INVALID_REQUEST', { description: 'A parameter is too long' });
    form.set(name, value);
  }
  return form;
}

/**
 * Authenticates the calling client by `client_secret_basic` or `client_secret_post` (exactly one,
 * RFC 6749 §2.3). The address's token-endpoint limit is taken before the (deliberately slow)
 * secret check; the client's own limit only once the secret was right.
 */
export async function authenticateClient(ctx: RequestContext, form: Form, deps: { clients: ClientRegistry; limiters: Limiters }): Promise<Client> {
  // A blocked address was refused by the entry stages, before any secret is checked.
  // All Authorization lines, not Node's first-wins req.headers: two are malformed.
  const basic = parseBasic(authorizationField(ctx.req.headers.authorization, ctx.req.rawHeaders));
  const postId = form.get('client_id');
  const postSecret = form.get('client_secret');
  if (basic.ok && (postSecret !== undefined || (postId !== undefined && postId !== basic.value.id))) {
    throw new WardenError('OAUTH_INVALID_REQUEST', { description: 'Use one client authentication method' });
  }
  const credentials = basic.ok ? basic.value : postId !== undefined && postSecret !== undefined ? { id: postId, secret: postSecret } : null;
  const refuse = (result: LimitResult): WardenError => new WardenError('RATE_LIMITED', { reason: 'token_endpoint', limit: result.limit, retryAfterMs: result.limit.resetMs });
  const byAddress = await deps.limiters.tokenEndpoint(ctx.clientAddress);
  if (!byAddress.allowed) throw refuse(byAddress);
  if (!credentials) throw new WardenError('OAUTH_INVALID_CLIENT', { reason: basic.ok || basic.reason === 'missing' ? 'missing' : 'malformed' });
  const client = await deps.clients.authenticate(credentials.id, credentials.secret);
  if (!client) throw new WardenError('OAUTH_INVALID_CLIENT', { reason: 'client' });
  const byClient = await deps.limiters.tokenClient(client.id);
  if (!byClient.allowed) throw refuse(byClient);
  ctx.client = client;
  return client;
}
