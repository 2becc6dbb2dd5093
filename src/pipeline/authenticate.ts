import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { parseBearer } from '../http/headers.js';
import type { VerifyAccessToken } from '../auth/access-token.js';

/**
 * Stage 4: the bearer token becomes the request's identity. Missing → 401 with the resource
 * metadata challenge; anything wrong with it → 401 invalid_token; valid but without the required
 * scope → 403 insufficient_scope. Revocation is checked with the rest of the state (stage 5).
 */
export function authenticate(deps: { readonly verify: VerifyAccessToken; readonly requiredScope: string | null }) {
  return async function authenticate(ctx: RequestContext): Promise<void> {
    // Node keeps only the first of repeated Authorization lines in req.headers; headersDistinct keeps
    // them all, so two lines reach the parser as two and are refused (a singleton field, RFC 9110 §5.3).
    const lines = ctx.req.headersDistinct.authorization;
    const bearer = parseBearer(lines?.length === 1 ? lines[0] : lines);
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
