/**
 * runStages: order, `'done'`, refusals, and that the last stage's promise is handed back as it is
 * (an async frame waiting on it would live as long as an event stream does).
 */
import t from 'tap';
import { createContext } from '../../src/context.js';
import type { RequestContext } from '../../src/context.js';
import { WardenError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { runStages } from '../../src/pipeline/stage.js';
import type { Stage } from '../../src/pipeline/stage.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

function context(): RequestContext {
  const socket = new Socket();
  const site = { origin: 'http://proxy.test', resource: 'http://proxy.test/mcp', resourceMetadataUrl: 'http://proxy.test/.well-known/oauth-protected-resource/mcp', issuer: 'http://proxy.test', requiredScope: null };
  return createContext({ socket } as IncomingMessage, {} as ServerResponse, { id: '1', startedAt: 0, receivedMark: 0, log: createLogger('silent'), site });
}

t.test('stages run in order, sync ones without a promise', async (t) => {
  const seen: string[] = [];
  const stage = (name: string): Stage => () => {
    seen.push(name);
  };
  t.equal(runStages([stage('a'), stage('b')], context()), undefined, 'all sync: no promise');
  const later: Stage = async () => {
    seen.push('async');
  };
  await runStages([stage('c'), later, stage('d')], context());
  t.same(seen, ['a', 'b', 'c', 'async', 'd']);
});

t.test("'done' stops the run, sync or async", async (t) => {
  let reached = false;
  const after: Stage = () => {
    reached = true;
  };
  t.equal(runStages([() => 'done', after], context()), 'done');
  const answered: Stage = async () => 'done' as const;
  t.equal(await runStages([answered, after], context()), 'done');
  t.equal(reached, false, 'no stage after the one that answered');
});

t.test('the last stage promise is handed back as it is', async (t) => {
  const last = new Promise<void>((resolve) => setTimeout(resolve, 10));
  const ctx = context();
  t.equal(runStages([() => undefined, () => last], ctx), last, 'the same promise, not a wrapper');
  // After an async stage the run's promise follows the last one's.
  t.equal(await runStages([async () => undefined, () => Promise.resolve('done' as const)], ctx), 'done');
});

t.test('a refusal thrown or rejected by any stage reaches the caller', async (t) => {
  const refuse: Stage = () => {
    throw new WardenError('NOT_FOUND');
  };
  t.throws(() => runStages([refuse], context()), { code: 'NOT_FOUND' });
  await t.rejects(Promise.resolve(runStages([async () => undefined, refuse], context())), { code: 'NOT_FOUND' });
  await t.rejects(Promise.resolve(runStages([async () => Promise.reject(new WardenError('RATE_LIMITED'))], context())), { code: 'RATE_LIMITED' });
});
