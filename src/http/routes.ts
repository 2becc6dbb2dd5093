import type { RequestContext } from '../context.js';
import { runStages } from '../pipeline/stage.js';
import type { Stage } from '../pipeline/stage.js';
import type { Handler, Route } from './server.js';

export type RouteTable = (Route & { readonly path: string })[];

/**
 * A part of the proxy (the MCP path, the OAuth server, health and metrics, the admin API):
 * it brings its routes, each with its own stage list, on the public listener and on the admin
 * listener, and what it must release when the proxy stops. `createWarden` assembles the features
 * the config turns on; a new one (a sign-in flow, a new endpoint) is a new module, not an edit
 * of a closed list.
 */
export interface Feature {
  readonly name: string;
  /** Routes of the public listener. Route templates are the metrics labels. */
  readonly routes?: RouteTable;
  /** Routes of the admin listener (`admin.listen`). */
  readonly adminRoutes?: RouteTable;
  /** Called once when the proxy stops, after in-flight requests ended, in reverse assembly order. */
  close?(): Promise<void> | void;
}

/** A handler that runs stages in order (the route's pipeline). */
export const handlerOf = (stages: readonly Stage[]): Handler => (ctx: RequestContext) => runStages(stages, ctx);

/** One listener's route table from the features' contributions; a path claimed twice is a startup error. */
export function routeTable(features: readonly Feature[], listener: 'public' | 'admin'): RouteTable {
  const table = features.flatMap((f) => (listener === 'public' ? f.routes : f.adminRoutes) ?? []);
  const seen = new Map<string, string>();
  for (const f of features) {
    for (const route of (listener === 'public' ? f.routes : f.adminRoutes) ?? []) {
      const owner = seen.get(route.path);
      if (owner !== undefined) throw new Error(`route ${route.path} is claimed by both the ${owner} and the ${f.name} feature`);
      seen.set(route.path, f.name);
    }
  }
  return table;
}
