/** The list filter and the SSE rewriter, called directly: GET streams by shape, rewriter edge cases. */
import t from 'tap';
import { filterLists } from '../../src/pipeline/filter-lists.js';
import { createSseRewriter } from '../../src/pipeline/sse-rewrite.js';
import { compilePolicy } from '../../src/policy/decide.js';
import { parsePolicy } from '../../src/policy/config.js';
import type { RequestContext } from '../../src/context.js';

const policy = compilePolicy(parsePolicy({ default: 'allow', rules: [{ id: 'd', effect: 'deny', tools: ['delete_*'], prompts: ['secret'] }] }, 'policy', []) ?? { default: 'allow', rules: [] });
const identity = { clientId: 'a', principal: 'a', scopes: ['mcp'], user: null, issuer: 'self', groups: [], claims: {} };

function context(method: string, headers: Record<string, string>, message: RequestContext['message'] = null) {
  let transform: ((data: string) => string) | null = null;
  const response = { status: 200, headers, body: null as Buffer | null, readBody: async () => null, transformEvents: (fn: (data: string) => string) => { transform = fn; } };
  const ctx = { req: { method }, identity, message, response } as unknown as RequestContext;
  return { ctx, transform: () => transform };
}

t.test('a GET stream: list results recognised by shape, anything else passes', async (t) => {
  const stage = filterLists({ policy: () => policy, maxBodyBytes: 1024 });
  const { ctx, transform } = context('GET', { 'content-type': 'text/event-stream' });
  await stage(ctx);
  const fn = transform();
  if (!fn) throw new Error('no transform installed');
  t.same(JSON.parse(fn(JSON.stringify({ jsonrpc: '2.0', id: 4, result: { tools: [{ name: 'delete_x' }, { name: 'echo' }], nextCursor: 'c' } }))), { jsonrpc: '2.0', id: 4, result: { tools: [{ name: 'echo' }], nextCursor: 'c' } });
  t.same(JSON.parse(fn(JSON.stringify({ jsonrpc: '2.0', id: 5, result: { prompts: [{ name: 'secret' }, { name: 'ok' }] } }))).result.prompts, [{ name: 'ok' }]);
  t.same(JSON.parse(fn('{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x"}}')), { jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x' } });
  t.throws(() => fn('not json'), { code: 'UPSTREAM_INVALID_RESPONSE' });
  const json = context('GET', { 'content-type': 'application/json' });
  t.equal(await stage(json.ctx), undefined, 'a GET answered with JSON has no list');
});

t.test('a POST without list requests gets no transform; a non-200 answer is left alone', async (t) => {
  const stage = filterLists({ policy: () => policy, maxBodyBytes: 1024 });
  const call = { id: 1, isRequest: true, method: 'tools/call', target: 'echo', arguments: {} };
  const post = context('POST', { 'content-type': 'text/event-stream' }, { id: 1, method: 'tools/call', isInitialize: false, isBatch: false, calls: [call] });
  await stage(post.ctx);
  t.equal(post.transform(), null);
  const list = context('POST', { 'content-type': 'application/json' }, { id: 2, method: 'tools/list', isInitialize: false, isBatch: false, calls: [{ ...call, id: 2, method: 'tools/list', target: null }] });
  await t.rejects(Promise.resolve(stage(list.ctx)), { code: 'UPSTREAM_INVALID_RESPONSE' }, 'a JSON list that cannot be read (too large) fails closed');
  const failed = context('POST', { 'content-type': 'application/json' }, list.ctx.message);
  (failed.ctx.response as { status: number }).status = 500;
  t.equal(await stage(failed.ctx), undefined);
});

t.test('the SSE rewriter: whole events only, fields kept, multi-line data, bounded events', async (t) => {
  const upper = createSseRewriter((data) => data.toUpperCase());
  t.equal(upper.push(Buffer.from('id: 7\nevent: message\ndata: a\nda')), '', 'nothing until the event is whole');
  t.equal(upper.push(Buffer.from('ta: b\n\n')), 'id: 7\nevent: message\ndata: A\ndata: B\n\n');
  t.equal(upper.push(Buffer.from('event: other\ndata: x\n\nretry: 500\n\n: ping\n\ndata:\n\n')), 'event: other\ndata: x\n\nretry: 500\n\n: ping\n\ndata: \n\n', 'other event types, retry, comments and an empty priming event pass unchanged');
  const euro = Buffer.from('data: €\n\n');
  t.equal(upper.push(euro.subarray(0, 7)) + upper.push(euro.subarray(7)), 'data: €\n\n', 'a character split across chunks');
  const failing = createSseRewriter(() => {
    throw new Error('cannot inspect');
  });
  t.throws(() => failing.push(Buffer.from('data: x\n\n')), /cannot inspect/);
  const huge = createSseRewriter((d) => d);
  t.throws(() => huge.push(Buffer.alloc(17 * 1024 * 1024, 0x61)), 'an event past 16 MiB is refused, not held');
});
