import type { RequestContext } from '../context.js';
import { need } from '../context.js';
import { WardenError } from '../errors.js';
import type { ListKind, Policy, Principal } from '../policy/decide.js';

export interface FilterListsDeps {
  readonly policy: () => Policy;
  /** Largest JSON list answer held to be filtered; a larger one is refused (fail closed). */
  readonly maxBodyBytes: number;
}

/** What a list result lists: the result key, the kind of item, and the item field policy judges. */
interface ListShape {
  readonly key: string;
  readonly kind: ListKind;
  readonly field: 'name' | 'uri' | 'uriTemplate';
}

const LISTS: Readonly<Record<string, ListShape>> = {
  'tools/list': { key: 'tools', kind: 'tool', field: 'name' },
  'prompts/list': { key: 'prompts', kind: 'prompt', field: 'name' },
  'resources/list': { key: 'resources', kind: 'resource', field: 'uri' },
  'resources/templates/list': { key: 'resourceTemplates', kind: 'resource', field: 'uriTemplate' },
};
const SHAPES = Object.values(LISTS);

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const idKey = (id: unknown): string => `${typeof id}:${String(id)}`;

function unparseable(what: string): WardenError {
  return new WardenError('UPSTREAM_INVALID_RESPONSE', { reason: 'unparseable', description: `The upstream's ${what} could not be checked against the policy` });
}

/** Keeps the items the caller may use; an item whose name or URI is not a string is dropped (it cannot be judged). */
function filterItems(result: Obj, shape: ListShape, visible: (kind: ListKind, name: string) => boolean, strict: boolean): void {
  const items = result[shape.key];
  if (!Array.isArray(items)) {
    if (strict) throw unparseable(`${shape.key} list`);
    return;
  }
  result[shape.key] = items.filter((item) => isObject(item) && typeof item[shape.field] === 'string' && visible(shape.kind, item[shape.field] as string));
}

/**
 * The list filter of a long-lived stream, where answers are recognised by their shape (a result
 * with `tools`, `prompts`, `resources` or `resourceTemplates`): one event's data in, filtered data
 * out; throws on data that is not JSON (the stream is then cut). Used by GET streams and the
 * legacy HTTP+SSE stream.
 */
export function streamListFilter(policy: Policy, principal: Principal): (data: string) => string {
  const visible = (kind: ListKind, name: string): boolean => policy.visible(principal, kind, name);
  const transform = (message: unknown): unknown => {
    if (isObject(message) && isObject(message.result)) for (const shape of SHAPES) if (Object.hasOwn(message.result, shape.key)) filterItems(message.result, shape, visible, false);
    return message;
  };
  return (data) => applyTo(transform, data, 'event');
}

function applyTo(transform: (message: unknown) => unknown, text: string, what: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw unparseable(what);
  }
  return JSON.stringify(Array.isArray(parsed) ? parsed.map(transform) : transform(parsed));
}

/**
 * Response stage (with a policy only): `tools/list`, `prompts/list`, `resources/list` and
 * `resources/templates/list` results lose what the caller may not use, in a JSON body or in any
 * event of an SSE body (other events pass as they are, unbuffered), page by page (`nextCursor`
 * is kept: each page is filtered). A POST's answers are found by the ids of its list requests; a
 * GET stream (where an answer may be replayed after a reconnect) by the shape of the result. What
 * cannot be parsed fails closed: a JSON body with 502 UPSTREAM_INVALID_RESPONSE, a stream is cut.
 */
export function filterLists(deps: FilterListsDeps) {
  function transformFor(ctx: RequestContext): ((message: unknown) => unknown) | null {
    // Most POSTs list nothing: decided before any closure is made.
    if (ctx.req.method !== 'GET' && !(ctx.message?.calls ?? []).some((c) => c.method !== null && Object.hasOwn(LISTS, c.method))) return null;
    const identity: Principal = need(ctx.identity, 'ctx.identity');
    const policy = deps.policy();
    const visible = (kind: ListKind, name: string): boolean => policy.visible(identity, kind, name);
    if (ctx.req.method === 'GET') {
      return (message) => {
        if (isObject(message) && isObject(message.result)) for (const shape of SHAPES) if (Object.hasOwn(message.result, shape.key)) filterItems(message.result, shape, visible, false);
        return message;
      };
    }
    const calls = ctx.message?.calls ?? [];
    let ids: Map<string, ListShape> | null = null;
    for (const call of calls) {
      const shape = call.method !== null && Object.hasOwn(LISTS, call.method) ? LISTS[call.method] : undefined;
      if (shape && call.isRequest) (ids ??= new Map()).set(idKey(call.id), shape);
    }
    if (!ids) return null;
    const wanted = ids;
    return (message) => {
      if (!isObject(message) || !Object.hasOwn(message, 'id')) return message;
      const shape = wanted.get(idKey(message.id));
      if (!shape || !Object.hasOwn(message, 'result')) return message;
      if (!isObject(message.result)) throw unparseable('list result');
      filterItems(message.result, shape, visible, true);
      return message;
    };
  }

  const apply = applyTo;

  return function filterLists(ctx: RequestContext): void | Promise<void> {
    const response = need(ctx.response, 'ctx.response');
    if (response.status !== 200) return undefined;
    const transform = transformFor(ctx);
    if (!transform) return undefined;
    const type = String(response.headers['content-type'] ?? '');
    if (type.startsWith('text/event-stream')) {
      if (!response.transformEvents) throw unparseable('event stream');
      response.transformEvents((data) => apply(transform, data, 'event'));
      return undefined;
    }
    // A GET answers with a stream or not at all; anything else of it has no list in it.
    if (ctx.req.method === 'GET') return undefined;
    return filterJson(response, transform);
  };

  async function filterJson(response: NonNullable<RequestContext['response']>, transform: (message: unknown) => unknown): Promise<void> {
    const body = await response.readBody(deps.maxBodyBytes);
    if (body === null) throw unparseable('answer (too large or cut)');
    response.body = Buffer.from(apply(transform, body.toString('utf8'), 'answer'));
  }
}
