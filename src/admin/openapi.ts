/**
 * The admin API's OpenAPI 3.1 document, served at /admin/v1/openapi.json. A test holds it and the
 * route table to the same paths and methods.
 */
const problem = { description: 'RFC 9457 problem details', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
const refused = { 400: problem, 401: problem, 404: problem, 409: problem, 503: problem };
const ok = (description: string, schema: Record<string, unknown> = { type: 'object' }) => ({ 200: { description, content: { 'application/json': { schema } } }, ...refused });
const json = (schema: Record<string, unknown>) => ({ required: true, content: { 'application/json': { schema } } });

export const ADMIN_OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'mcp-warden admin API', version: '1', description: 'Served on admin.listen only. Every call but this document needs `Authorization: Bearer <admin key>` or a proxy token with the `admin` scope.' },
  security: [{ bearer: [] }],
  paths: {
    '/admin/v1/openapi.json': { get: { summary: 'This document', security: [], responses: { 200: { description: 'OpenAPI 3.1' } } } },
    '/admin/v1/audit-key': { get: { summary: 'This replica\'s Ed25519 audit checkpoint key (public; keep it to verify the trail)', security: [], responses: ok('The key', { type: 'object', properties: { replica: { type: 'string' }, kid: { type: 'string' }, jwk: { type: 'object' } } }) } },
    '/admin/v1/revoke': {
      post: {
        summary: 'Revoke a token, a grant or jti of a client, everything of a client, or everything of a signed-in person (on every replica)',
        requestBody: json({
          oneOf: [
            { type: 'object', required: ['token'], properties: { token: { type: 'string' } } },
            { type: 'object', required: ['user'], properties: { user: { type: 'string', description: 'u~<issuer tag>~<sub>, as X-MCP-User shows it' } } },
            { type: 'object', required: ['client'], properties: { client: { type: 'string' }, grant: { type: 'string' }, jti: { type: 'string' } } },
          ],
        }),
        responses: ok('What was revoked', { type: 'object', properties: { clientId: { type: 'string' }, what: { type: 'string' }, sessionsEnded: { type: 'integer' }, alreadyExpired: { type: 'boolean' } } }),
      },
    },
    '/admin/v1/sessions': {
      get: {
        summary: 'Open sessions (oldest first), named by the short hash security events log',
        parameters: [{ name: 'client', in: 'query', required: false, schema: { type: 'string' } }],
        responses: ok('Sessions', { type: 'object', properties: { sessions: { type: 'array', items: { type: 'object', properties: { session: { type: 'string' }, clientId: { type: 'string' }, upstream: { type: 'integer' }, createdAt: { type: 'integer' }, expiresAt: { type: 'integer' } } } } } }),
      },
      delete: {
        summary: 'End one session by its listed hash (its upstream session is ended by the sweeper)',
        parameters: [{ name: 'session', in: 'query', required: true, schema: { type: 'string' } }, { name: 'client', in: 'query', required: false, schema: { type: 'string' } }],
        responses: ok('Ended'),
      },
    },
    '/admin/v1/blocks': {
      get: { summary: 'Addresses blocked for failed attempts (IPv4 /32, IPv6 /64) and for how long', responses: ok('Blocks', { type: 'object', properties: { blocks: { type: 'array', items: { type: 'object', properties: { address: { type: 'string' }, remainingMs: { type: 'integer' } } } } } }) },
      delete: { summary: 'Lift a block', parameters: [{ name: 'address', in: 'query', required: true, schema: { type: 'string' } }], responses: ok('Lifted') },
    },
    '/admin/v1/keys/rotate': { post: { summary: 'Make a new signing key; older keys keep verifying', responses: ok('The new key', { type: 'object', properties: { kid: { type: 'string' }, alg: { type: 'string' } } }) } },
    '/admin/v1/keys/retire': { post: { summary: 'Remove a key that no longer signs: tokens it signed stop verifying', requestBody: json({ type: 'object', required: ['kid'], properties: { kid: { type: 'string' } } }), responses: ok('Retired') } },
    '/admin/v1/reload': { post: { summary: 'Reload the config file\'s policy and clients (what SIGHUP does)', responses: ok('Reloaded') } },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Problem: { type: 'object', properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, code: { type: 'string' } } },
    },
  },
} as const;
