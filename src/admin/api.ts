import { createHash, timingSafeEqual } from 'node:crypto';
import type { SessionEnder } from '../session/end-session.js';
import type { Config } from '../config/schema.js';
import type { RequestContext } from '../context.js';
import { WardenError } from '../errors.js';
import { readJsonBody } from '../http/jsonrpc.js';
import { sendJson } from '../http/reply.js';
import { logEvent } from '../observability/events.js';
import { parseBearer } from '../http/headers.js';
import type { VerifyAccessToken } from '../auth/access-token.js';
import type { KeyRing } from '../auth/key-ring.js';
import { endSessionByHash, listSessionRows } from '../session/manage.js';
import type { Limiters } from '../store/limiters.js';
import type { Store } from '../store/types.js';
import { AdminError } from './common.js';
import { retireKey, revokeTokens, revokeVerifiedToken } from './tokens.js';
import type { RevokeTarget } from './tokens.js';
import { ADMIN_OPENAPI } from './openapi.js';

/**
 * The admin API (DESIGN §13), on `admin.listen` only: revocation, sessions, address blocks, signing
 * keys and reload, for operators and their tools. It runs inside the proxy, so it works on the
 * memory store too (the CLI cannot reach that one). Callers prove themselves with the admin key
 * (compared in constant time) or a proxy token with the `admin` scope; every call is an
 * `admin.action` event naming the actor, every refusal RFC 9457 problem details.
 */
export interface AdminApiDeps {
  readonly config: Config;
  readonly store: Store;
  /** Revocations and session ends go the one way sessions end (upstream too). */
  readonly ender: SessionEnder;
  readonly keyRing: KeyRing;
  readonly verify: VerifyAccessToken;
  readonly limiters: Limiters;
  readonly clock: () => number;
  /** This replica's audit trail, whose checkpoint key is published here; null without one. */
  readonly audit: { readonly replica: string; readonly kid: string; readonly publicKey: { kty: 'OKP'; crv: 'Ed25519'; x: string } } | null;
  /** What SIGHUP does; null when the proxy was started without a config file. */
  readonly reload: (() => Promise<{ ok: boolean; problems?: readonly { path: string; message: string }[] }>) | null;
}

export const ADMIN_SCOPE = 'admin';
const MAX_BODY_BYTES = 16 * 1024;
const NO_STORE = { 'cache-control': 'no-store' };

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

export function adminApi(deps: AdminApiDeps) {
  const key = deps.config.admin.key === null ? null : digest(deps.config.admin.key);

  /** Who is calling: `admin-key`, or the client whose admin-scoped token this is. */
  async function actorOf(ctx: RequestContext): Promise<string> {
    const bearer = parseBearer(ctx.req.headers.authorization);
    if (!bearer.ok) throw new WardenError('ADMIN_UNAUTHORIZED');
    // Hashing first makes the comparison constant-time whatever the presented length.
    if (key !== null && timingSafeEqual(digest(bearer.value), key)) return 'admin-key';
    let identity;
    try {
      identity = await deps.verify(bearer.value);
    } catch {
      throw new WardenError('ADMIN_UNAUTHORIZED');
    }
    if (identity.issuer !== 'self' || !identity.scopes.includes(ADMIN_SCOPE)) throw new WardenError('ADMIN_UNAUTHORIZED', { description: `A token needs the "${ADMIN_SCOPE}" scope for the admin API` });
    const now = deps.clock();
    const state = await deps.store.loadRequestState({ principal: identity.principal, jti: identity.jti, grantId: identity.grantId, sessionKey: null, now, idleTimeoutMs: 1, maxLifetimeMs: 1 });
    if (state.revoked || identity.issuedAtMs < state.clientCutoff) throw new WardenError('ADMIN_UNAUTHORIZED');
    return identity.principal;
  }

  async function bodyOf(ctx: RequestContext): Promise<Record<string, unknown>> {
    const raw = await readJsonBody(ctx.req, MAX_BODY_BYTES, 'ADMIN_INVALID');
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new WardenError('ADMIN_INVALID', { description: 'The body must be a JSON object' });
    return raw as Record<string, unknown>;
  }

  const text = (body: Record<string, unknown>, name: string): string | undefined => {
    const value = body[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length === 0 || value.length > 8192) throw new WardenError('ADMIN_INVALID', { description: `"${name}" must be a non-empty string` });
    return value;
  };

  /** The admin functions refuse with AdminError (shared with the CLI); here that is a problem response. */
  async function adminCall<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof AdminError)) throw err;
      const code = err.code === 'CLIENT_NOT_FOUND' || err.code === 'NOT_FOUND' ? 'ADMIN_NOT_FOUND' : err.code === 'CONFLICT' ? 'ADMIN_CONFLICT' : 'ADMIN_INVALID';
      throw new WardenError(code, { description: err.message });
    }
  }

  /** Runs an authenticated action and logs it with its actor. */
  const action = (name: string, run: (ctx: RequestContext, actor: string) => Promise<{ status?: number; body: unknown; target?: string }>) =>
    async (ctx: RequestContext): Promise<void> => {
      const actor = await actorOf(ctx);
      const result = await run(ctx, actor);
      logEvent(ctx.log, 'admin.action', { reason: name, principal: actor, name: result.target ?? null, address: ctx.clientAddress });
      sendJson(ctx.res, result.status ?? 200, result.body, NO_STORE);
    };

  function revokeTarget(body: Record<string, unknown>): RevokeTarget {
    const token = text(body, 'token');
    const client = text(body, 'client');
    const user = text(body, 'user');
    const grant = text(body, 'grant');
    const jti = text(body, 'jti');
    if (token !== undefined && client === undefined && user === undefined) return { kind: 'token', token };
    if (user !== undefined && token === undefined && client === undefined) return { kind: 'user', user };
    if (client !== undefined && token === undefined && user === undefined) {
      if (grant !== undefined && jti === undefined) return { kind: 'grant', clientId: client, grantId: grant };
      if (jti !== undefined && grant === undefined) return { kind: 'jti', clientId: client, jti };
      if (grant === undefined && jti === undefined) return { kind: 'client', clientId: client };
    }
    throw new WardenError('ADMIN_INVALID', { description: 'Give one of: {"token"}, {"user"}, {"client"}, {"client", "grant"}, {"client", "jti"}' });
  }

  const query = (ctx: RequestContext): URLSearchParams => new URL(ctx.req.url ?? '/', 'http://x').searchParams;

  return {
    openapi: (ctx: RequestContext) => sendJson(ctx.res, 200, ADMIN_OPENAPI, { 'cache-control': 'public, max-age=300' }),

    /** The public key this replica signs audit checkpoints with (public: `audit verify --public-key` takes it). */
    auditKey: (ctx: RequestContext) => {
      if (!deps.audit) throw new WardenError('ADMIN_NOT_FOUND', { description: 'This proxy keeps no audit trail (audit.sinks)' });
      sendJson(ctx.res, 200, { replica: deps.audit.replica, kid: deps.audit.kid, jwk: deps.audit.publicKey }, NO_STORE);
    },

    revoke: action('revoke', async (ctx) => {
      const target = revokeTarget(await bodyOf(ctx));
      // A presented token is checked by this proxy's own verifier (its issuer, audience, keys).
      const result = await adminCall(() => (target.kind === 'token' ? revokeVerifiedToken(deps.store, deps.verify, target.token, deps.clock, deps.config.tokens.clockSkew) : revokeTokens(deps.store, deps.ender, deps.config, target, deps.clock)));
      return { body: result, target: result.clientId || target.kind };
    }),

    listSessions: action('sessions.list', async (ctx) => {
      const client = query(ctx).get('client');
      return { body: { sessions: await listSessionRows(deps.store, client || null, deps.clock()) } };
    }),

    endSession: action('sessions.end', async (ctx) => {
      const params = query(ctx);
      const session = params.get('session') ?? '';
      const client = params.get('client');
      if (!/^[A-Za-z0-9_-]{4,64}$/.test(session)) throw new WardenError('ADMIN_INVALID', { description: 'Give ?session=<the SESSION value sessions list shows>' });
      const result = await endSessionByHash(deps.store, deps.ender, session, client || null, deps.clock());
      if (result.outcome === 'unknown') throw new WardenError('ADMIN_NOT_FOUND', { description: `No open session ${session}` });
      if (result.outcome === 'ambiguous') throw new WardenError('ADMIN_CONFLICT', { description: 'Several sessions have this hash: add ?client=' });
      return { body: { ended: true, session, client: result.clientId }, target: session };
    }),

    listBlocks: action('blocks.list', async () => ({ body: { blocks: await deps.limiters.blocked() } })),

    liftBlock: action('blocks.lift', async (ctx) => {
      const address = query(ctx).get('address') ?? '';
      if (!/^[0-9A-Fa-f.:]{2,45}(\/\d{1,3})?$/.test(address)) throw new WardenError('ADMIN_INVALID', { description: 'Give ?address=<an address, or a blocked prefix as listed>' });
      const lifted = await deps.limiters.unblock(address);
      if (!lifted) throw new WardenError('ADMIN_NOT_FOUND', { description: `${address} is not blocked` });
      return { body: { lifted: true, address }, target: address };
    }),

    rotateKeys: action('keys.rotate', async () => {
      const created = await deps.keyRing.rotate();
      return { body: { kid: created.kid, alg: created.alg }, target: created.kid };
    }),

    retireKey: action('keys.retire', async (ctx) => {
      const kid = text(await bodyOf(ctx), 'kid');
      if (kid === undefined) throw new WardenError('ADMIN_INVALID', { description: 'Give {"kid"}' });
      await adminCall(() => retireKey(deps.store, deps.keyRing, kid));
      return { body: { retired: kid }, target: kid };
    }),

    reload: action('reload', async () => {
      if (!deps.reload) throw new WardenError('ADMIN_CONFLICT', { description: 'The proxy was started without a config file: nothing to reload' });
      const result = await deps.reload();
      if (!result.ok) throw new WardenError('ADMIN_INVALID', { description: `The config file was not reloaded: ${(result.problems ?? []).map((p) => `${p.path}: ${p.message}`).join('; ')}` });
      return { body: { reloaded: true } };
    }),
  };
}
