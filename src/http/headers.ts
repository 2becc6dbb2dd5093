import { isIP } from 'node:net';
import type { TrustProxy } from '../config/fields.js';

/** A parser's verdict on untrusted input. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: 'missing' | 'malformed' };

const MAX_TOKEN_LENGTH = 8192;
// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** Extracts the token of an `Authorization: Bearer` header (RFC 6750 §2.1). */
export function parseBearer(header: string | string[] | undefined): Parsed<string> {
  if (header === undefined || header === '') return { ok: false, reason: 'missing' };
  if (typeof header !== 'string' || header.length > MAX_TOKEN_LENGTH + 16) return { ok: false, reason: 'malformed' };
  const match = BEARER.exec(header);
  return match?.[1] ? { ok: true, value: match[1] } : { ok: false, reason: 'malformed' };
}

/**
 * The `Authorization` field as sent: its value, or every value when the client sent the line more
 * than once. Node keeps only the first repeated line in `req.headers`; a singleton field sent twice
 * is malformed (RFC 9110 §5.3), so the parsers must see both. Reads `rawHeaders` without copying.
 */
export function authorizationField(value: string | undefined, rawHeaders: readonly string[]): string | string[] | undefined {
  if (value === undefined) return undefined;
  let lines: string[] | null = null;
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    if (name.length === 13 && name.toLowerCase() === 'authorization') {
      count++;
      if (count === 2) lines = [value];
      if (count >= 2) lines?.push(rawHeaders[i + 1] ?? '');
    }
  }
  return lines ?? value;
}

/** Client credentials of an `Authorization: Basic` header, form-decoded as RFC 6749 §2.3.1 says. */
export function parseBasic(header: string | string[] | undefined): Parsed<{ id: string; secret: string }> {
  if (header === undefined || header === '') return { ok: false, reason: 'missing' };
  const match = typeof header === 'string' && header.length < 4096 ? /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header) : null;
  if (!match?.[1]) return { ok: false, reason: 'malformed' };
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return { ok: false, reason: 'malformed' };
  try {
    const plus = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));
    return { ok: true, value: { id: plus(decoded.slice(0, colon)), secret: plus(decoded.slice(colon + 1)) } };
  } catch {
    return { ok: false, reason: 'malformed' };
  }
}

/**
 * Checks an `Origin` header against the allow-list. An absent Origin (non-browser client) passes;
 * anything present and not listed, including `null` and garbage, is refused (MCP DNS-rebinding rule).
 */
export function isOriginAllowed(origin: string | string[] | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  return typeof origin === 'string' && allowed.has(origin);
}

function ipv4ToInt(address: string): number {
  return address.split('.').reduce((acc, part) => (acc << 8) + Number(part), 0) >>> 0;
}

function ipv6ToBigInt(address: string): bigint {
  // A zone id (fe80::1%eth0, RFC 4007) names a local interface, not address bits.
  const [head = '', tail = ''] = (address.split('%')[0] ?? '').split('::');
  const parts = (s: string): string[] => (s ? s.split(':') : []);
  let groups = [...parts(head)];
  let rest = parts(tail);
  const last = rest.length ? rest[rest.length - 1] : groups[groups.length - 1];
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  if (last && last.includes('.')) {
    const v4 = ipv4ToInt(last);
    const pair = [(v4 >>> 16).toString(16), (v4 & 0xffff).toString(16)];
    if (rest.length) rest = [...rest.slice(0, -1), ...pair];
    else groups = [...groups.slice(0, -1), ...pair];
  }
  const missing = 8 - groups.length - rest.length;
  const all = address.includes('::') ? [...groups, ...Array<string>(Math.max(0, missing)).fill('0'), ...rest] : groups;
  return all.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g || '0', 16) || 0), 0n);
}

/** The top `bits` of a 128-bit address; lengths outside 0-128 are clamped, so nothing here throws. */
function v6Mask(bits: number): bigint {
  const b = BigInt(Number.isFinite(bits) ? Math.min(128, Math.max(0, Math.trunc(bits))) : 128);
  return b === 0n ? 0n : ((1n << b) - 1n) << (128n - b);
}

/** Normalises `::ffff:1.2.3.4` to `1.2.3.4`, so one client has one address whichever stack it used. */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address.toLowerCase();
}

/** True when `address` is inside `cidr` (`10.0.0.0/8`, `fd00::/8`, or a single address). */
export function inCidr(address: string, cidr: string): boolean {
  const [network = '', bitsText, extra] = cidr.split('/');
  const family = isIP(network);
  const addr = normalizeAddress(address);
  if (family === 0 || isIP(addr) !== family || extra !== undefined) return false;
  const width = family === 4 ? 32 : 128;
  // A prefix length that is not 0-32 / 0-128 matches nothing (it never reaches BigInt or a shift).
  if (bitsText !== undefined && (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > width)) return false;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (family === 4) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return (ipv4ToInt(addr) & mask) === (ipv4ToInt(network) & mask);
  }
  const mask = v6Mask(bits);
  return (ipv6ToBigInt(addr) & mask) === (ipv6ToBigInt(network) & mask);
}

/** The first `bits` of an address as a string, for the optional address binding of sessions. */
export function addressPrefix(address: string, v4Bits: number, v6Bits: number): string {
  const addr = normalizeAddress(address);
  const family = isIP(addr);
  if (family === 4) return `${(ipv4ToInt(addr) & (v4Bits === 0 ? 0 : (~0 << (32 - v4Bits)) >>> 0)) >>> 0}/${v4Bits}`;
  if (family === 6) return `${(ipv6ToBigInt(addr) & v6Mask(v6Bits)).toString(16)}/${v6Bits}`;
  return addr;
}

/**
 * A failed-attempt key ({@link addressPrefix} with IPv4 /32 and IPv6 /64) as people write it:
 * `203.0.113.7/32`, `2001:db8:1:2::/64`.
 */
export function formatAddressPrefix(prefix: string): string {
  const match = /^([0-9a-f]+)\/(32|64)$/.exec(prefix);
  if (!match) return prefix;
  const [, value = '', bits = ''] = match;
  if (bits === '32') {
    const n = Number(value);
    return `${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}/${bits}`;
  }
  const hex = value.padStart(32, '0');
  const groups = hex.match(/.{4}/g) ?? [];
  return `${new URL(`http://[${groups.join(':')}]/`).hostname.replace(/^\[|\]$/g, '')}/${bits}`;
}

/**
 * The client's address: the socket peer, or an `X-Forwarded-For` entry as far as `trustProxy`
 * allows. Entries are read right to left (the nearest proxy appends last), and parsing stops at the
 * first hop that is not trusted, so a client cannot choose its address by sending the header.
 */
export function clientAddress(socketAddress: string, forwardedFor: string | string[] | undefined, trust: TrustProxy): string {
  const peer = normalizeAddress(socketAddress);
  if (trust.kind === 'none' || forwardedFor === undefined) return peer;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor;
  if (header.length > 4096) return peer;
  const hops = header.split(',').map((h) => normalizeAddress(h.trim()));
  if (hops.some((h) => isIP(h) === 0)) return peer;
  if (trust.kind === 'hops') return hops[Math.max(0, hops.length - trust.hops)] ?? peer;
  let current = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trust.cidrs.some((c) => inCidr(current, c))) return current;
    current = hops[i] ?? current;
  }
  return current;
}

/** Whether the request arrived over TLS, directly or as a trusted proxy reports. */
export function isSecure(encrypted: boolean, forwardedProto: string | string[] | undefined, peerTrusted: boolean): boolean {
  if (encrypted) return true;
  if (!peerTrusted || typeof forwardedProto !== 'string') return false;
  // A chain of proxies appends; the first value is what the client used.
  return forwardedProto.split(',')[0]?.trim().toLowerCase() === 'https';
}

/** Whether the socket peer is a proxy whose forwarding headers we believe. */
export function isTrustedPeer(socketAddress: string, trust: TrustProxy): boolean {
  if (trust.kind === 'none') return false;
  if (trust.kind === 'hops') return true;
  return trust.cidrs.some((c) => inCidr(socketAddress, c));
}
