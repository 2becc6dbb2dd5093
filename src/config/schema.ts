import {
  bool, duration, enumList, headerMap, int, limit, MAX_TIMER_MS, oneOf, optionalHeaderName, optionalHostPort,
  optionalHostPortList, optionalInt, optionalLimit, optionalText, optionalUrl, ratio, records, text, textList,
  trustProxy, urlList,
} from './fields.js';
import type { Resolved } from './fields.js';
import { custom } from './fields.js';
import { parsePolicy } from '../policy/config.js';
import type { PolicyConfig } from '../policy/config.js';

const HTTP = ['http:', 'https:'] as const;

// The policy section's shape for editors; src/policy/config.ts checks the rest (globs, conditions).
const NAMES = { type: 'array', items: { type: 'string' } };
const POLICY_JSON = {
  anyOf: [{ type: 'null' }, {
    type: 'object',
    properties: {
      default: { enum: ['allow', 'deny'] },
      rules: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'effect'],
          additionalProperties: false,
          properties: {
            id: { type: 'string' }, effect: { enum: ['allow', 'deny'] }, methods: NAMES, tools: NAMES, prompts: NAMES, resources: NAMES, unlessScopes: NAMES,
            arguments: { type: 'object' },
            when: { type: 'object', additionalProperties: false, properties: { clients: NAMES, users: NAMES, issuers: NAMES, groups: NAMES, scopes: NAMES, claims: { type: 'object' } } },
          },
        },
      },
    },
    additionalProperties: false,
  }],
};
const PATH = { pattern: /^\/[A-Za-z0-9._~\/-]*$/, message: 'must be a path starting with "/"' };
const SCOPE = { pattern: /^[\x21\x23-\x5b\x5d-\x7e]+$/, message: 'must be an OAuth scope token (RFC 6749 §3.3)' };
// No "~": external identities are namespaced as "idp<n>~<subject>" and must never match a client.
/** A redirect URI glob: a scheme, then anything but spaces and backslashes (`*` is the wildcard). */
const REDIRECT_PATTERN = { pattern: /^[A-Za-z][A-Za-z0-9+.-]*:[^\s\\]+$/, message: 'must be a URI pattern such as "https://*" or "http://127.0.0.1/*"' };
const TOKEN_TYPE = { pattern: /^[A-Za-z0-9.+\/-]{1,64}$/, message: 'must be a media type such as "at+jwt"' };
const CLIENT_ID = { pattern: /^[A-Za-z0-9._-]{1,64}$/, message: 'must be 1-64 characters of A-Z a-z 0-9 . _ -' };

/** A client allowed to get tokens: from the config file (store-managed clients have the same shape). */
const clientShape = {
  id: text({ doc: 'Client id (the token `sub` and `client_id`).', default: undefined, example: 'agent-1' }, CLIENT_ID),
  secret: optionalText({ doc: 'Client secret, inline. Prefer secretFile or secretHash.', default: null, secret: true, example: 'change-me-to-a-long-random-secret' }),
  secretFile: optionalText({ doc: 'Path of a file holding the client secret.', default: null, example: null }),
  secretHash: optionalText({ doc: 'scrypt hash of the secret, from `mcp-warden client hash-secret`.', default: null, example: null }),
  scopes: textList({ doc: 'Scopes this client may request.', default: ['mcp'] }, SCOPE),
  maxSessions: optionalInt(1, 100_000, { doc: 'Override of sessions.maxConcurrent for this client.', default: null, example: 5 }),
  rateLimit: optionalLimit({ doc: 'Override of rateLimits.client for this client.', default: null, example: { points: 600, duration: '1m' } }),
};

const issuerShape = {
  issuer: text({ doc: 'Expected `iss` of the identity provider.', default: undefined, example: 'https://idp.example' }),
  jwksUri: text({ doc: 'JWKS URL of the identity provider.', default: undefined, example: 'https://idp.example/.well-known/jwks.json' }, { pattern: /^https?:\/\//, message: 'must be an http(s) URL' }),
  audience: text({ doc: 'Expected `aud`.', default: undefined, example: 'mcp-warden' }),
  // Both required: what an issuer's tokens are, and what a token without a scope claim may do, are
  // the operator's decisions (an ID token with the right audience must not pass for an access token).
  types: textList({ doc: 'Accepted JWT `typ` headers, compared case-insensitively without "application/" (RFC 8725 §3.11). `["at+jwt"]` for RFC 9068 access tokens; list `"jwt"` only for a provider whose access tokens say just that (its ID tokens then pass too when their audience matches).', default: undefined, example: ['at+jwt'] }, TOKEN_TYPE),
  scopes: textList({ doc: 'Scopes an identity from this issuer gets when its token has no `scope` (or `scp`) claim; `[]` for none.', default: undefined, example: ['mcp'] }, SCOPE),
};

/** An MCP client app people sign in through (interactive login): public unless it has a secret. */
const loginClientShape = {
  id: text({ doc: 'client_id the MCP client sends.', default: undefined, example: 'inspector' }, CLIENT_ID),
  name: optionalText({ doc: 'Name shown on the consent page.', default: null, example: 'MCP Inspector' }),
  redirectUris: textList({ doc: 'Exact redirect URIs; http on 127.0.0.1, [::1] or localhost matches any port (RFC 8252).', default: [], example: ['http://localhost:6274/oauth/callback'] }),
  secretHash: optionalText({ doc: 'Confidential client: scrypt hash of its secret (`mcp-warden client hash-secret`); null: public (PKCE only).', default: null, example: null }),
};

/** A budget for some tools: calls per window per client (or person), first matching entry wins. */
const toolBudgetShape = {
  tools: textList({ doc: 'Tool names or globs (`send_*`) this budget is for.', default: [] }),
  points: int(1, 1_000_000_000, { doc: 'Calls allowed per window.', default: undefined, example: 10 }),
  duration: duration({ doc: 'The window.', default: undefined, example: '1h' }, 1_000),
};

/** A group claim value that grants scopes to the people in it. */
const scopeMapShape = {
  group: text({ doc: 'Value of the groups claim.', default: undefined, example: 'admins' }),
  scopes: textList({ doc: 'Scopes its members get.', default: [] }, SCOPE),
};

/**
 * Every configuration key, once: its type, default, environment variable, CLI flag and doc line.
 * The CLI flags, `proxy.config.example.json` and the reference in docs/configuration.md are derived from it.
 */
export const schema = {
  listen: {
    host: text({ doc: 'Address to listen on.', default: '127.0.0.1', env: 'MCP_WARDEN_HOST', flag: 'host' }),
    port: int(0, 65535, { doc: 'Port to listen on (0 picks a free one).', default: 8080, env: 'MCP_WARDEN_PORT', flag: 'port' }),
  },
  publicUrl: optionalUrl(HTTP, { doc: 'Origin clients use to reach the proxy; defaults to the listen address.', default: null, example: 'http://127.0.0.1:8080', env: 'MCP_WARDEN_PUBLIC_URL', flag: 'public-url' }),
  mcpPath: text({ doc: 'Path of the proxied MCP endpoint.', default: '/mcp', env: 'MCP_WARDEN_MCP_PATH', flag: 'mcp-path' }, { pattern: /^\/[A-Za-z0-9._~\/-]*$/, message: 'must be a path starting with "/"' }),
  upstreams: urlList(HTTP, 1, { doc: 'Upstream MCP endpoint URLs; a new session picks one round robin and stays on it.', default: ['http://127.0.0.1:3000/mcp'], env: 'MCP_WARDEN_UPSTREAMS', flag: 'upstream' }),
  upstreamHeaders: headerMap({ doc: 'Headers added to every upstream request (e.g. an upstream credential).', default: {}, example: { 'X-Upstream-Key': 'change-me' } }),
  identityHeaders: {
    user: optionalHeaderName({ doc: 'Upstream header carrying the signed-in person (issuer-qualified, never a client id; null: not sent).', default: 'X-MCP-User' }),
    clientId: optionalHeaderName({ doc: 'Upstream header carrying the client id (null: not sent).', default: 'X-MCP-Client-Id' }),
    scopes: optionalHeaderName({ doc: 'Upstream header carrying the granted scopes (null: not sent).', default: 'X-MCP-Scopes' }),
  },
  store: {
    type: oneOf(['memory', 'redis'], { doc: 'Where sessions, token state and counters live.', default: 'memory', env: 'MCP_WARDEN_STORE', flag: 'store' }),
    url: optionalUrl(['redis:', 'rediss:'], { doc: 'Redis URL (standalone).', default: null, example: 'redis://127.0.0.1:6379', env: 'MCP_WARDEN_REDIS_URL', flag: 'redis-url' }),
    sentinels: optionalHostPortList({ doc: 'Redis Sentinel nodes ("host:port").', default: null, example: null, env: 'MCP_WARDEN_REDIS_SENTINELS' }),
    sentinelName: text({ doc: 'Master name the sentinels watch.', default: 'mymaster', env: 'MCP_WARDEN_REDIS_SENTINEL_NAME' }),
    cluster: optionalHostPortList({ doc: 'Redis Cluster seed nodes ("host:port").', default: null, example: null, env: 'MCP_WARDEN_REDIS_CLUSTER' }),
    password: optionalText({ doc: 'Redis password (Sentinel/Cluster; for a URL put it in the URL).', default: null, secret: true, example: null, env: 'MCP_WARDEN_REDIS_PASSWORD' }),
    passwordFile: optionalText({ doc: 'Path of a file holding the Redis password.', default: null, example: null, env: 'MCP_WARDEN_REDIS_PASSWORD_FILE' }),
    keyPrefix: text({ doc: 'Prefix of every Redis key.', default: 'mcpw:', env: 'MCP_WARDEN_REDIS_KEY_PREFIX' }, { pattern: /^[A-Za-z0-9:._-]{1,32}$/, message: 'must be 1-32 characters of A-Z a-z 0-9 : . _ -' }),
    commandTimeout: duration({ doc: 'Longest a Redis command may take before the request fails closed (503).', default: '1s' }, 1, MAX_TIMER_MS),
    maxEntries: int(1000, 10_000_000, { doc: 'Memory store: most entries kept (oldest dropped first).', default: 100_000 }),
    clientCache: bool({ doc: 'Redis (standalone or Sentinel): keep revocation state, session records and address blocks in the process, invalidated by Redis (CLIENT TRACKING), and take the client rate limit and the budgets in small leases, so most requests need no round trip. Idle expiry may come up to 10% early; see docs/performance.md for the bounds.', default: false, env: 'MCP_WARDEN_REDIS_CLIENT_CACHE' }),
  },
  tokens: {
    issuer: optionalText({ doc: 'Token `iss`; defaults to publicUrl.', default: null, example: 'http://127.0.0.1:8080', env: 'MCP_WARDEN_TOKEN_ISSUER' }),
    algorithm: oneOf(['HS256', 'EdDSA', 'ES256'], { doc: 'Signing algorithm of access tokens.', default: 'HS256', env: 'MCP_WARDEN_TOKEN_ALGORITHM' }),
    secret: optionalText({ doc: 'HS256 signing secret (at least 32 bytes). Without one, Redis shares a generated one.', default: null, secret: true, example: 'replace-with-at-least-32-random-bytes-0000', env: 'MCP_WARDEN_TOKEN_SECRET' }),
    secretFile: optionalText({ doc: 'Path of a file holding the signing secret.', default: null, example: null, env: 'MCP_WARDEN_TOKEN_SECRET_FILE' }),
    accessTtl: duration({ doc: 'Lifetime of access tokens.', default: '1h', env: 'MCP_WARDEN_ACCESS_TTL' }, 10_000),
    refreshTtl: duration({ doc: 'Lifetime of refresh tokens.', default: '30d', env: 'MCP_WARDEN_REFRESH_TTL' }, 60_000),
    issueRefreshTokens: bool({ doc: 'Issue refresh tokens with client_credentials (RFC 6749 §4.4.3 says SHOULD NOT).', default: false, env: 'MCP_WARDEN_ISSUE_REFRESH_TOKENS' }),
    requiredScope: optionalText({ doc: 'Scope a token needs on the MCP path (null: any).', default: 'mcp', env: 'MCP_WARDEN_REQUIRED_SCOPE' }, SCOPE),
    clockSkew: duration({ doc: 'Clock skew tolerated on exp/nbf/iat.', default: '30s' }, 0),
    trustedIssuers: records(issuerShape, { doc: 'External identity providers whose JWTs are accepted.', default: [], example: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/.well-known/jwks.json', audience: 'mcp-warden', types: ['at+jwt'], scopes: ['mcp'] }] }),
  },
  clients: records(clientShape, { doc: 'Clients defined in the file (more can live in the store: `mcp-warden client add`).', default: [], example: [{ id: 'agent-1', secret: 'change-me-to-a-long-random-secret', secretFile: null, secretHash: null, scopes: ['mcp'], maxSessions: 5, rateLimit: { points: 600, duration: '1m' } }] }),
  sessions: {
    idleTimeout: duration({ doc: 'A session unused this long ends (sliding).', default: '1h', env: 'MCP_WARDEN_SESSION_IDLE_TIMEOUT' }, 1000),
    maxLifetime: duration({ doc: 'A session ends this long after creation, used or not.', default: '24h', env: 'MCP_WARDEN_SESSION_MAX_LIFETIME' }, 1000),
    maxConcurrent: int(1, 100_000, { doc: 'Open sessions per client.', default: 10, env: 'MCP_WARDEN_SESSION_MAX_CONCURRENT' }),
    onLimit: oneOf(['reject', 'evict-oldest'], { doc: 'At maxConcurrent: end the oldest session (default: clients that never send DELETE are never locked out) or refuse the new one (429).', default: 'evict-oldest' }),
    bindTo: enumList(['client', 'userAgent', 'address'], { doc: 'What a session is bound to besides the client (always).', default: ['client'] }),
    addressPrefixV4: int(0, 32, { doc: 'Bits of an IPv4 address compared by the "address" binding.', default: 24 }),
    addressPrefixV6: int(0, 128, { doc: 'Bits of an IPv6 address compared by the "address" binding.', default: 64 }),
    maxStreams: int(1, 10_000, { doc: 'Concurrent streams per client on one replica: GET streams and POST responses answered as SSE.', default: 20 }),
  },
  rateLimits: {
    client: limit({ doc: 'Requests per client on the MCP path.', default: { points: 600, duration: '1m' } }),
    sessionCreate: limit({ doc: 'Sessions a client may create.', default: { points: 10, duration: '1m' } }),
    failedAttempts: limit({ doc: 'Failed attempts per source address before it is blocked for `block`.', default: { points: 20, duration: '1m', block: '5m' } }, true),
    tokenEndpoint: limit({ doc: 'Token and revocation requests per source address and per client_id.', default: { points: 30, duration: '1m' } }),
    register: limit({ doc: 'Dynamic client registrations (POST /oauth/register) per source address.', default: { points: 10, duration: '1h' } }),
  },
  security: {
    requireSecureTransport: bool({ doc: 'Refuse plain HTTP unless a trusted proxy says X-Forwarded-Proto: https.', default: false, env: 'MCP_WARDEN_REQUIRE_SECURE_TRANSPORT' }),
    allowedOrigins: textList({ doc: 'Browser origins allowed on the MCP path; any other Origin gets 403.', default: [] }),
    trustProxy: trustProxy({ doc: 'X-Forwarded-For trust: false, a hop count, or CIDRs of trusted proxies.', default: false, env: 'MCP_WARDEN_TRUST_PROXY' }),
    maxBodyBytes: int(1024, 1 << 30, { doc: 'Largest request body.', default: 4_194_304, env: 'MCP_WARDEN_MAX_BODY_BYTES' }),
    maxHeaderBytes: int(1024, 1 << 20, { doc: 'Largest request head (all headers).', default: 16_384 }),
    upstreamTimeout: duration({ doc: 'Longest wait for upstream response headers (streams may then idle).', default: '60s', env: 'MCP_WARDEN_UPSTREAM_TIMEOUT' }, 100, MAX_TIMER_MS),
    headersTimeout: duration({ doc: 'Longest a client may take to send its request headers.', default: '10s' }, 100),
    requestTimeout: duration({ doc: 'Longest a client may take to send a whole request.', default: '30s' }, 100),
  },
  tls: {
    certFile: optionalText({ doc: 'PEM certificate: serve HTTPS.', default: null, example: null, env: 'MCP_WARDEN_TLS_CERT_FILE' }),
    keyFile: optionalText({ doc: 'PEM private key for certFile.', default: null, example: null, env: 'MCP_WARDEN_TLS_KEY_FILE' }),
  },
  admin: {
    listen: optionalHostPort({ doc: 'Separate "host:port" for /metrics, health and the admin API (otherwise /metrics is on the main listener and there is no admin API).', default: null, example: null, env: 'MCP_WARDEN_ADMIN_LISTEN' }),
    key: optionalText({ doc: 'Admin API key (at least 32 bytes), sent as `Authorization: Bearer <key>`; tokens with the `admin` scope work too.', default: null, secret: true, example: null, env: 'MCP_WARDEN_ADMIN_KEY' }),
    keyFile: optionalText({ doc: 'Path of a file holding the admin API key.', default: null, example: null, env: 'MCP_WARDEN_ADMIN_KEY_FILE' }),
  },
  login: {
    oidc: {
      issuer: optionalUrl(HTTP, { doc: 'OpenID Connect provider people sign in with; null turns interactive sign-in off.', default: null, example: 'https://idp.example', env: 'MCP_WARDEN_LOGIN_ISSUER' }),
      clientId: optionalText({ doc: 'mcp-warden\'s client id at the provider.', default: null, example: 'mcp-warden', env: 'MCP_WARDEN_LOGIN_CLIENT_ID' }),
      clientSecret: optionalText({ doc: 'mcp-warden\'s client secret at the provider.', default: null, secret: true, example: null, env: 'MCP_WARDEN_LOGIN_CLIENT_SECRET' }),
      scopes: textList({ doc: 'Scopes asked of the provider.', default: ['openid', 'email', 'profile'] }, SCOPE),
      groupsClaim: optionalText({ doc: 'ID token claim holding the person\'s groups (null: none).', default: 'groups' }),
    },
    registration: {
      dynamic: bool({ doc: 'Open dynamic client registration (RFC 7591, POST /oauth/register): MCP clients such as mcp-remote and the Inspector register themselves.', default: false, env: 'MCP_WARDEN_LOGIN_DYNAMIC_REGISTRATION' }),
      metadataDocuments: bool({ doc: 'Accept Client ID Metadata Documents: a client_id that is an https URL is fetched (SSRF-guarded) and describes the client.', default: true }),
      redirectUris: textList({ doc: 'Redirect URIs self-registered clients may use (globs; a loopback http URI matches without its port; custom schemes such as vscode:* only when listed).', default: ['http://127.0.0.1/*', 'http://[::1]/*', 'http://localhost/*', 'https://*'] }, REDIRECT_PATTERN),
      allowPrivateMetadataHosts: bool({ doc: 'Fetch metadata documents from private, loopback and link-local addresses too (and plain http on loopback): development only.', default: false }),
      unusedTtl: duration({ doc: 'A registration nobody signed in through is forgotten after this long.', default: '24h' }, 60_000),
      ttl: duration({ doc: 'A used registration is forgotten this long after its last sign-in.', default: '90d' }, 60_000),
    },
    clients: records(loginClientShape, { doc: 'MCP client apps people sign in through.', default: [], example: [{ id: 'inspector', name: 'MCP Inspector', redirectUris: ['http://localhost:6274/oauth/callback'], secretHash: null }] }),
    scopes: textList({ doc: 'Scopes every signed-in person may get.', default: ['mcp'] }, SCOPE),
    scopeMap: records(scopeMapShape, { doc: 'More scopes for members of a group.', default: [], example: [{ group: 'admins', scopes: ['mcp:admin'] }] }),
    consent: oneOf(['always', 'remember'], { doc: 'Ask for consent on every sign-in, or remember it per person and client app.', default: 'remember' }),
    consentTtl: duration({ doc: 'How long a remembered consent lasts.', default: '30d' }, 60_000),
    codeTtl: duration({ doc: 'Lifetime of an authorization code.', default: '60s' }, 1_000, 600_000),
    loginTtl: duration({ doc: 'Time a person has to finish signing in.', default: '10m' }, 10_000, 3_600_000),
  },
  legacySse: {
    upstream: optionalUrl(HTTP, { doc: 'SSE endpoint of a legacy (MCP 2024-11-05 HTTP+SSE) upstream; when set, legacy clients are served at ssePath and messagePath.', default: null, example: null, env: 'MCP_WARDEN_LEGACY_SSE_UPSTREAM' }),
    ssePath: text({ doc: 'Path where legacy clients open their event stream.', default: '/sse' }, PATH),
    messagePath: text({ doc: 'Path where legacy clients post their messages (`?sessionId=` is the proxy session id).', default: '/messages' }, PATH),
    bridge: bool({ doc: 'Serve Streamable HTTP clients on mcpPath from legacySse.upstream (instead of forwarding to upstreams). Replicated, it needs the sidecar layout (replica.advertiseUrl).', default: false }),
  },
  replica: {
    id: optionalText({ doc: 'This replica\'s name in session records and logs (e.g. the pod name); a random one per process when null.', default: null, example: null, env: 'MCP_WARDEN_REPLICA_ID' }, { pattern: /^[A-Za-z0-9._-]{1,40}$/, message: 'must be 1-40 characters of A-Z a-z 0-9 . _ -' }),
    advertiseUrl: optionalUrl(HTTP, { doc: 'Sidecar layout: the URL other replicas reach this one at (e.g. http://$(POD_IP):8080). Sessions then stay with the replica whose upstream holds them, and other replicas relay to it.', default: null, example: null, env: 'MCP_WARDEN_REPLICA_ADVERTISE_URL' }),
  },
  tracing: {
    otlpEndpoint: optionalUrl(HTTP, { doc: 'OpenTelemetry: where spans are sent (OTLP over HTTP, e.g. http://collector:4318/v1/traces). null: tracing is off and its SDK is never loaded.', default: null, example: null, env: 'MCP_WARDEN_TRACING_OTLP_ENDPOINT' }),
    serviceName: text({ doc: 'service.name of the spans.', default: 'mcp-warden', env: 'MCP_WARDEN_TRACING_SERVICE_NAME' }),
    sampleRatio: ratio({ doc: 'Share of new traces recorded (0 to 1); a trusted caller\'s sampled flag is followed.', default: 1, env: 'MCP_WARDEN_TRACING_SAMPLE_RATIO' }),
    acceptParent: oneOf(['never', 'trusted-proxies', 'always'] as const, { doc: 'Whose W3C `traceparent` continues its trace: nobody\'s, only a peer in security.trustProxy\'s, or anyone\'s. Other callers start a new trace.', default: 'trusted-proxies', env: 'MCP_WARDEN_TRACING_ACCEPT_PARENT' }),
  },
  health: {
    checkUpstream: bool({ doc: '/readyz also requires the upstreams to accept a connection.', default: false }),
    probeTransports: bool({ doc: 'At start, ask each upstream which transport it speaks (a GET) and warn when the config says otherwise (a legacy HTTP+SSE server among upstreams, or the reverse); /readyz and doctor report it.', default: true }),
  },
  policy: custom<PolicyConfig | null>({
    json: POLICY_JSON,
    doc: 'Per-tool authorization (docs/policy.md): `default` ("allow" or "deny") and `rules`; null: no policy, nothing checked or filtered.',
    default: null,
    example: {
      default: 'allow',
      rules: [
        { id: 'no-deletes', effect: 'deny', tools: ['delete_*'] },
        { id: 'admins-sql', effect: 'allow', when: { groups: ['admins'] }, tools: ['run_sql'] },
        { id: 'fence', effect: 'deny', resources: ['file:///etc/*'] },
        { id: 'step-up', effect: 'deny', unlessScopes: ['tools:write'], tools: ['write_*'] },
      ],
    },
  }, parsePolicy),
  shutdownGrace: duration({ doc: 'On SIGTERM, how long in-flight requests may take to finish.', default: '10s', env: 'MCP_WARDEN_SHUTDOWN_GRACE' }, 0, MAX_TIMER_MS),
  budgets: {
    session: optionalLimit({ doc: 'Tool calls per session per window (null: none).', default: null, example: { points: 120, duration: '1m' } }),
    principal: optionalLimit({ doc: 'Tool calls per client or signed-in person per window, across sessions and replicas (null: none).', default: null, example: { points: 600, duration: '1h' } }),
    sessionTotal: optionalInt(1, 1_000_000_000, { doc: 'Tool calls over a session\'s whole life (null: none).', default: null, example: 5_000 }),
    concurrent: optionalInt(1, 100_000, { doc: 'Tool calls in flight at once per session (null: none).', default: null, example: 8 }),
    tools: records(toolBudgetShape, { doc: 'Budgets of particular tools, per client or person: a cheap read tool and a dear `send_email` can differ.', default: [], example: [{ tools: ['send_email'], points: 10, duration: '1h' }] }),
  },
  loopBreaker: {
    maxRepeats: optionalInt(2, 100_000, { doc: 'The same tool with the same arguments called more than this many times within `window` in one session is refused for `coolDown` (null: off; 5 is a good start).', default: null, example: 5 }),
    window: duration({ doc: 'Window of the loop breaker (1m recommended).', default: '1m' }, 1_000),
    coolDown: duration({ doc: 'How long a tripped call stays refused (5m recommended).', default: '5m' }, 1_000),
  },
  audit: {
    sinks: enumList(['file', 'stdout', 'redis'], { doc: 'Where the tamper-evident audit trail goes ([]: no trail).', default: [] }),
    file: optionalText({ doc: 'JSON Lines file of the `file` sink (rotated: file.1, file.2, ...).', default: null, example: '/var/log/mcp-warden/audit.jsonl' }),
    rotateBytes: int(4096, 1 << 30, { doc: 'Size at which the file rotates.', default: 104_857_600 }),
    keep: int(1, 1000, { doc: 'Rotated files kept.', default: 10 }),
    key: optionalText({ doc: 'HMAC key (at least 32 bytes) of argument digests, so equal arguments can be matched across the trail without being stored.', default: null, secret: true, example: null, env: 'MCP_WARDEN_AUDIT_KEY' }),
    keyFile: optionalText({ doc: 'Path of a file holding the audit HMAC key.', default: null, example: null, env: 'MCP_WARDEN_AUDIT_KEY_FILE' }),
    rawArguments: textList({ doc: 'Tools (names or globs) whose raw arguments are recorded too; for every other tool only the digest.', default: [] }),
    checkpointEvery: int(1, 1_000_000, { doc: 'A signed checkpoint after this many records.', default: 1_000 }),
    checkpointInterval: duration({ doc: '... or after this long with records since the last one.', default: '1m' }, 100),
    failClosed: bool({ doc: 'Refuse MCP requests (503) while the trail cannot be written, instead of counting what is lost.', default: false }),
    maxQueue: int(10, 10_000_000, { doc: 'Records waiting for their sink; past it records are dropped (or requests refused with failClosed).', default: 10_000 }),
  },
  log: {
    level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { doc: 'Log level.', default: 'info', env: 'MCP_WARDEN_LOG_LEVEL', flag: 'log-level' }),
    toolCalls: bool({ doc: 'Audit: a `tool.called` event for every allowed tools/call (principal, session hash, tool, argument digest, upstream status, duration).', default: false, env: 'MCP_WARDEN_LOG_TOOL_CALLS' }),
  },
};

/** The validated, typed, frozen configuration (durations in milliseconds). */
export type Config = Resolved<typeof schema>;
export type ClientConfig = Config['clients'][number];
export type IssuerConfig = Config['tokens']['trustedIssuers'][number];
