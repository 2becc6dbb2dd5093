import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createContext } from '../context.js';
import type { RequestContext, RouteKind, Site } from '../context.js';
import { asWardenError, WardenError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { sendError } from './reply.js';
import type { Drain } from './drain.js';
import type { RefusalHook } from '../pipeline/refusals.js';
import type { StageResult } from '../pipeline/stage.js';

/** Handles one request on a route (its stages, see `handlerOf`); throws or rejects with a refusal to answer with an error. */
export type Handler = (ctx: RequestContext) => StageResult;

/** One path: its template for logs and metrics, how refusals are written, a handler per method. */
export interface Route {
  readonly template: string;
  readonly kind: RouteKind;
  readonly methods: Readonly<Partial<Record<string, Handler>>>;
}

/** What the request handler reports when a request ends. */
export interface Outcome {
  readonly ctx: RequestContext;
  /** The refusal sent, or null when the request was answered normally. */
  readonly error: WardenError | null;
}

export interface RouterDeps {
  readonly routes: readonly (Route & { readonly path: string })[];
  readonly site: Site;
  readonly log: Logger;
  readonly clock: () => number;
  readonly stopwatch: () => number;
  readonly drain: Drain;
  /** Run in order before a refusal is written (security event, metrics, failed-attempt budget); one failing does not stop the next. */
  readonly refusals: readonly RefusalHook[];
  /** Called as a request arrives, with its route known (tracing: the request span). */
  readonly onStart?: (ctx: RequestContext) => void;
  /** Called once per request when it is over: access log, metrics. */
  readonly onDone: (outcome: Outcome) => void;
}

const NOT_FOUND: Route = { template: '(unmatched)', kind: 'plain', methods: {} };

/**
 * The listener's request handler: finds the route, creates the request context, runs the
 * handler and turns anything thrown into one refusal through `sendError`.
 */
export function createRequestHandler(deps: RouterDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const table = new Map(deps.routes.map((r) => [r.path, r]));
  const allowed = new Map(deps.routes.map((r) => [r.path, Object.keys(r.methods).join(', ')]));
  // Request ids: unique per process (random prefix) and cheap (a counter), for correlating log lines.
  const idPrefix = `${randomBytes(4).toString('hex')}-`;
  let sequence = 0;

  /** The request's context, on its route, counted in flight. */
  function begin(req: IncomingMessage, res: ServerResponse): { ctx: RequestContext; route: Route; path: string } {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const route = table.get(path) ?? NOT_FOUND;
    const id = `${idPrefix}${(++sequence).toString(36)}`;
    const ctx = createContext(req, res, { id, startedAt: deps.clock(), receivedMark: deps.stopwatch(), log: deps.log, site: deps.site });
    ctx.route = route.template;
    ctx.kind = route.kind;
    deps.onStart?.(ctx);
    deps.drain.begin();
    return { ctx, route, path };
  }

  /** Runs the route's handler for the request's method, or throws the refusal the route table implies. */
  function run(ctx: RequestContext, route: Route, path: string): ReturnType<Handler> {
    const { req, res } = ctx;
    const handler = route.methods[req.method ?? ''];
    if (deps.drain.draining) {
      res.shouldKeepAlive = false;
      throw new WardenError('SHUTTING_DOWN', { retryAfterMs: 1_000 });
    }
    if (route === NOT_FOUND) throw new WardenError('NOT_FOUND');
    if (!handler) throw new WardenError('METHOD_NOT_ALLOWED', { allow: allowed.get(path) ?? '' });
    return handler(ctx);
  }

  /** Answers with the refusal `err` maps to, after the refusal hooks; null when nobody is left to answer. */
  async function refuse(ctx: RequestContext, err: unknown): Promise<WardenError | null> {
    const { req } = ctx;
    // The client hung up, or a server timeout (requestTimeout) cut it, while a stage read its
    // body: nobody is left to answer, and it is not a bug (no 500, no error log).
    if (!(err instanceof WardenError) && req.destroyed && !req.complete) {
      ctx.log.debug({ err }, 'client went away mid-request');
      return null;
    }
    const error = asWardenError(err);
    if (error.code === 'INTERNAL') ctx.log.error({ err: error.detail.cause }, 'unexpected error');
    for (const note of deps.refusals) {
      try {
        await note(ctx, error);
      } catch (bookkeeping) {
        ctx.log.error({ err: bookkeeping, hook: note.name }, 'refusal bookkeeping failed');
      }
    }
    ctx.refusal = error.code;
    sendError(ctx, error);
    return error;
  }

  // Small on purpose: this frame stays suspended for as long as an event stream lives, and its
  // size grows with every local (the work is in begin, run and refuse).
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { ctx, route, path } = begin(req, res);
    let error: WardenError | null = null;
    try {
      await run(ctx, route, path);
    } catch (err) {
      error = await refuse(ctx, err);
    } finally {
      deps.drain.done();
      deps.onDone({ ctx, error });
    }
  }

  return (req, res) => {
    void handle(req, res);
  };
}
