import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, fetch } from 'undici';

/**
 * Fetching a URL that somebody else chose (a client's metadata document) without letting them
 * aim mcp-warden at the network behind it (SSRF): only public addresses are connected to, checked
 * on the address actually dialled (a DNS name that resolves to 127.0.0.1 is refused as surely as
 * the literal, and a rebinding answer between check and connect cannot slip through), redirects
 * are never followed, and the answer is bounded in size and time.
 */

// One list per family: Node matches an IPv4 address against IPv6 rules too (::ffff:0:0/96 would catch all of them).
const PRIVATE_V4 = new BlockList();
const PRIVATE_V6 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) PRIVATE_V4.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128], ['::1', 128], ['::ffff:0:0', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23],
  ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) PRIVATE_V6.addSubnet(net, bits, 'ipv6');

/** True for an address on the public internet: not private, loopback, link-local, reserved or multicast. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  // An IPv4-mapped IPv6 address is the IPv4 address it carries.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isPublicAddress(mapped[1] ?? '');
  return family === 4 ? !PRIVATE_V4.check(address, 'ipv4') : !PRIVATE_V6.check(address, 'ipv6');
}

export class OutboundRefused extends Error {
  readonly reason: 'address' | 'redirect' | 'status' | 'size' | 'timeout' | 'network';
  constructor(reason: OutboundRefused['reason']) {
    super(`outbound fetch refused: ${reason}`);
    this.reason = reason;
    this.name = 'OutboundRefused';
  }
}

export interface OutboundOptions {
  /** Connect to private, loopback and link-local addresses too (development, internal hosts). */
  readonly allowPrivate: boolean;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** Extra trusted CA certificates (PEM), on top of Node's. */
  readonly ca?: string;
}

export interface OutboundResponse {
  readonly body: Buffer;
  readonly headers: Headers;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `net.connect` lookup that resolves as usual, then keeps only public addresses. */
function publicLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const allowed = addresses.filter((a) => isPublicAddress(a.address));
    if (allowed.length === 0) return callback(Object.assign(new Error(`${hostname} has no public address`), { code: 'ESSRF' }), []);
    if (options.all) return callback(null, allowed);
    const first = allowed[0] as LookupAddress;
    callback(null, first.address, first.family);
  });
}

/** One guarded fetcher (its own connection pool); `get` throws {@link OutboundRefused}. */
export function createOutbound(options: OutboundOptions) {
  const agent = new Agent({
    connect: { ...(options.allowPrivate ? {} : { lookup: publicLookup }), ...(options.ca ? { ca: options.ca } : {}), timeout: options.timeoutMs },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    maxResponseSize: options.maxBytes,
  });

  return {
    async get(url: URL, accept: string): Promise<OutboundResponse> {
      // A literal address is dialled without any lookup, so it is checked here.
      const literal = url.hostname.replace(/^\[|\]$/g, '');
      if (!options.allowPrivate && isIP(literal) !== 0 && !isPublicAddress(literal)) throw new OutboundRefused('address');
      const signal = AbortSignal.timeout(options.timeoutMs);
      let res;
      try {
        res = await fetch(url, { dispatcher: agent, redirect: 'manual', signal, headers: { accept } });
      } catch (err) {
        throw new OutboundRefused(refusalOf(err, signal));
      }
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        throw new OutboundRefused('redirect');
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new OutboundRefused('status');
      }
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > options.maxBytes) {
        await res.body?.cancel();
        throw new OutboundRefused('size');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body ?? []) {
          size += (chunk as Uint8Array).byteLength;
          if (size > options.maxBytes) throw new OutboundRefused('size');
          chunks.push(Buffer.from(chunk as Uint8Array));
        }
      } catch (err) {
        throw err instanceof OutboundRefused ? err : new OutboundRefused(refusalOf(err, signal));
      }
      return { body: Buffer.concat(chunks), headers: res.headers };
    },
    close: () => agent.close(),
  };
}

export type Outbound = ReturnType<typeof createOutbound>;

function refusalOf(err: unknown, signal: AbortSignal): OutboundRefused['reason'] {
  if (signal.aborted) return 'timeout';
  const codes: unknown[] = [];
  for (let e: unknown = err; e instanceof Error && codes.length < 5; e = e.cause) codes.push((e as NodeJS.ErrnoException).code);
  if (codes.includes('ESSRF')) return 'address';
  if (codes.includes('UND_ERR_RES_EXCEEDED_MAX_SIZE')) return 'size';
  if (codes.some((c) => c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_BODY_TIMEOUT' || c === 'UND_ERR_CONNECT_TIMEOUT')) return 'timeout';
  return 'network';
}
