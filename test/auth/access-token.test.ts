/**
 * The token signer and verifier as units: RFC 9068 shape, clock skew on exp/nbf/iat, the verified
 * token cache never outliving the token, and the mapping of jose failures to refusal reasons.
 */
import t from 'tap';
import { errors } from 'jose';
import { createTokenSigner, createTokenVerifier, reasonOf } from '../../src/auth/access-token.js';
import { createKeyRing } from '../../src/auth/key-ring.js';
import { WardenError } from '../../src/errors.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { accessClaims, forge } from '../fixtures/tokens.js';

const SECRET = 'unit-signing-secret-0123456789abcdef';
const SITE = { url: 'https://mcp.example', mcpUrl: 'https://mcp.example/mcp' };

async function setup() {
  let now = Date.now();
  const clock = () => now;
  const store = createMemoryStore({ maxEntries: 1000, clock });
  const keyRing = await createKeyRing({ store, algorithm: 'HS256', configuredSecret: SECRET, clock, refreshIntervalMs: 0 });
  const common = { keyRing, issuer: SITE.url, audience: SITE.mcpUrl, clock };
  const verifier = createTokenVerifier({ ...common, clockSkewMs: 30_000, external: null, cacheSize: 2 });
  return {
    sign: createTokenSigner({ ...common, accessTtlMs: 60_000 }),
    // As a promise always, for t.resolves/t.rejects (a remembered token is answered synchronously).
    verify: async (token: string) => verifier(token),
    verifier,
    kid: keyRing.signingKey().kid,
    advance: (ms: number) => void (now += ms),
    nowSeconds: () => Math.floor(now / 1000),
  };
}

t.test('a signed token verifies into the identity it was made for', async (t) => {
  const { sign, verify } = await setup();
  const issued = await sign({ clientId: 'alice', scope: 'mcp extra', grantId: 'g1' });
  const identity = await verify(issued.token);
  t.match(identity, { clientId: 'alice', principal: 'alice', scopes: ['mcp', 'extra'], grantId: 'g1', jti: issued.jti, issuer: 'self' });
  t.equal(identity.expiresAtMs, issued.expiresAt);
});

t.test('the cache never serves a token past its expiry', async (t) => {
  const { sign, verify, advance } = await setup();
  const { token } = await sign({ clientId: 'alice', scope: 'mcp', grantId: 'g' });
  await verify(token);
  advance(60_000 + 29_000);
  await t.resolves(verify(token), 'within the skew');
  advance(2_000);
  await t.rejects(verify(token), { code: 'TOKEN_INVALID', detail: { reason: 'expired' } });
});

t.test('a token verified before is answered synchronously, and not once it expired', async (t) => {
  const { sign, verifier, advance } = await setup();
  const { token } = await sign({ clientId: 'alice', scope: 'mcp', grantId: 'g' });
  t.ok(verifier(token) instanceof Promise, 'first sight: the signature is checked');
  const first = await verifier(token);
  const again = verifier(token);
  t.notOk(again instanceof Promise, 'remembered: no promise, no microtask turn');
  t.equal(again, first);
  advance(60_000 + 31_000);
  const late = verifier(token);
  t.ok(late instanceof Promise, 'past exp + skew: checked again, not answered from memory');
  await t.rejects(Promise.resolve(late), { code: 'TOKEN_INVALID', detail: { reason: 'expired' } });
});

t.test('clock skew: tolerated within tokens.clockSkew, refused beyond it (exp, nbf, iat)', async (t) => {
  const { verify, kid, nowSeconds } = await setup();
  const key = new TextEncoder().encode(SECRET);
  const make = (claims: Record<string, unknown>) => forge({ key, alg: 'HS256', header: { kid }, claims: accessClaims(SITE, claims) });
  const n = nowSeconds();
  await t.resolves(verify(await make({ iat: n - 100, exp: n - 10 })), 'expired 10 s ago: within the skew');
  await t.rejects(verify(await make({ iat: n - 100, exp: n - 60 })), { code: 'TOKEN_INVALID', detail: { reason: 'expired' } });
  await t.resolves(verify(await make({ nbf: n + 10 })), 'nbf 10 s ahead');
  await t.rejects(verify(await make({ nbf: n + 60 })), { code: 'TOKEN_INVALID', detail: { reason: 'not_yet_valid' } });
  await t.resolves(verify(await make({ iat: n + 10, exp: n + 600 })), 'iat 10 s ahead');
  await t.rejects(verify(await make({ iat: n + 60, exp: n + 600 })), { code: 'TOKEN_INVALID', detail: { reason: 'not_yet_valid' } });
  await t.rejects(verify(await make({ scope: 42 })), { code: 'TOKEN_INVALID', detail: { reason: 'claims' } }, 'a scope that is not a string');
});

t.test('reasonOf maps jose failures to the closed set of reasons', async (t) => {
  const payload = { iss: 'x' };
  const table: [unknown, string][] = [
    [new errors.JWTExpired('x', payload), 'expired'],
    [new errors.JWTClaimValidationFailed('x', payload, 'nbf'), 'not_yet_valid'],
    [new errors.JWTClaimValidationFailed('x', payload, 'iat'), 'not_yet_valid'],
    [new errors.JWTClaimValidationFailed('x', payload, 'iss'), 'issuer'],
    [new errors.JWTClaimValidationFailed('x', payload, 'aud'), 'audience'],
    [new errors.JWTClaimValidationFailed('x', payload, 'typ'), 'type'],
    [new errors.JWTClaimValidationFailed('x', payload, 'gid'), 'claims'],
    [new errors.JWSSignatureVerificationFailed(), 'bad_signature'],
    [new errors.JOSEAlgNotAllowed('x'), 'algorithm'],
    [new errors.JOSENotSupported('x'), 'algorithm'],
    [new errors.JWKSNoMatchingKey(), 'unknown_key'],
    [new errors.JWKSTimeout(), 'issuer_unreachable'],
    [new errors.JWKSInvalid('x'), 'issuer_unreachable'],
    [new WardenError('TOKEN_INVALID', { reason: 'revoked' }), 'revoked'],
    [new WardenError('TOKEN_INVALID'), 'malformed'],
    [new Error('anything else'), 'malformed'],
  ];
  for (const [err, reason] of table) t.equal(reasonOf(err), reason, `${(err as Error).constructor.name} → ${reason}`);
});
