import type { RequestContext } from '../context.js';

/** A request stage: returns to pass the request on, `'done'` when it answered itself, throws to refuse. */
export type Stage = (ctx: RequestContext) => Promise<void | 'done'> | void | 'done';

/** A response stage: runs on the upstream response head before anything is sent to the client. */
export type ResponseStage = (ctx: RequestContext) => Promise<void> | void;

/** Runs stages in order until one answers (`'done'`) or throws. */
export async function runStages(stages: readonly Stage[], ctx: RequestContext): Promise<void> {
  for (const stage of stages) {
    const result = stage(ctx);
    // Sync stages are not awaited: each await costs a microtask turn on the hot path.
    if ((result instanceof Promise ? await result : result) === 'done') return;
  }
}

/** Runs every response stage in order; resolves at once (no promise) when none had async work. */
export function runResponseStages(stages: readonly ResponseStage[], ctx: RequestContext): void | Promise<void> {
  for (let i = 0; i < stages.length; i++) {
    const result = stages[i]?.(ctx);
    if (result instanceof Promise) return result.then(() => runResponseStages(stages.slice(i + 1), ctx));
  }
  return undefined;
}
