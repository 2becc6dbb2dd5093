import type { RequestContext } from '../context.js';

/** A request stage: returns to pass the request on, `'done'` when it answered itself, throws to refuse. */
export type Stage = (ctx: RequestContext) => Promise<void | 'done'> | void | 'done';

/** A response stage: runs on the upstream response head before anything is sent to the client. */
export type ResponseStage = (ctx: RequestContext) => Promise<void> | void;

/** Runs stages in order until one answers (`'done'`) or throws. */
export async function runStages(stages: readonly Stage[], ctx: RequestContext): Promise<void> {
  for (const stage of stages) {
    if ((await stage(ctx)) === 'done') return;
  }
}

/** Runs every response stage in order. */
export async function runResponseStages(stages: readonly ResponseStage[], ctx: RequestContext): Promise<void> {
  for (const stage of stages) await stage(ctx);
}
