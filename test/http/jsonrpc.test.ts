/**
 * The message seam's parse: method, ids, batch members and the target of the methods policy
 * judges (tool, prompt, resource), from hostile bodies; and the lazy, once-only read.
 */
import t from 'tap';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { MAX_BATCH, parseMessage, TARGET_PARAM } from '../../src/http/jsonrpc.js';
import type { RpcCall } from '../../src/http/jsonrpc.js';
import { messageReader } from '../../src/pipeline/read-message.js';
import type { RequestContext } from '../../src/context.js';
import { hostileString } from '../fixtures/fuzz.js';

const calls = (text: string): readonly RpcCall[] | string => {
  const got = parseMessage(Buffer.from(text));
  return got.ok ? got.value.calls : got.reason;
};

t.test('targets and arguments of hostile bodies', async (t) => {
  const cases: [string, string, readonly Partial<RpcCall>[] | string][] = [
    ['tools/call', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1}}}', [{ id: 1, isRequest: true, method: 'tools/call', target: 'echo', arguments: { a: 1 } }]],
    ['notification has no id', '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}', [{ id: null, isRequest: false, method: 'notifications/cancelled', target: null }]],
    ['an id of null is still a request', '{"id":null,"method":"ping"}', [{ id: null, isRequest: true, method: 'ping' }]],
    ['prompts/get', '{"id":"a","method":"prompts/get","params":{"name":"p"}}', [{ id: 'a', method: 'prompts/get', target: 'p', arguments: undefined }]],
    ['resources/read takes the uri, not a name', '{"id":1,"method":"resources/read","params":{"name":"x","uri":"file:///etc/passwd"}}', [{ target: 'file:///etc/passwd' }]],
    ['resources/subscribe', '{"id":1,"method":"resources/subscribe","params":{"uri":"a://b"}}', [{ target: 'a://b' }]],
    ['resources/unsubscribe', '{"id":1,"method":"resources/unsubscribe","params":{"uri":"a://b"}}', [{ target: 'a://b' }]],
    ['name not a string', '{"id":1,"method":"tools/call","params":{"name":["echo"]}}', [{ target: null }]],
    ['params not an object', '{"id":1,"method":"tools/call","params":["echo"]}', [{ target: null, arguments: undefined }]],
    ['params absent', '{"id":1,"method":"tools/call"}', [{ target: null }]],
    ['name inherited through __proto__ is not the message\'s', '{"id":1,"method":"tools/call","params":{"__proto__":{"name":"echo"}}}', [{ target: null }]],
    ['method named like an Object.prototype member', '{"id":1,"method":"constructor","params":{"name":"x"}}', [{ method: 'constructor', target: null }]],
    ['method hasOwnProperty', '{"id":1,"method":"hasOwnProperty","params":{"name":"x"}}', [{ method: 'hasOwnProperty', target: null }]],
    ['duplicate name: the last wins, as the upstream parses it', '{"id":1,"method":"tools/call","params":{"name":"safe","name":"delete_all"}}', [{ target: 'delete_all' }]],
    ['duplicate params: the last wins', '{"id":1,"method":"tools/call","params":{"name":"safe"},"params":{"name":"delete_all"}}', [{ target: 'delete_all' }]],
    ['unicode and escapes are decoded', '{"id":1,"method":"tools/call","params":{"name":"d\\u0065lete_\\u00e9\\ud83d\\ude00"}}', [{ target: 'delete_é😀' }]],
    ['a lone surrogate is kept as is', '{"id":1,"method":"tools/call","params":{"name":"a\\ud800"}}', [{ target: 'a\ud800' }]],
    ['NUL inside a name is kept (policy must see what the upstream sees)', '{"id":1,"method":"tools/call","params":{"name":"a\\u0000b"}}', [{ target: 'a\0b' }]],
    ['arguments of another method are not read', '{"id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"1"}}}', [{ arguments: undefined }]],
    ['a response posted back has no method', '{"jsonrpc":"2.0","id":5,"result":{}}', [{ id: 5, method: null, target: null }]],
    ['batch members in order', '[{"id":1,"method":"tools/call","params":{"name":"a"}},{"method":"notifications/initialized"},{"id":2,"method":"resources/read","params":{"uri":"x:y"}}]', [{ id: 1, target: 'a' }, { id: null, isRequest: false, method: 'notifications/initialized' }, { id: 2, target: 'x:y' }]],
    ['batch at the cap', JSON.stringify(Array.from({ length: MAX_BATCH }, (_, i) => ({ id: i, method: 'ping' }))), Array.from({ length: MAX_BATCH }, (_, i) => ({ id: i }))],
    ['batch over the cap', JSON.stringify(Array.from({ length: MAX_BATCH + 1 }, (_, i) => ({ id: i, method: 'ping' }))), 'shape'],
    ['initialize inside a batch', '[{"id":1,"method":"ping"},{"id":2,"method":"initialize"}]', 'shape'],
    ['not JSON', '{"id":1,"method":"tools/call","params":{"name":"a"}', 'json'],
  ];
  for (const [name, body, want] of cases) {
    const got = calls(body);
    if (typeof want === 'string') {
      t.equal(got, want, name);
      continue;
    }
    if (typeof got === 'string') {
      t.fail(`${name}: refused as ${got}`);
      continue;
    }
    t.equal(got.length, want.length, `${name}: member count`);
    want.forEach((w, i) => t.match(got[i], w, `${name}: member ${i}`));
    for (const [i, w] of want.entries()) if ('arguments' in w) t.same(got[i]?.arguments, w.arguments, `${name}: arguments ${i}`);
  }
  const single = parseMessage(Buffer.from('{"id":7,"method":"tools/call","params":{"name":"a"}}'));
  t.ok(single.ok && single.value.method === 'tools/call' && single.value.id === 7 && !single.value.isBatch, 'a single message keeps its method and id at the top');
  const batch = parseMessage(Buffer.from('[{"id":7,"method":"tools/call","params":{"name":"a"}}]'));
  t.ok(batch.ok && batch.value.method === null && batch.value.id === null && batch.value.isBatch, 'a batch has neither at the top');
});

const method = fc.oneof(fc.constantFrom(...Object.keys(TARGET_PARAM), 'tools/list', 'ping', 'initialize'), fc.string({ maxLength: 12 }));
const target = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), hostileString(40), fc.webUrl());
const member = fc.record({ id: fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), method, params: fc.record({ name: target, uri: target, arguments: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: [] }) }, { requiredKeys: ['method'] });

t.test('properties', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(member, (m) => {
    const got = parseMessage(Buffer.from(JSON.stringify(m)));
    if (!got.ok) return m.method === 'initialize' && m.id === undefined && got.reason === 'initialize_without_id';
    const [call] = got.value.calls;
    const key = Object.hasOwn(TARGET_PARAM, m.method) ? TARGET_PARAM[m.method] : undefined;
    const want = key === undefined ? null : (m.params?.[key] ?? null);
    // What the upstream parses from the same text is what the seam reports.
    return got.value.calls.length === 1 && call?.method === m.method && call.target === want
      && JSON.stringify(call.arguments) === JSON.stringify(m.method === 'tools/call' ? m.params?.arguments : undefined);
  }), { seed: 0x5017, numRuns: 3_000 }), 'a single message: method, target and arguments are what JSON.parse of the same text holds');

  t.doesNotThrow(() => fc.assert(fc.property(fc.array(member.filter((m) => m.method !== 'initialize'), { minLength: 1, maxLength: 8 }), (batch) => {
    const got = parseMessage(Buffer.from(JSON.stringify(batch)));
    return got.ok && got.value.isBatch && got.value.calls.length === batch.length && got.value.calls.every((c, i) => c.method === batch[i]?.method);
  }), { seed: 0x5018, numRuns: 1_000 }), 'a batch: one call per member, in order');

  t.doesNotThrow(() => fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
    // Never throws; an ok result always has at least one member.
    const got = parseMessage(Buffer.from(bytes));
    return !got.ok || got.value.calls.length >= 1;
  }), { seed: 0x5019, numRuns: 3_000 }), 'arbitrary bytes never throw; a parsed body has a member');
});

function contextFor(body: string): RequestContext {
  const req = Readable.from([Buffer.from(body)]) as unknown as IncomingMessage;
  req.headers = { 'content-length': String(Buffer.byteLength(body)) };
  return { req, body: null, message: null } as unknown as RequestContext;
}

t.test('messageReader reads the body once and caches the message', async (t) => {
  const read = messageReader(1024);
  const ctx = contextFor('{"id":1,"method":"tools/call","params":{"name":"echo"}}');
  const first = await read(ctx);
  t.equal(first.calls[0]?.target, 'echo');
  t.equal(await read(ctx), first, 'second call: the same message, no second read');
  t.equal(ctx.body?.toString(), '{"id":1,"method":"tools/call","params":{"name":"echo"}}', 'the bytes are kept for forwarding');
  await t.rejects(read(contextFor('{"id":1')), { code: 'INVALID_JSON' });
  await t.rejects(read(contextFor('[]')), { code: 'INVALID_MESSAGE' });
  await t.rejects(read(contextFor(`{"id":1,"method":"x","params":"${'a'.repeat(2000)}"}`)), { code: 'BODY_TOO_LARGE' });
});
