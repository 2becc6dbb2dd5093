import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { authorizationField, parseBearer } from '../http/headers.js';
import type { VerifyAccessToken } from '../auth/access-token.js';

/**
 * Stage 4: the bearer token becomes the request's identity. Missing → 401 with the resource
 * metadata challenge; anything wrong with it → 401 invalid_token; valid but without the required
 * scope → 403 insufficient_scope. Revocation is checked with the rest of the state (stage 5).
 */
export function authenticate(deps: { readonly verify: VerifyAccessToken; readonly requiredScope: string | null }) {
  return async function authenticate(ctx: RequestContext): Promise<void> {
    // Two Authorization lines reach the parser as two and are refused (see authorizationField).
    const bearer = parseBearer(authorizationField(ctx.req.headers.authorization, ctx.req.rawHeaders));
    if (!bearer.ok) {
      throw bearer.reason === 'missing' ? new WardenError('TOKEN_MISSING', { reason: 'missing' }) : new WardenError('TOKEN_INVALID', { reason: 'malformed' });
    }
    const identity = await deps.verify(bearer.value);
    ctx.identity = identity;
    if (deps.requiredScope !== null && !identity.scopes.includes(deps.requiredScope)) {
      throw new WardenError('INSUFFICIENT_SCOPE', { scope: deps.requiredScope });
    }
  };
}
