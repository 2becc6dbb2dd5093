import type { RequestContext } from '../context.js';

/** A request stage: returns to pass the request on, `'done'` when it answered itself, throws to refuse. */
export type Stage = (ctx: RequestContext) => Promise<void | 'done'> | void | 'done';

/** A response stage: runs on the upstream response head before anything is sent to the client. */
export type ResponseStage = (ctx: RequestContext) => Promise<void> | void;

/** What a stage, or a run of stages, returns. */
export type StageResult = ReturnType<Stage>;

/**
 * Runs stages in order (from index `from`) until one answers (`'done'`) or throws (or rejects).
 * Not an async function: sync stages are not awaited (each await costs a microtask turn on the
 * hot path), and the last stage's promise is handed back as it is. That one is the forward
 * stage's, pending for as long as an event stream lives; a suspended async frame waiting on it
 * would live as long too (about 0.3 KB per idle stream).
 */
export function runStages(stages: readonly Stage[], ctx: RequestContext, from = 0): StageResult {
  for (let i = from; i < stages.length; i++) {
    const result = (stages[i] as Stage)(ctx);
    if (result instanceof Promise) {
      if (i === stages.length - 1) return result;
      return result.then((outcome) => (outcome === 'done' ? outcome : runStages(stages, ctx, i + 1)));
    }
    if (result === 'done') return result;
  }
  return undefined;
}

/** Runs every response stage in order; resolves at once (no promise) when none had async work. */
export function runResponseStages(stages: readonly ResponseStage[], ctx: RequestContext): void | Promise<void> {
  for (let i = 0; i < stages.length; i++) {
    const result = stages[i]?.(ctx);
    if (result instanceof Promise) return result.then(() => runResponseStages(stages.slice(i + 1), ctx));
  }
  return undefined;
}
