import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import type { Generation } from '../store/generation.js';
import { isMachineToken } from './load-state.js';

/**
 * Stage 5c: a token that is no longer good although its signature is: its jti or grant revoked,
 * issued before its client's cutoff, of a client that was removed, or issued by this proxy before
 * the store lost its data (it may have been revoked since: the store no longer knows). 401.
 */
export function refuseRevoked(deps: { readonly generation: Pick<Generation, 'epochMs'>; readonly skewMs: number }) {
  return function refuseRevoked(ctx: RequestContext): void {
    const identity = need(ctx.identity, 'ctx.identity');
    const state = need(ctx.state, 'ctx.state');
    const beforeLoss = identity.issuer === 'self' && identity.issuedAtMs + deps.skewMs < deps.generation.epochMs();
    // A token of a client that no longer exists is as good as revoked.
    const removed = isMachineToken(identity) && ctx.client === null;
    if (beforeLoss || removed || state.revoked || identity.issuedAtMs < state.clientCutoff) throw new WardenError('TOKEN_INVALID', { reason: 'revoked' });
  };
}
