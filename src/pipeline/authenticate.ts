import type { Identity, RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { authorizationField, parseBearer } from '../http/headers.js';
import type { VerifyAccessToken } from '../auth/access-token.js';

/** The refusals of authentication: decided here, sent by refuse-unauthenticated once the address block is known. */
const AUTH_REFUSALS = new Set(['TOKEN_MISSING', 'TOKEN_INVALID', 'INSUFFICIENT_SCOPE']);

/**
 * Stage 4: the bearer token becomes the request's identity. Missing → 401 with the resource
 * metadata challenge; anything wrong with it → 401 invalid_token; valid but without the required
 * scope → 403 insufficient_scope. The refusal is not thrown here but kept in `ctx.authFailure`:
 * a blocked address gets 429 whatever its token, and the block is read with the rest of the state
 * (load-state). A failure to verify at all (a store or an issuer down) is thrown at once.
 */
export function authenticate(deps: { readonly verify: VerifyAccessToken; readonly requiredScope: string | null }) {
  function accept(ctx: RequestContext, identity: Identity): void {
    ctx.identity = identity;
    if (deps.requiredScope !== null && !identity.scopes.includes(deps.requiredScope)) {
      ctx.authFailure = new WardenError('INSUFFICIENT_SCOPE', { scope: deps.requiredScope });
    }
  }

  function refuse(ctx: RequestContext, err: unknown): void {
    if (!(err instanceof WardenError) || !AUTH_REFUSALS.has(err.code)) throw err;
    ctx.authFailure = err;
  }

  // Not an async function: a token already verified is a synchronous answer, and the stage then
  // returns without a promise (runStages awaits only promises).
  return function authenticate(ctx: RequestContext): Promise<void> | void {
    // A forged relay header already decided this request.
    if (ctx.authFailure !== null) return;
    // Two Authorization lines reach the parser as two and are refused (see authorizationField).
    const bearer = parseBearer(authorizationField(ctx.req.headers.authorization, ctx.req.rawHeaders));
    if (!bearer.ok) {
      ctx.authFailure = bearer.reason === 'missing' ? new WardenError('TOKEN_MISSING', { reason: 'missing' }) : new WardenError('TOKEN_INVALID', { reason: 'malformed' });
      return;
    }
    let verified: Identity | Promise<Identity>;
    try {
      verified = deps.verify(bearer.value);
    } catch (err) {
      return refuse(ctx, err);
    }
    if (!(verified instanceof Promise)) return accept(ctx, verified);
    return verified.then((identity) => accept(ctx, identity), (err: unknown) => refuse(ctx, err));
  };
}

/** Stage 5b: the authentication refusal decided in stage 4 (or a forged relay hop), now that the address is known not to be blocked. */
export function refuseUnauthenticated() {
  return function refuseUnauthenticated(ctx: RequestContext): void {
    if (ctx.authFailure !== null) throw ctx.authFailure;
  };
}
