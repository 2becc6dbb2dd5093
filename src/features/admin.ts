import type { Config } from '../config/schema.js';
import { adminApi } from '../admin/api.js';
import type { AdminApiDeps } from '../admin/api.js';
import { handlerOf } from '../http/routes.js';
import type { Feature, RouteTable } from '../http/routes.js';
import type { Handler } from '../http/server.js';
import { buildEntryStages } from '../pipeline/index.js';
import type { StageDeps } from '../pipeline/index.js';

/** The admin API's handlers (DESIGN §13), by operation. */
export type AdminHandlers = ReturnType<typeof adminApi>;

/** The admin API's routes; `/admin/v1/openapi.json` describes exactly these (a test holds them together). */
export function adminApiRoutes(h: Readonly<Record<keyof AdminHandlers, Handler>>): RouteTable {
  const api = (path: string, methods: Record<string, Handler>): RouteTable[number] => ({ path: `/admin/v1${path}`, template: `/admin/v1${path}`, kind: 'admin', methods });
  return [
    api('/openapi.json', { GET: h.openapi }),
    api('/audit-key', { GET: h.auditKey }),
    api('/revoke', { POST: h.revoke }),
    api('/sessions', { GET: h.listSessions, DELETE: h.endSession }),
    api('/blocks', { GET: h.listBlocks, DELETE: h.liftBlock }),
    api('/keys/rotate', { POST: h.rotateKeys }),
    api('/keys/retire', { POST: h.retireKey }),
    api('/reload', { POST: h.reload }),
  ];
}

/**
 * The admin API on the admin listener (`admin.listen`, never the public one): revocation,
 * sessions, address blocks, keys, reload. Its entry stages are its own: plain HTTP, no browsers,
 * and no address block (an operator must be able to lift a block from the address it hit).
 */
export function adminFeature(config: Config, deps: AdminApiDeps & Pick<StageDeps, 'limiters'>): Feature {
  const entry = buildEntryStages({ ...config, security: { ...config.security, allowedOrigins: [], requireSecureTransport: false } }, deps, 'none');
  const api = adminApi(deps);
  const guarded = Object.fromEntries(Object.entries(api).map(([name, handler]) => [name, handlerOf([...entry, handler])])) as Record<keyof AdminHandlers, Handler>;
  return { name: 'admin', adminRoutes: adminApiRoutes(guarded) };
}
