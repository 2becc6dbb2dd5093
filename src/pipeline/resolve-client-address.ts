import type { RequestContext } from '../context.js';
import { clientAddress } from '../http/headers.js';
import type { TrustProxy } from '../config/fields.js';

/** Stage 2: the client's address, from the socket, or from X-Forwarded-For as far as trustProxy allows. */
export function resolveClientAddress(deps: { readonly trustProxy: TrustProxy }) {
  return function resolveClientAddress(ctx: RequestContext): void {
    ctx.clientAddress = clientAddress(ctx.req.socket.remoteAddress ?? '', ctx.req.headers['x-forwarded-for'], deps.trustProxy);
  };
}
