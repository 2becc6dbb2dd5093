import type { RequestContext } from '../context.js';

/** A request stage: returns to pass the request on, `'done'` when it answered itself, throws to refuse. */
export type Stage = (ctx: RequestContext) => Promise<void | 'done'> | void | 'done';

/** A response stage: runs on the upstream response head before anything is sent to the client. */
export type ResponseStage = (ctx: RequestContext) => Promise<void> | void;

/** What a stage, or a run of stages, returns. */
export type StageResult = ReturnType<Stage>;

/**
 * Runs stages in order until one answers (`'done'`) or throws (or rejects). Sync stages are not
 * awaited (each await costs a microtask turn on the hot path), and the last stage's promise is
 * handed back as it is, never awaited here: it is the forward stage's, pending for as long as an
 * event stream lives, and an async frame suspended on it would live as long too.
 */
export function runStages(stages: readonly Stage[], ctx: RequestContext): StageResult {
  const last = stages.length - 1;
  for (let i = 0; i <= last; i++) {
    const result = (stages[i] as Stage)(ctx);
    if (result instanceof Promise) return i === last ? result : finishStages(result, stages, ctx, i + 1);
    if (result === 'done') return result;
  }
  return undefined;
}

/** runStages after its first async stage (never the last one): awaits it and those up to the last, then returns the last one's result. */
async function finishStages(pending: Promise<void | 'done'>, stages: readonly Stage[], ctx: RequestContext, next: number): Promise<void | 'done'> {
  if ((await pending) === 'done') return 'done';
  const last = stages.length - 1;
  for (let i = next; i < last; i++) {
    const result = (stages[i] as Stage)(ctx);
    if ((result instanceof Promise ? await result : result) === 'done') return 'done';
  }
  // Returned, not awaited: this frame ends here and only the promise chain waits on the last stage.
  return (stages[last] as Stage)(ctx);
}

/** Runs every response stage in order; resolves at once (no promise) when none had async work. */
export function runResponseStages(stages: readonly ResponseStage[], ctx: RequestContext): void | Promise<void> {
  for (let i = 0; i < stages.length; i++) {
    const result = stages[i]?.(ctx);
    if (result instanceof Promise) return result.then(() => runResponseStages(stages.slice(i + 1), ctx));
  }
  return undefined;
}
