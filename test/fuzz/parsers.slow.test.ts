/**
 * Hostile-input properties of the pure parsers (STYLE G6): every function that reads untrusted
 * bytes is fed arbitrary strings, unicode, control characters, huge and deeply nested input, and
 * must answer with a result, never an exception. Where a naive reference is easy to write, the
 * parser must agree with it. Seeds are fixed unless FUZZ_SEED moves them (test/fixtures/fuzz.ts): a
 * failure prints the seed and the counterexample.
 */
import t from 'tap';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { addressPrefix, clientAddress, inCidr, isOriginAllowed, isSecure, normalizeAddress, parseBasic, parseBearer } from '../../src/http/headers.js';
import { parseMessage, readBody } from '../../src/http/jsonrpc.js';
import { createSessionIds } from '../../src/session/session-id.js';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { validateConfig } from '../../src/config/validate.js';
import { forEachField } from '../../src/config/fields.js';
import type { TrustProxy } from '../../src/config/fields.js';
import { schema } from '../../src/config/schema.js';
import { readForm } from '../../src/oauth/client-auth.js';
import { WardenError } from '../../src/errors.js';
import type { RequestContext } from '../../src/context.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createKeyRing } from '../../src/auth/key-ring.js';
import { createTokenSigner, createTokenVerifier } from '../../src/auth/access-token.js';
import { anyCodeUnit, hostileString, mutate, tally } from '../fixtures/fuzz.js';

const fuzz = tally();
// About 10-15 s of CPU; the longer limit only keeps a heavily shared CI box from killing a run that
// is slow, not stuck.
t.setTimeout(300_000);
const started = performance.now();

// ---------------------------------------------------------------------------------------------
// Authorization: Bearer (RFC 6750 §2.1)

const TOKEN68 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/';
const MAX_BEARER_HEADER = 8192 + 16;

/** ASCII-only case folding, as a non-unicode /i regex does. */
const asciiLower = (s: string): string => s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));

/** Naive reference for parseBearer, written with loops instead of a regex. */
function referenceBearer(header: string | string[] | undefined): { ok: true; value: string } | { ok: false; reason: 'missing' | 'malformed' } {
  if (header === undefined || header === '') return { ok: false, reason: 'missing' };
  if (typeof header !== 'string' || header.length > MAX_BEARER_HEADER) return { ok: false, reason: 'malformed' };
  if (asciiLower(header.slice(0, 6)) !== 'bearer' || header[6] !== ' ') return { ok: false, reason: 'malformed' };
  let start = 6;
  while (header[start] === ' ') start++;
  let end = header.length;
  while (end > start && header[end - 1] === ' ') end--;
  const token = header.slice(start, end);
  let i = 0;
  while (i < token.length && TOKEN68.includes(token[i] ?? '')) i++;
  if (i === 0) return { ok: false, reason: 'malformed' };
  while (i < token.length && token[i] === '=') i++;
  return i === token.length ? { ok: true, value: token } : { ok: false, reason: 'malformed' };
}

const token68 = fc
  .tuple(fc.string({ unit: fc.constantFrom(...TOKEN68), minLength: 1, maxLength: 300 }), fc.integer({ min: 0, max: 3 }))
  .map(([body, pad]) => body + '='.repeat(pad));
const bearerScheme = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'bEaReR');
const spaces = (min: number) => fc.integer({ min, max: 4 }).map((n) => ' '.repeat(n));

/** Authorization values: valid, near-valid and garbage, so the reference is exercised on both sides. */
const authorizationValue = fc.oneof(
  hostileString(80),
  fc.tuple(bearerScheme, spaces(0), token68, spaces(0)).map((p) => p.join('')),
  fc.tuple(bearerScheme, spaces(1), token68).chain(([s, sp, tok]) => mutate(`${s}${sp}${tok}`)),
  fc.tuple(fc.constantFrom('Bearer ', 'Basic ', 'Bearer\t', 'Bearer  ', 'ſearer ', 'Beare\u212a '), hostileString(40)).map(([a, b]) => a + b),
);

t.test('parseBearer', async (t) => {
  await fuzz.check(t, 'parseBearer agrees with a naive RFC 6750 reference on arbitrary strings', fc.property(authorizationValue, (header) => {
    const got = parseBearer(header);
    const want = referenceBearer(header);
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`got ${JSON.stringify(got)}, reference ${JSON.stringify(want)}`);
  }), { seed: 0x6e01, numRuns: 12_000 });

  await fuzz.check(t, 'a valid token68 round-trips through any spacing and scheme case', fc.property(bearerScheme, spaces(1), token68, spaces(0), (scheme, before, token, after) => {
    const got = parseBearer(`${scheme}${before}${token}${after}`);
    return got.ok && got.value === token;
  }), { seed: 0x6e02, numRuns: 5_000 });

  await fuzz.check(t, 'several Authorization headers (an array) are always malformed', fc.property(fc.array(authorizationValue, { minLength: 0, maxLength: 4 }), (headers) => {
    const got = parseBearer(headers);
    return !got.ok && got.reason === 'malformed';
  }), { seed: 0x6e03, numRuns: 1_500 });

  t.test('table: the length cap is on the whole header (token 8192 + 16 for the scheme and spaces)', async (t) => {
    t.same(parseBearer(`Bearer ${'a'.repeat(8201)}`), { ok: true, value: 'a'.repeat(8201) }, '8208 characters pass');
    t.same(parseBearer(`Bearer ${'a'.repeat(8202)}`), { ok: false, reason: 'malformed' }, '8209 do not');
  });

  // "Bearer " + 8202 characters is past the cap.
  await fuzz.check(t, 'huge headers are malformed without scanning (no regex blow-up)', fc.property(fc.integer({ min: 8202, max: 200_000 }), fc.constantFrom('a', ' ', '=', '.', 'é'), (length, fill) => {
    const header = `Bearer ${fill.repeat(length)}`;
    const t0 = performance.now();
    const got = parseBearer(header);
    return !got.ok && got.reason === 'malformed' && performance.now() - t0 < 100;
  }), { seed: 0x6e04, numRuns: 300 });

  await fuzz.check(t, 'any control character, quote, comma or non-ASCII character inside the token is malformed', fc.property(token68, fc.nat(), fc.oneof(fc.integer({ min: 0, max: 0x1f }), fc.constantFrom(0x22, 0x2c, 0x3b, 0x5c, 0x7f), fc.integer({ min: 0x80, max: 0xffff })), (token, at, code) => {
    const i = at % (token.length + 1);
    const bad = token.slice(0, i) + String.fromCharCode(code) + token.slice(i);
    return !parseBearer(`Bearer ${bad}`).ok;
  }), { seed: 0x6e05, numRuns: 5_000 });
});

// ---------------------------------------------------------------------------------------------
// Authorization: Basic (RFC 6749 §2.3.1)

/** RFC 6749 Appendix B: application/x-www-form-urlencoded, as a client encodes its id and secret. */
const formEncode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
const wellFormedText = (min: number) => fc.string({ unit: 'grapheme', minLength: min, maxLength: 40 });

t.test('parseBasic', async (t) => {
  await fuzz.check(t, 'never throws; ok means a non-empty id and a decoded secret', fc.property(fc.oneof(authorizationValue, hostileString(80).map((s) => `Basic ${s}`)), (header) => {
    const got = parseBasic(header);
    if (!got.ok) return got.reason === 'malformed' || (got.reason === 'missing' && header === '');
    return got.value.id.length > 0 && typeof got.value.secret === 'string';
  }), { seed: 0xba01, numRuns: 8_000 });

  await fuzz.check(t, 'form-encoded credentials round-trip (any unicode, colons and plus signs in the secret)', fc.property(wellFormedText(1), wellFormedText(0), fc.constantFrom('Basic ', 'basic ', 'BASIC  '), (id, secret, scheme) => {
    const header = `${scheme}${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;
    const got = parseBasic(header);
    return got.ok && got.value.id === id && got.value.secret === secret;
  }), { seed: 0xba02, numRuns: 5_000 });

  await fuzz.check(t, 'random base64 payloads never throw; ok only when the decoded text has a colon after a non-empty id', fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
    const got = parseBasic(`Basic ${Buffer.from(bytes).toString('base64')}`);
    const decoded = Buffer.from(bytes).toString('utf8');
    return !got.ok || decoded.indexOf(':') >= 1;
  }), { seed: 0xba03, numRuns: 5_000 });

  await fuzz.check(t, 'arrays are malformed; so is any header of 4096 characters or more, however valid', fc.property(fc.oneof(fc.array(fc.string(), { maxLength: 3 }), fc.integer({ min: 2_900, max: 40_000 }).map((n) => `Basic ${Buffer.from(`a:${'b'.repeat(n)}`).toString('base64')}`)), (header) => {
    const got = parseBasic(header);
    if (Array.isArray(header)) return !got.ok && got.reason === 'malformed';
    return got.ok === header.length < 4096;
  }), { seed: 0xba04, numRuns: 500 });
});

// ---------------------------------------------------------------------------------------------
// Mcp-Session-Id: mint and check

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const ids = createSessionIds(new Uint8Array(32).fill(7));
const otherSecretIds = createSessionIds(new Uint8Array(32).fill(8));
const principal = fc.oneof(fc.constantFrom('alice', 'bob', 'https://idp.example|alice'), hostileString(40));

t.test('session ids', async (t) => {
  t.test('table: the canonical-encoding cases found by the mutation property', async (t) => {
    // Regression: 44 bytes in base64url leave 2 unused bits in the last character, so before the
    // fix 3 other last characters decoded to the same bytes and check() accepted ids it never minted.
    const minted = ids.mint('alice');
    const last = minted.id.at(-1) ?? '';
    const variants = [...B64URL].filter((c) => c !== last).map((c) => minted.id.slice(0, -1) + c);
    t.equal(variants.filter((v) => ids.check(v, 'alice') !== null).length, 0, 'no other last character is accepted');
    t.equal(ids.check(minted.id, 'alice'), minted.key, 'the minted id itself is');
    for (const bad of ['', ' ', minted.id + '=', `${minted.id} `, ` ${minted.id}`, minted.id.toLowerCase(), minted.id.replace(/[-_]/g, '+'), `${minted.id.slice(0, 58)}\0`, minted.id.slice(1)]) {
      if (bad !== minted.id) t.equal(ids.check(bad, 'alice'), null, JSON.stringify(bad));
    }
  });

  await fuzz.check(t, 'mint: 59 visible ASCII characters (0x21-0x7E) that check accepts for the same principal only', fc.property(principal, principal, (p, q) => {
    const minted = ids.mint(p);
    if (minted.id.length !== 59 || !/^[\x21-\x7e]{59}$/.test(minted.id)) return false;
    if (ids.check(minted.id, p) !== minted.key) return false;
    return p === q || ids.check(minted.id, q) === null;
  }), { seed: 0x5e01, numRuns: 3_000 });

  await fuzz.check(t, 'check refuses arbitrary strings', fc.property(hostileString(80), principal, (id, p) => ids.check(id, p) === null), { seed: 0x5e02, numRuns: 8_000 });

  await fuzz.check(t, 'check refuses well-shaped random ids (59 base64url characters)', fc.property(fc.string({ unit: fc.constantFrom(...B64URL), minLength: 59, maxLength: 59 }), principal, (id, p) => ids.check(id, p) === null), { seed: 0x5e03, numRuns: 5_000 });

  await fuzz.check(t, 'check refuses a minted id with one character changed (any position, any character)', fc.property(principal, fc.nat(58), fc.oneof(fc.constantFrom(...B64URL), anyCodeUnit), (p, at, ch) => {
    const minted = ids.mint(p);
    if (minted.id[at] === ch) return true; // not a change
    const changed = minted.id.slice(0, at) + ch + minted.id.slice(at + 1);
    return ids.check(changed, p) === null;
  }), { seed: 0x5e04, numRuns: 10_000 });

  await fuzz.check(t, 'check refuses ids minted for another principal or under another secret', fc.property(principal, principal, (p, q) => {
    const theirs = ids.mint(q);
    const otherSecret = otherSecretIds.mint(p);
    return (p === q || ids.check(theirs.id, p) === null) && ids.check(otherSecret.id, p) === null;
  }), { seed: 0x5e05, numRuns: 3_000 });

  await fuzz.check(t, 'check refuses other lengths (truncated, extended, doubled)', fc.property(principal, fc.integer({ min: -58, max: 200 }).filter((n) => n !== 0), fc.constantFrom(...B64URL), (p, delta, fill) => {
    const minted = ids.mint(p);
    const other = delta < 0 ? minted.id.slice(0, delta) : minted.id + fill.repeat(delta);
    return ids.check(other, p) === null && ids.check(minted.id + minted.id, p) === null;
  }), { seed: 0x5e06, numRuns: 2_000 });
});

// ---------------------------------------------------------------------------------------------
// Origin allow-list

const origin = fc.oneof(fc.webUrl().map((u) => new URL(u).origin), fc.constantFrom('null', 'https://app.example', 'http://localhost:6274'), hostileString(40));

t.test('isOriginAllowed', async (t) => {
  await fuzz.check(t, 'only exact allow-list members pass; absent passes; arrays never', fc.property(fc.array(origin, { maxLength: 4 }), fc.oneof(origin, fc.constant(undefined), fc.array(origin, { maxLength: 3 })), (list, presented) => {
    const allowed = new Set(list);
    const got = isOriginAllowed(presented, allowed);
    if (presented === undefined) return got;
    if (Array.isArray(presented)) return !got;
    return got === list.includes(presented);
  }), { seed: 0x0a01, numRuns: 5_000 });

  await fuzz.check(t, 'near misses of an allowed origin are refused (case, slash, port, whitespace, path, userinfo)', fc.property(fc.webUrl().map((u) => new URL(u).origin), fc.nat(7), (allowedOrigin, how) => {
    const variants = [
      allowedOrigin.toUpperCase(), `${allowedOrigin}/`, `${allowedOrigin}:443`, ` ${allowedOrigin}`, `${allowedOrigin} `,
      `${allowedOrigin}/path`, allowedOrigin.replace('://', '://user@'), `${allowedOrigin}.evil.example`,
    ];
    const presented = variants[how] ?? '';
    return presented === allowedOrigin || !isOriginAllowed(presented, new Set([allowedOrigin]));
  }), { seed: 0x0a02, numRuns: 3_000 });
});

// ---------------------------------------------------------------------------------------------
// X-Forwarded-For, inCidr, addressPrefix

const zone = fc.string({ unit: fc.constantFrom(...'0123456789abcdefghijklmnopqrstuvwxyzAZ-.:'), minLength: 1, maxLength: 12 });
const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const address = fc.oneof(
  { weight: 4, arbitrary: ipv4 },
  { weight: 4, arbitrary: ipv6 },
  { weight: 2, arbitrary: ipv4.map((a) => `::ffff:${a}`) },
  { weight: 1, arbitrary: ipv4.map((a) => `::FFFF:${a}`) },
  // RFC 4007 zone ids: Node's isIP accepts them, so they reach every consumer of an address.
  { weight: 2, arbitrary: fc.tuple(ipv6, zone).map(([a, z]) => `${a}%${z}`) },
);
const hop = fc.oneof({ weight: 6, arbitrary: address }, { weight: 1, arbitrary: hostileString(20) }, { weight: 1, arbitrary: fc.constantFrom('', 'unknown', '_hidden', '1.2.3.4:80', '[::1]', '01.2.3.4', '1.2.3', '::ffff:1.2.3.4.5') });
const forwardedFor = fc.oneof(
  fc.array(hop, { minLength: 1, maxLength: 6 }).chain((hops) => fc.constantFrom(', ', ',', ' , ', ',\t').map((sep) => hops.join(sep))),
  fc.array(fc.array(hop, { minLength: 1, maxLength: 3 }).map((h) => h.join(', ')), { minLength: 1, maxLength: 3 }),
  hostileString(60),
  fc.integer({ min: 4000, max: 6000 }).map((n) => `1.2.3.4,${' '.repeat(n)}`),
);
const cidr = fc.oneof(
  ipv4.chain((a) => fc.integer({ min: 0, max: 32 }).map((b) => `${a}/${b}`)),
  ipv6.chain((a) => fc.integer({ min: 0, max: 128 }).map((b) => `${a}/${b}`)),
  address,
);
const trust: fc.Arbitrary<TrustProxy> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.integer({ min: 1, max: 32 }).map((hops) => ({ kind: 'hops' as const, hops })),
  fc.array(cidr, { minLength: 1, maxLength: 4 }).map((cidrs) => ({ kind: 'cidrs' as const, cidrs })),
);

/** Everything downstream does with a client address; none of it may throw. */
function useAddress(a: string): void {
  addressPrefix(a, 32, 64);
  addressPrefix(a, 24, 48);
  inCidr(a, '10.0.0.0/8');
  inCidr(a, 'fd00::/8');
}

t.test('clientAddress (X-Forwarded-For) under every trustProxy mode', async (t) => {
  await fuzz.check(t, 'never throws, always an IP, always the peer or one of the listed hops; what it returns is usable downstream', fc.property(address, fc.oneof(forwardedFor, fc.constant(undefined)), trust, (peer, header, mode) => {
    const got = clientAddress(peer, header, mode);
    const hops = header === undefined ? [] : (Array.isArray(header) ? header.join(',') : header).split(',').map((h) => normalizeAddress(h.trim()));
    if (isIP(got) === 0) throw new Error(`not an IP: ${JSON.stringify(got)}`);
    if (got !== normalizeAddress(peer) && !hops.includes(got)) throw new Error(`${got} is neither the peer nor a hop`);
    useAddress(got);
  }), { seed: 0xf001, numRuns: 8_000 });

  await fuzz.check(t, 'trust off: always the socket address, whatever the header', fc.property(address, fc.oneof(forwardedFor, fc.constant(undefined)), (peer, header) => clientAddress(peer, header, { kind: 'none' }) === normalizeAddress(peer)), { seed: 0xf002, numRuns: 3_000 });

  await fuzz.check(t, 'trust N hops: the Nth address from the right (the leftmost when fewer)', fc.property(address, fc.array(address, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 32 }), (peer, hops, n) => {
    const got = clientAddress(peer, hops.join(', '), { kind: 'hops', hops: n });
    return got === normalizeAddress(hops[Math.max(0, hops.length - n)] ?? '');
  }), { seed: 0xf003, numRuns: 3_000 });

  await fuzz.check(t, 'trust CIDRs: walking from the peer leftwards, the first untrusted address (or the leftmost)', fc.property(address, fc.array(address, { minLength: 1, maxLength: 6 }), fc.array(cidr, { minLength: 1, maxLength: 3 }), (peer, hops, cidrs) => {
    const trusted = (a: string): boolean => cidrs.some((c) => inCidr(a, c));
    const chain = [peer, ...[...hops].reverse()].map(normalizeAddress);
    const want = chain.find((a) => !trusted(a)) ?? chain[chain.length - 1];
    return clientAddress(peer, hops.join(','), { kind: 'cidrs', cidrs }) === want;
  }), { seed: 0xf004, numRuns: 3_000 });

  await fuzz.check(t, 'an untrusted peer\'s header is ignored', fc.property(ipv4, forwardedFor, (peer, header) => clientAddress(peer, header, { kind: 'cidrs', cidrs: ['203.0.113.0/24'] }) === peer || peer.startsWith('203.0.113.')), { seed: 0xf005, numRuns: 2_000 });
});

/** IPv4 as 32 bits, by string arithmetic. */
const v4Bits = (a: string): string => a.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');

/** IPv6 as 128 bits, through the WHATWG URL parser's canonical form (an independent parser). */
function v6Bits(a: string): string {
  const host = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  const [head = '', tail] = host.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('');
}

const badBits = fc.oneof(fc.constantFrom('', 'abc', '1.5', '-1', '+8', '0x10', '33', '129', '999', '99999999999', '1e3', ' 8', '8 ', '8/8', 'Infinity', 'NaN'), fc.string({ maxLength: 6 }));

t.test('inCidr and addressPrefix', async (t) => {
  t.test('table: hostile inputs that used to throw', async (t) => {
    // Regression: a zone id such as "%zz:q" made ipv6ToBigInt call BigInt(NaN) (TypeError/RangeError),
    // which reached the request path through X-Forwarded-For and answered 500.
    for (const a of ['fe80::1%zz:q', '1::%x', 'fe80::%:::::q', 'fe80::1%eth0', '::1%a.b']) {
      t.doesNotThrow(() => addressPrefix(a, 32, 64), `addressPrefix ${a}`);
      t.doesNotThrow(() => inCidr(a, 'fe80::/10'), `inCidr ${a}`);
    }
    t.equal(addressPrefix('fe80::1%zz:q', 32, 64), addressPrefix('fe80::1', 32, 64), 'the zone does not change the prefix');
    t.ok(inCidr('fe80::1%eth0', 'fe80::/10'));
    // Regression: prefix lengths that are not 0-32 / 0-128 made BigInt() throw (or allocate 2^40 bits).
    for (const c of ['::/abc', '::/1.5', '::/99999999999', '::/-1', '::/129', '10.0.0.0/33', '10.0.0.0/abc', '10.0.0.0/8/8']) {
      t.equal(inCidr('::1', c) || inCidr('10.1.2.3', c), false, `${c} matches nothing`);
    }
  });

  await fuzz.check(t, 'never throw on arbitrary addresses, networks and prefix lengths', fc.property(fc.oneof(address, hostileString(40)), fc.oneof(cidr, hostileString(40), fc.tuple(fc.oneof(ipv4, ipv6), badBits).map(([a, b]) => `${a}/${b}`)), fc.oneof(fc.integer({ min: 0, max: 32 }), fc.integer(), fc.double()), fc.oneof(fc.integer({ min: 0, max: 128 }), fc.integer(), fc.double()), (a, c, b4, b6) => {
    inCidr(a, c);
    addressPrefix(a, b4, b6);
  }), { seed: 0xc101, numRuns: 8_000 });

  await fuzz.check(t, 'IPv4: inCidr agrees with a bit-string reference', fc.property(ipv4, ipv4, fc.integer({ min: 0, max: 32 }), (a, n, bits) => inCidr(a, `${n}/${bits}`) === (v4Bits(a).slice(0, bits) === v4Bits(n).slice(0, bits))), { seed: 0xc102, numRuns: 8_000 });

  await fuzz.check(t, 'IPv4: near addresses (same first octets) agree with the reference too', fc.property(ipv4, fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 32 }), (n, octet, which, bits) => {
    const parts = n.split('.');
    parts[which] = String(octet);
    const a = parts.join('.');
    return inCidr(a, `${n}/${bits}`) === (v4Bits(a).slice(0, bits) === v4Bits(n).slice(0, bits)) && inCidr(a, n) === (a === n);
  }), { seed: 0xc103, numRuns: 4_000 });

  await fuzz.check(t, 'IPv6: inCidr agrees with a reference built on the WHATWG URL parser', fc.property(ipv6, ipv6, fc.integer({ min: 0, max: 128 }), (a, n, bits) => {
    // A dotted ::ffff:a.b.c.d is treated as the IPv4 client it is, so it never matches an IPv6 network.
    const want = isIP(normalizeAddress(a)) === 6 && v6Bits(a).slice(0, bits) === v6Bits(n).slice(0, bits);
    return inCidr(a, `${n}/${bits}`) === want;
  }), { seed: 0xc104, numRuns: 4_000 });

  await fuzz.check(t, 'IPv4-mapped IPv6 (::ffff:a.b.c.d) matches exactly like the IPv4 address', fc.property(ipv4, ipv4, fc.integer({ min: 0, max: 32 }), (a, n, bits) => inCidr(`::ffff:${a}`, `${n}/${bits}`) === inCidr(a, `${n}/${bits}`)), { seed: 0xc105, numRuns: 2_000 });

  await fuzz.check(t, 'addressPrefix: two IPv4 addresses share a prefix exactly when their first bits agree', fc.property(ipv4, ipv4, fc.integer({ min: 0, max: 32 }), (a, b, bits) => (addressPrefix(a, bits, 64) === addressPrefix(b, bits, 64)) === (v4Bits(a).slice(0, bits) === v4Bits(b).slice(0, bits))), { seed: 0xc106, numRuns: 4_000 });

  await fuzz.check(t, 'addressPrefix: the same for IPv6 (non-mapped)', fc.property(ipv6, ipv6, fc.integer({ min: 0, max: 128 }), (a, b, bits) => {
    if (isIP(normalizeAddress(a)) !== 6 || isIP(normalizeAddress(b)) !== 6) return true;
    return (addressPrefix(a, 32, bits) === addressPrefix(b, 32, bits)) === (v6Bits(a).slice(0, bits) === v6Bits(b).slice(0, bits));
  }), { seed: 0xc107, numRuns: 3_000 });
});

t.test('isSecure', async (t) => {
  await fuzz.check(t, 'https only from TLS or from a trusted peer whose first X-Forwarded-Proto is https', fc.property(fc.boolean(), fc.oneof(fc.constant(undefined), fc.constantFrom('https', 'HTTPS', 'http', 'https, http', 'http, https', ' https ', 'https,', ''), hostileString(20), fc.array(fc.constantFrom('https', 'http'), { maxLength: 3 })), fc.boolean(), (encrypted, proto, trusted) => {
    const got = isSecure(encrypted, proto, trusted);
    if (encrypted) return got;
    const want = trusted && typeof proto === 'string' && asciiLower(proto.split(',')[0]?.trim() ?? '') === 'https';
    return got === want;
  }), { seed: 0x5ec1, numRuns: 3_000 });
});

// ---------------------------------------------------------------------------------------------
// JSON-RPC bodies

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const echoable = (id: unknown): string | number | null => (typeof id === 'number' && Number.isSafeInteger(id)) || (typeof id === 'string' && id.length <= 128) ? (id as string | number) : null;

type Head = { ok: true; value: { id: string | number | null; method: string | null; isInitialize: boolean; isBatch: boolean } } | { ok: false; reason: 'json' | 'shape' | 'initialize_without_id' };

/** The classification half of parseMessage (its calls are checked by test/http/jsonrpc.test.ts). */
function peekMessage(body: Buffer): Head {
  const got = parseMessage(body);
  if (!got.ok) return got;
  const { id, method, isInitialize, isBatch } = got.value;
  return { ok: true, value: { id, method, isInitialize, isBatch } };
}

/** Reference classification of a parsed body (MCP 2025-03-26 batches; initialize never in one). */
function referencePeek(value: unknown): Head {
  if (Array.isArray(value)) {
    if (value.length === 0 || !value.every(isObject) || value.some((m) => m.method === 'initialize')) return { ok: false, reason: 'shape' };
    return { ok: true, value: { id: null, method: null, isInitialize: false, isBatch: true } };
  }
  if (!isObject(value)) return { ok: false, reason: 'shape' };
  const method = typeof value.method === 'string' ? value.method : null;
  if (method === 'initialize' && (value.id === undefined || value.id === null)) return { ok: false, reason: 'initialize_without_id' };
  return { ok: true, value: { id: echoable(value.id), method, isInitialize: method === 'initialize', isBatch: false } };
}

const rpcId = fc.oneof(
  fc.integer(), fc.maxSafeInteger(), fc.double(), fc.string({ maxLength: 300 }), fc.constant(null), fc.boolean(),
  fc.constantFrom(2 ** 53, -(2 ** 53), 2 ** 53 - 1, 1e308, -0, 0.5), fc.jsonValue({ maxDepth: 2 }),
);
const rpcMethod = fc.oneof(fc.constantFrom('initialize', 'tools/list', 'tools/call', 'notifications/initialized', 'ping', 'Initialize', 'initialize ', ' initialize'), fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 1 }));
const rpcMessage = fc.record({ jsonrpc: fc.oneof(fc.constant('2.0'), fc.jsonValue({ maxDepth: 1 })), id: rpcId, method: rpcMethod, params: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: [] });

function deepBody(kind: 'array' | 'object' | 'params' | 'unbalanced' | 'batch', depth: number): string {
  switch (kind) {
    case 'array':
      return '['.repeat(depth) + ']'.repeat(depth);
    case 'object':
      return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    case 'params':
      return `{"jsonrpc":"2.0","id":1,"method":"initialize","params":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    case 'unbalanced':
      return '['.repeat(depth);
    case 'batch':
      return `[{"jsonrpc":"2.0","id":1,"method":"ping","params":${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}}]`;
    default: {
      const never: never = kind;
      return never;
    }
  }
}

t.test('parseMessage: classification', async (t) => {
  t.test('table of hostile bodies', async (t) => {
    const cases: [string, string | Buffer, Head][] = [
      ['empty', '', { ok: false, reason: 'json' }],
      ['truncated', '{"jsonrpc":"2.0"', { ok: false, reason: 'json' }],
      ['BOM', '\ufeff{}', { ok: false, reason: 'json' }],
      ['NUL', '\0', { ok: false, reason: 'json' }],
      ['invalid UTF-8 inside a string is replaced, not fatal', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { ok: true, value: { id: null, method: null, isInitialize: false, isBatch: false } }],
      ['null', 'null', { ok: false, reason: 'shape' }],
      ['number', '1', { ok: false, reason: 'shape' }],
      ['string', '"initialize"', { ok: false, reason: 'shape' }],
      ['empty batch', '[]', { ok: false, reason: 'shape' }],
      ['batch of non-objects', '[1,2]', { ok: false, reason: 'shape' }],
      ['batch with an array', '[{},[]]', { ok: false, reason: 'shape' }],
      ['batch of objects', '[{}]', { ok: true, value: { id: null, method: null, isInitialize: false, isBatch: true } }],
      ['initialize alone in a batch', '[{"jsonrpc":"2.0","id":1,"method":"initialize"}]', { ok: false, reason: 'shape' }],
      ['initialize last in a batch', '[{"method":"ping","id":1},{"method":"tools/list","id":2},{"method":"initialize","id":3}]', { ok: false, reason: 'shape' }],
      ['initialize', '{"jsonrpc":"2.0","id":1,"method":"initialize"}', { ok: true, value: { id: 1, method: 'initialize', isInitialize: true, isBatch: false } }],
      ['initialize as a notification (no id)', '{"jsonrpc":"2.0","method":"initialize","params":{}}', { ok: false, reason: 'initialize_without_id' }],
      ['initialize with a null id', '{"jsonrpc":"2.0","id":null,"method":"initialize"}', { ok: false, reason: 'initialize_without_id' }],
      ['duplicate method: the last wins, as the upstream parses it', '{"method":"initialize","method":"tools/list","id":1}', { ok: true, value: { id: 1, method: 'tools/list', isInitialize: false, isBatch: false } }],
      ['__proto__ does not smuggle a method', '{"__proto__":{"method":"initialize"},"id":1}', { ok: true, value: { id: 1, method: null, isInitialize: false, isBatch: false } }],
      ['unsafe integer id', '{"id":9007199254740993,"method":"x"}', { ok: true, value: { id: null, method: 'x', isInitialize: false, isBatch: false } }],
      ['huge number id', `{"id":${'9'.repeat(400)},"method":"x"}`, { ok: true, value: { id: null, method: 'x', isInitialize: false, isBatch: false } }],
      ['1e400 id (Infinity)', '{"id":1e400,"method":"x"}', { ok: true, value: { id: null, method: 'x', isInitialize: false, isBatch: false } }],
      ['fractional id', '{"id":1.5,"method":"x"}', { ok: true, value: { id: null, method: 'x', isInitialize: false, isBatch: false } }],
      ['128-char id', `{"id":"${'a'.repeat(128)}"}`, { ok: true, value: { id: 'a'.repeat(128), method: null, isInitialize: false, isBatch: false } }],
      ['129-char id', `{"id":"${'a'.repeat(129)}"}`, { ok: true, value: { id: null, method: null, isInitialize: false, isBatch: false } }],
      ['object id', '{"id":{"a":1},"method":"x"}', { ok: true, value: { id: null, method: 'x', isInitialize: false, isBatch: false } }],
      ['100k nested arrays', deepBody('array', 100_000), { ok: false, reason: 'shape' }],
      ['1M nested arrays', deepBody('array', 1_000_000), { ok: false, reason: 'shape' }],
      ['100k nested objects', deepBody('object', 100_000), { ok: true, value: { id: null, method: null, isInitialize: false, isBatch: false } }],
      ['initialize with 100k nested params', deepBody('params', 100_000), { ok: true, value: { id: 1, method: 'initialize', isInitialize: true, isBatch: false } }],
      ['100k unclosed arrays', deepBody('unbalanced', 100_000), { ok: false, reason: 'json' }],
    ];
    for (const [name, body, want] of cases) {
      let got: Head | Error;
      try {
        got = peekMessage(Buffer.isBuffer(body) ? body : Buffer.from(body));
      } catch (err) {
        got = err as Error;
      }
      t.same(got, want, name);
    }
  });

  await fuzz.check(t, 'arbitrary bytes: never throws; not JSON is "json", JSON follows the reference', fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), hostileString(100).map((s) => Buffer.from(s))), (bytes) => {
    const body = Buffer.from(bytes);
    const got = peekMessage(body);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return !got.ok && got.reason === 'json';
    }
    return JSON.stringify(got) === JSON.stringify(referencePeek(parsed));
  }), { seed: 0x1501, numRuns: 8_000 });

  await fuzz.check(t, 'arbitrary JSON values follow the reference', fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), rpcMessage, fc.array(rpcMessage, { maxLength: 4 })), (value) => {
    const text = JSON.stringify(value) ?? 'null';
    return JSON.stringify(peekMessage(Buffer.from(text))) === JSON.stringify(referencePeek(JSON.parse(text)));
  }), { seed: 0x1502, numRuns: 6_000 });

  await fuzz.check(t, 'the echoed id is null unless a safe integer or a string of at most 128 characters', fc.property(rpcMessage, (message) => {
    const text = JSON.stringify(message);
    // What was sent, not what was generated: JSON has no Infinity or NaN, they go out as null
    // (FUZZ_SEED=1689381302 found an initialize whose id Infinity was sent as null).
    const sent = JSON.parse(text) as typeof message;
    const got = peekMessage(Buffer.from(text));
    // The one refusal of a single object: an initialize without an id (a notification).
    if (!got.ok) return got.reason === 'initialize_without_id' && sent.method === 'initialize' && (sent.id === undefined || sent.id === null);
    const { id } = got.value;
    return id === null || (typeof id === 'number' && Number.isSafeInteger(id)) || (typeof id === 'string' && id.length <= 128);
  }), { seed: 0x1503, numRuns: 6_000 });

  await fuzz.check(t, 'ids written as raw number literals (huge, exponent, fraction, negative zero) are echoed only when safe integers', fc.property(fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 400 }), fc.tuple(fc.integer(), fc.integer({ min: -400, max: 400 })).map(([m, e]) => `${m}e${e}`), fc.constantFrom('-0', '0.0', '1.0', '-9007199254740991', '9007199254740992')), (literal) => {
    const got = peekMessage(Buffer.from(`{"jsonrpc":"2.0","id":${literal},"method":"ping"}`));
    const n = Number(literal);
    if (!got.ok) return /^0\d/.test(literal); // a leading zero is not JSON
    return got.value.id === (Number.isSafeInteger(n) ? n : null);
  }), { seed: 0x1504, numRuns: 3_000 });

  await fuzz.check(t, 'a batch containing initialize anywhere is refused', fc.property(fc.array(rpcMessage.filter(isObject), { maxLength: 5 }), fc.nat(), rpcId, (others, at, id) => {
    const batch: unknown[] = [...others];
    batch.splice(at % (batch.length + 1), 0, { jsonrpc: '2.0', id, method: 'initialize', params: {} });
    const got = peekMessage(Buffer.from(JSON.stringify(batch)));
    return !got.ok && got.reason === 'shape';
  }), { seed: 0x1505, numRuns: 3_000 });

  await fuzz.check(t, 'deep nesting (1k to 100k levels) neither throws nor overflows the stack', fc.property(fc.constantFrom('array', 'object', 'params', 'unbalanced', 'batch'), fc.integer({ min: 1_000, max: 100_000 }), (kind, depth) => {
    const got = peekMessage(Buffer.from(deepBody(kind, depth)));
    const want = { array: { ok: false }, object: { ok: true }, params: { ok: true }, unbalanced: { ok: false }, batch: { ok: true } }[kind];
    return got.ok === want.ok && (kind !== 'params' || (got.ok && got.value.isInitialize));
  }), { seed: 0x1506, numRuns: 40 });
});

t.test('readBody', async (t) => {
  const request = (chunks: Buffer[], contentLength: string | undefined): IncomingMessage =>
    Object.assign(Readable.from(chunks), { headers: contentLength === undefined ? {} : { 'content-length': contentLength } }) as unknown as IncomingMessage;

  await fuzz.check(t, 'returns exactly the bytes sent when within the cap; BODY_TOO_LARGE past it or when declared past it', fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 8 }), fc.integer({ min: 0, max: 2_000 }), fc.oneof(fc.constant(undefined), fc.nat(5_000).map(String), fc.constantFrom('abc', '-1', '1e9', '')), async (parts, cap, declared) => {
    const chunks = parts.map((p) => Buffer.from(p));
    const all = Buffer.concat(chunks);
    const tooLarge = Number(declared ?? 0) > cap || all.length > cap;
    try {
      const body = await readBody(request(chunks, declared), cap);
      return !tooLarge && body.equals(all);
    } catch (err) {
      return tooLarge && err instanceof WardenError && err.code === 'BODY_TOO_LARGE';
    }
  }), { seed: 0x1507, numRuns: 1_500 });
});

// ---------------------------------------------------------------------------------------------
// Token endpoint form (RFC 6749 §3.2)

t.test('readForm', async (t) => {
  const contentType = fc.oneof(fc.constantFrom('application/x-www-form-urlencoded', 'Application/X-WWW-Form-Urlencoded; charset=utf-8', ' application/x-www-form-urlencoded ;', 'application/json', 'multipart/form-data', 'text/plain', ''), hostileString(30), fc.constant(undefined));
  const param = fc.tuple(fc.oneof(fc.constantFrom('grant_type', 'client_id', 'client_secret', 'scope', 'resource', 'refresh_token'), hostileString(10)), fc.oneof(hostileString(30), fc.integer({ min: 4090, max: 4100 }).map((n) => 'x'.repeat(n))));
  const formBody = fc.oneof(
    fc.array(param, { maxLength: 6 }).map((ps) => ps.map(([k, v]) => `${encodeURIComponent(k.replace(/[\ud800-\udfff]/g, ''))}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, ''))}`).join('&')),
    hostileString(200),
    fc.integer({ min: 16_000, max: 17_000 }).map((n) => `a=${'b'.repeat(n)}`),
  );

  await fuzz.check(t, 'a Map of each parameter once, or OAUTH_INVALID_REQUEST; nothing else escapes', fc.asyncProperty(contentType, formBody, async (type, body) => {
    const req = Object.assign(Readable.from([Buffer.from(body)]), { headers: type === undefined ? {} : { 'content-type': type } });
    const ctx = { req } as unknown as RequestContext;
    const mediaType = String(type ?? '').split(';')[0]?.trim().toLowerCase();
    const params = [...new URLSearchParams(body)];
    const names = params.map(([k]) => k);
    const shouldRefuse = mediaType !== 'application/x-www-form-urlencoded' || Buffer.byteLength(body) > 16 * 1024 || new Set(names).size !== names.length || params.some(([, v]) => v.length > 4096);
    try {
      const form = await readForm(ctx);
      return !shouldRefuse && form.size === names.length && params.every(([k, v]) => form.get(k) === v);
    } catch (err) {
      return shouldRefuse && err instanceof WardenError && err.code === 'OAUTH_INVALID_REQUEST';
    }
  }), { seed: 0xf0f1, numRuns: 1_500 });
});

// ---------------------------------------------------------------------------------------------
// Access-token verifier

t.test('access-token verifier', async (t) => {
  const now = Date.UTC(2030, 0, 1);
  const clock = (): number => now;
  const store = createMemoryStore({ maxEntries: 10_000, clock });
  const SECRET = 'fuzz-signing-secret-0123456789abcdef';
  const keyRing = await createKeyRing({ store, algorithm: 'HS256', configuredSecret: SECRET, clock, refreshIntervalMs: 0 });
  t.teardown(async () => {
    keyRing.close();
    await store.close();
  });
  const ISSUER = 'http://127.0.0.1:8080';
  const AUDIENCE = 'http://127.0.0.1:8080/mcp';
  const sign = createTokenSigner({ keyRing, issuer: ISSUER, audience: AUDIENCE, accessTtlMs: 3_600_000, clock });
  const verify = createTokenVerifier({ keyRing, issuer: ISSUER, audience: AUDIENCE, clockSkewMs: 30_000, clock, external: null, cacheSize: 1_000 });
  const kid = keyRing.signingKey().kid;
  const valid = (await sign({ clientId: 'alice', scope: 'mcp', grantId: 'g1' })).token;
  t.equal((await verify(valid)).clientId, 'alice', 'a token the ring signed verifies');

  /** Resolves to 'accepted', or the refusal code; anything but a WardenError fails the property. */
  const outcome = async (token: string): Promise<string> => {
    try {
      await verify(token);
      return 'accepted';
    } catch (err) {
      if (!(err instanceof WardenError)) throw new Error(`not a WardenError: ${String(err)}`);
      return err.code;
    }
  };
  const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

  await fuzz.check(t, 'arbitrary strings are refused with TOKEN_INVALID', fc.asyncProperty(fc.oneof(hostileString(80), token68, fc.array(token68, { minLength: 2, maxLength: 4 }).map((p) => p.join('.'))), async (token) => (await outcome(token)) === 'TOKEN_INVALID'), { seed: 0x7a01, numRuns: 2_000 });

  const header = fc.record({ alg: fc.oneof(fc.constantFrom('none', 'None', 'NONE', 'HS256', 'HS384', 'HS512', 'RS256', 'ES256', 'EdDSA', ''), fc.string()), typ: fc.constantFrom('at+jwt', 'JWT', 'application/at+jwt', 'none'), kid: fc.oneof(fc.constant(kid), fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 1 })), crit: fc.constant(['exp']), jku: fc.webUrl() }, { requiredKeys: ['alg'] });
  const epoch = Math.floor(now / 1000);
  const payload = fc.record({
    iss: fc.oneof(fc.constant(ISSUER), fc.string()), aud: fc.oneof(fc.constant(AUDIENCE), fc.constant([AUDIENCE]), fc.string()), sub: fc.constantFrom('alice', 'bob'),
    client_id: fc.constantFrom('alice', 'bob'), gid: fc.string(), jti: fc.string(), scope: fc.constantFrom('mcp', 'mcp extra', ''),
    exp: fc.oneof(fc.constant(epoch + 3600), fc.integer(), fc.string()), iat: fc.oneof(fc.constant(epoch), fc.integer()), nbf: fc.integer(),
  }, { requiredKeys: [] });
  const forgedSignature = (input: string) => fc.oneof(fc.constant(''), fc.string({ unit: fc.constantFrom(...B64URL), maxLength: 86 }), fc.string({ minLength: 32, maxLength: 40 }).map((wrongKey) => createHmac('sha256', wrongKey).update(input).digest('base64url')));
  const forgery = fc.tuple(header, payload).chain(([h, p]) => {
    const input = `${b64(h)}.${b64(p)}`;
    return forgedSignature(input).map((signature) => `${input}.${signature}`);
  });

  await fuzz.check(t, 'JWT-shaped forgeries (alg none, wrong key, wrong kid, any claims) are refused', fc.asyncProperty(forgery, async (token) => (await outcome(token)) === 'TOKEN_INVALID'), { seed: 0x7a02, numRuns: 1_500 });

  await fuzz.check(t, 'signed tokens round-trip the client, scopes and grant', fc.asyncProperty(fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-._~'), minLength: 1, maxLength: 64 }), fc.array(fc.constantFrom('mcp', 'extra', 'read', 'write'), { minLength: 1, maxLength: 4 }), async (clientId, scopes) => {
    const token = (await sign({ clientId, scope: scopes.join(' '), grantId: 'g' })).token;
    const identity = await verify(token);
    return identity.clientId === clientId && identity.scopes.join(' ') === scopes.join(' ') && identity.grantId === 'g';
  }), { seed: 0x7a03, numRuns: 500 });

  await fuzz.check(t, 'a valid token with one character changed is refused, unless it is the same signature spelled differently', fc.asyncProperty(mutate(valid, fc.constantFrom(...TOKEN68, '=')), async (mutated) => {
    if (mutated === valid) return true;
    const result = await outcome(mutated);
    if (result === 'TOKEN_INVALID') return true;
    // jose decodes with atob, which ignores the unused low bits of the last character and accepts
    // "=" padding: those spellings carry the identical signature over the identical claims.
    const [h1, p1, s1 = ''] = valid.split('.');
    const [h2, p2, s2 = ''] = mutated.split('.');
    return h1 === h2 && p1 === p2 && Buffer.from(s1, 'base64url').equals(Buffer.from(s2.replace(/=+$/, ''), 'base64url'));
  }), { seed: 0x7a04, numRuns: 1_500 });
});

// ---------------------------------------------------------------------------------------------
// Durations and configuration

t.test('parseDuration', async (t) => {
  t.test('table', async (t) => {
    const cases: [unknown, number | null][] = [
      ['90s', 90_000], ['15m', 900_000], ['1h', 3_600_000], ['30d', 2_592_000_000], ['250ms', 250], [' 5s ', 5_000], [1500, 1500], ['1500', 1500],
      ['', null], ['5', 5], ['-5s', null], ['5 s', null], ['5S', null], ['1.5h', null], ['1e3', null], [-1, null], [1.5, null], [NaN, null], [Infinity, null],
      [null, null], [true, null], [{}, null], [['5s'], null], ['0x10', null], ['５s', null], ['\u0665s', null],
      // Regression: a unit multiplied past 2^53 gave an inexact number of milliseconds.
      ['999999999d', null], ['999999999h', 3_599_999_996_400_000], [Number.MAX_SAFE_INTEGER + 1, null],
    ];
    for (const [input, want] of cases) t.equal(parseDuration(input), want, JSON.stringify(input) ?? String(input));
  });

  await fuzz.check(t, 'never throws; null or a non-negative safe integer', fc.property(fc.oneof(fc.anything(), hostileString(20), fc.double(), fc.string({ unit: fc.constantFrom(...'0123456789msdh '), maxLength: 20 })), (value) => {
    const ms = parseDuration(value);
    return ms === null || (Number.isSafeInteger(ms) && ms >= 0);
  }), { seed: 0xd001, numRuns: 8_000 });

  await fuzz.check(t, 'N<unit> is N times the unit, or null when that is not an exact integer', fc.property(fc.integer({ min: 0, max: 999_999_999 }), fc.constantFrom<[string, number]>(['ms', 1], ['s', 1_000], ['m', 60_000], ['h', 3_600_000], ['d', 86_400_000]), (n, [unit, factor]) => {
    const want = n * factor;
    return parseDuration(`${n}${unit}`) === (Number.isSafeInteger(want) ? want : null);
  }), { seed: 0xd002, numRuns: 5_000 });

  await fuzz.check(t, 'formatDuration round-trips through parseDuration', fc.property(fc.oneof(fc.integer({ min: 0, max: 999_999_999 }), fc.integer({ min: 0, max: 10_000 }).map((n) => n * 60_000), fc.integer({ min: 0, max: 1000 }).map((n) => n * 86_400_000)), (ms) => parseDuration(formatDuration(ms)) === ms), { seed: 0xd003, numRuns: 5_000 });
});

/** A config exercising every area, including records (clients, issuers) with their nested objects. */
const BASE = {
  listen: { host: '127.0.0.1', port: 8080 },
  publicUrl: 'http://127.0.0.1:8080',
  mcpPath: '/mcp',
  upstreams: ['http://127.0.0.1:3000/mcp'],
  upstreamHeaders: { 'X-Upstream-Key': 'k' },
  identityHeaders: { clientId: 'X-MCP-Client-Id', scopes: 'X-MCP-Scopes' },
  store: { type: 'memory' },
  tokens: { secret: 'a-signing-secret-of-at-least-32-bytes!', accessTtl: '1h', trustedIssuers: [{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks', audience: 'mcp', types: ['at+jwt'], scopes: [] }] },
  clients: [{ id: 'agent-1', secret: 'a-client-secret-0123', scopes: ['mcp'], maxSessions: 5, rateLimit: { points: 600, duration: '1m' } }],
  sessions: { idleTimeout: '1h', maxLifetime: '24h', maxConcurrent: 5, onLimit: 'reject', bindTo: ['client'] },
  rateLimits: { client: { points: 600, duration: '1m' }, failedAttempts: { points: 20, duration: '1m', block: '5m' } },
  security: { requireSecureTransport: false, allowedOrigins: ['https://app.example'], trustProxy: ['10.0.0.0/8'], maxBodyBytes: 4_194_304 },
  tls: { certFile: null, keyFile: null },
  admin: { listen: null },
  health: { checkUpstream: false },
  log: { level: 'info' },
};
const clone = (): Record<string, unknown> => JSON.parse(JSON.stringify(BASE)) as Record<string, unknown>;
/** Objects that must refuse unknown keys, as a path of property names / indexes from the root. */
const GROUPS: (string | number)[][] = [
  [], ['listen'], ['identityHeaders'], ['store'], ['tokens'], ['tokens', 'trustedIssuers', 0], ['clients', 0], ['clients', 0, 'rateLimit'],
  ['sessions'], ['rateLimits'], ['rateLimits', 'client'], ['rateLimits', 'failedAttempts'], ['security'], ['tls'], ['admin'], ['health'], ['log'],
];
const LEAVES: string[] = [];
forEachField(schema, (path) => LEAVES.push(path));
LEAVES.push('clients[0].id', 'clients[0].secret', 'clients[0].scopes', 'clients[0].rateLimit', 'tokens.trustedIssuers[0].jwksUri', 'rateLimits.client.points', 'rateLimits.failedAttempts.block');

function at(root: Record<string, unknown>, path: (string | number)[]): Record<string, unknown> {
  return path.reduce<Record<string, unknown>>((node, key) => node[key] as Record<string, unknown>, root);
}
/** Sets `key` as an own enumerable property, even `__proto__`, as JSON.parse would. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
function setLeaf(root: Record<string, unknown>, leaf: string, value: unknown): void {
  const keys = leaf.split(/\.|\[(\d+)\]\.?/).filter((k) => k !== undefined && k !== '');
  const last = keys.pop() ?? '';
  let node = root;
  for (const key of keys) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  define(node, last, value);
}
const area = (path: string): string => path.split(/[.[]/)[0] ?? '';
const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 3 }), hostileString(30), fc.constantFrom(null, 0, -1, 1e12, '', '1h', '0s', 'redis', 'HS256', 'EdDSA', '/oauth', '/mcp', 'http://x', 'redis://x', 'x'.repeat(40), ['10.0.0.0/33']));
const keyName = fc.oneof(hostileString(12), fc.constantFrom('', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', ' listen', 'Listen', 'port ', 'listen.port', 'a\nb'));

function problemsAreWellFormed(result: ReturnType<typeof validateConfig>): boolean {
  if (result.ok) return Object.isFrozen(result.config) && Object.isFrozen(result.config.security) && Object.isFrozen(result.config.clients);
  return result.problems.length > 0 && result.problems.every((p) => typeof p.path === 'string' && p.path.length > 0 && typeof p.message === 'string' && p.message.length > 0);
}

t.test('validateConfig', async (t) => {
  t.ok(validateConfig(clone()).ok, 'the base config is valid (so every refusal below comes from the change)');

  t.test('table: unknown keys that produced an empty problem path', async (t) => {
    // Regression: a root key "" was reported with path "", which `config check` printed as ": is not a known key".
    const result = validateConfig(JSON.parse('{"":1}'));
    t.notOk(result.ok);
    t.ok(!result.ok && result.problems.every((p) => p.path.length > 0), JSON.stringify(!result.ok && result.problems));
  });

  await fuzz.check(t, 'arbitrary JSON values: never throws; ok and frozen, or problems with a path and a message', fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.dictionary(fc.constantFrom(...Object.keys(schema)), jsonish)), (raw) => problemsAreWellFormed(validateConfig(raw))), { seed: 0xc0f1, numRuns: 2_000 });

  await fuzz.check(t, 'one key changed to an arbitrary value: problems stay in that key\'s area', fc.property(fc.constantFrom(...LEAVES), jsonish, (leaf, value) => {
    const raw = clone();
    setLeaf(raw, leaf, value);
    const result = validateConfig(raw);
    return problemsAreWellFormed(result) && (result.ok || result.problems.every((p) => area(p.path) === area(leaf)));
  }), { seed: 0xc0f2, numRuns: 2_500 });

  await fuzz.check(t, 'an unknown key anywhere (upstreamHeaders is a map and excepted) is never ok and is named', fc.property(fc.constantFrom(...GROUPS), keyName, jsonish, (group, key, value) => {
    const raw = clone();
    const target = at(raw, group);
    if (Object.hasOwn(target, key)) return true; // a known key: not the case under test
    if (group.length === 0 && key === '$schema' && typeof value === 'string') return true; // the file's JSON Schema reference: accepted at the root
    define(target, key, value);
    const result = validateConfig(raw);
    return !result.ok && problemsAreWellFormed(result) && result.problems.some((p) => p.message.startsWith('is not a known key'));
  }), { seed: 0xc0f3, numRuns: 2_500 });
});

t.test('case total', async (t) => {
  t.comment(`parsers: ${fuzz.total} generated cases in ${Math.round(performance.now() - started)} ms`);
  t.ok(fuzz.total >= 90_000, `at least 90,000 cases in this file (ran ${fuzz.total})`);
});

