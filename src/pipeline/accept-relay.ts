import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { RELAY_HEADER } from '../session/relay.js';
import type { Relay } from '../session/relay.js';

/**
 * Stage 2b (sidecar layout): a request another replica relayed here because this replica owns its
 * session. A header that verifies makes the relaying replica's view of the client address count
 * (blocks and limits stay per client address, not per pod); one that does not is an attack, since
 * no client ever needs to send it. Its refusal waits, like a token's, until the address's block is
 * read (refuse-unauthenticated sends it).
 */
export function acceptRelay(deps: { readonly relay: Pick<Relay, 'verify'> }) {
  return function acceptRelay(ctx: RequestContext): void {
    const presented = ctx.req.headers[RELAY_HEADER];
    if (presented === undefined) return;
    const sessionId = ctx.req.headers['mcp-session-id'];
    const from = typeof presented === 'string' && typeof sessionId === 'string' ? deps.relay.verify(presented, ctx.req.method ?? '', sessionId) : null;
    if (from === null) {
      ctx.authFailure = new WardenError('RELAY_REFUSED', { reason: 'forged' });
      return;
    }
    ctx.relayedFrom = from.replica;
    ctx.clientAddress = from.address;
  };
}
