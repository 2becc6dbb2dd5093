import { isIP } from 'node:net';
import { parseDuration } from './duration.js';
import { didYouMean } from './suggest.js';

/** One configuration problem: the key path and what is wrong with it. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

/** What a field's parser returns: the typed value, or `undefined` after pushing problems. */
type Parse<T> = (raw: unknown, path: string, problems: Problem[]) => T | undefined;

/**
 * One configuration key: how to parse it, its default, and how it is documented and exposed
 * as an environment variable or CLI flag. `default` and `example` are in file form (raw JSON).
 */
export interface Field<T> {
  readonly kind: 'field';
  readonly doc: string;
  readonly default: unknown;
  readonly example?: unknown;
  readonly env?: string;
  readonly flag?: string;
  /** Secrets are never printed back (config check, docs show `<secret>`). */
  readonly secret?: boolean;
  readonly parse: Parse<T>;
  /** Turns an environment variable or flag string into a raw value. */
  readonly fromString: (text: string) => unknown;
  /** The key's value in JSON Schema (generated `mcp-warden.schema.json`, for editors). */
  readonly json: JsonSchema;
}

/** A JSON Schema (draft 2020-12) fragment. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/** A nested group of keys: plain objects whose leaves are fields. */
export interface Group {
  readonly [key: string]: Field<unknown> | Group;
}

/** The typed value a field or group resolves to. */
export type Resolved<S> = S extends Field<infer T> ? T : { readonly [K in keyof S]: Resolved<S[K]> };

interface Meta {
  doc: string;
  default: unknown;
  example?: unknown;
  env?: string;
  flag?: string;
  secret?: boolean;
}

export function isField(node: Field<unknown> | Group): node is Field<unknown> {
  return node.kind === 'field' && typeof node.parse === 'function';
}

function make<T>(meta: Meta, json: JsonSchema, parse: Parse<T>, fromString: (text: string) => unknown = (s) => s): Field<T> {
  return { kind: 'field', ...meta, json: { description: meta.doc, ...json }, parse, fromString };
}

/** `json` that also admits null. */
const orNull = (json: JsonSchema): JsonSchema => ({ anyOf: [json, { type: 'null' }] });
const STRING = (rule?: { pattern: RegExp }): JsonSchema => ({ type: 'string', minLength: 1, ...(rule ? { pattern: rule.pattern.source } : {}) });
const DURATION_JSON = (minMs: number): JsonSchema => ({ anyOf: [{ type: 'string', pattern: '^(\\d{1,15}|\\d{1,9}(ms|s|m|h|d))$' }, { type: 'integer', minimum: minMs }] });
const URL_JSON: JsonSchema = { type: 'string', format: 'uri' };
const HOST_PORT_JSON: JsonSchema = { type: 'string', pattern: '^(\\[[0-9a-fA-F:]+\\]|[A-Za-z0-9.-]+):\\d{1,5}$' };
const limitJson = (withBlock: boolean): JsonSchema => ({
  type: 'object',
  properties: { points: { type: 'integer', minimum: 1 }, duration: DURATION_JSON(1000), ...(withBlock ? { block: DURATION_JSON(1000) } : {}) },
  required: withBlock ? ['points', 'duration', 'block'] : ['points', 'duration'],
  additionalProperties: false,
});

/**
 * `path.key` for a key found in the file. A key that would print as nothing or break the line
 * (empty, control characters, edge whitespace) is shown as a JSON string: `listen." port"`.
 */
export function keyPath(path: string, key: string): string {
  const shown = key === '' || key.trim() !== key || /[\x00-\x1f\x7f]/.test(key) ? JSON.stringify(key) : key;
  return path ? `${path}.${shown}` : shown;
}

function problem(problems: Problem[], path: string, message: string): undefined {
  problems.push({ path, message });
  return undefined;
}

const asNumber = (s: string): unknown => (/^-?\d+$/.test(s.trim()) ? Number(s) : s);
const asBoolean = (s: string): unknown => (s === 'true' ? true : s === 'false' ? false : s);
const asList = (s: string): unknown => s.split(',').map((x) => x.trim()).filter(Boolean);
const asNullable = (s: string): unknown => (s === '' || s === 'null' ? null : s);

/** Wraps a parser so that `null` is accepted as "not set". */
function nullable<T>(parse: Parse<T>): Parse<T | null> {
  return (raw, path, problems) => (raw === null ? null : parse(raw, path, problems));
}

const stringParser =
  (rule?: { pattern: RegExp; message: string }): Parse<string> =>
  (raw, path, problems) => {
    if (typeof raw !== 'string' || raw.length === 0) return problem(problems, path, 'must be a non-empty string');
    if (rule && !rule.pattern.test(raw)) return problem(problems, path, rule.message);
    return raw;
  };

export function text(meta: Meta, rule?: { pattern: RegExp; message: string }): Field<string> {
  return make(meta, STRING(rule), stringParser(rule));
}

export function optionalText(meta: Meta, rule?: { pattern: RegExp; message: string }): Field<string | null> {
  return make(meta, orNull(STRING(rule)), nullable(stringParser(rule)), asNullable);
}

export function oneOf<const V extends string>(values: readonly V[], meta: Meta): Field<V> {
  return make(meta, { enum: values }, (raw, path, problems) =>
    typeof raw === 'string' && (values as readonly string[]).includes(raw)
      ? (raw as V)
      : problem(problems, path, `must be one of ${values.map((v) => `"${v}"`).join(', ')}`),
  );
}

const intParser =
  (min: number, max: number): Parse<number> =>
  (raw, path, problems) =>
    typeof raw === 'number' && Number.isInteger(raw) && raw >= min && raw <= max
      ? raw
      : problem(problems, path, `must be a whole number from ${min} to ${max}`);

export function int(min: number, max: number, meta: Meta): Field<number> {
  return make(meta, { type: 'integer', minimum: min, maximum: max }, intParser(min, max), asNumber);
}

/** A fraction from 0 to 1 (a sampling ratio). */
export function ratio(meta: Meta): Field<number> {
  return make(
    meta,
    { type: 'number', minimum: 0, maximum: 1 },
    (raw, path, problems) => (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0 && raw <= 1 ? raw : problem(problems, path, 'must be a number from 0 to 1')),
    (s) => (/^\s*(0|1|0?\.\d+|1\.0*)\s*$/.test(s) ? Number(s) : s),
  );
}

export function bool(meta: Meta): Field<boolean> {
  return make(
    meta,
    { type: 'boolean' },
    (raw, path, problems) => (typeof raw === 'boolean' ? raw : problem(problems, path, 'must be true or false')),
    asBoolean,
  );
}

/** The longest delay a Node timer holds: a longer one fires after 1 ms (TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const durationParser =
  (minMs: number, maxMs = Number.MAX_SAFE_INTEGER): Parse<number> =>
  (raw, path, problems) => {
    const ms = parseDuration(raw);
    if (ms === null) return problem(problems, path, 'must be a duration such as "90s", "15m", "1h", "30d" or milliseconds');
    if (ms < minMs) return problem(problems, path, `must be at least ${minMs} ms`);
    if (ms > maxMs) return problem(problems, path, maxMs === MAX_TIMER_MS ? `must be at most ${MAX_TIMER_MS} ms (about 24 days), the longest timer Node can set` : `must be at most ${maxMs} ms`);
    return ms;
  };

/** A duration in the file (`"15m"`); milliseconds once parsed. Set `maxMs` to `MAX_TIMER_MS` for timers. */
export function duration(meta: Meta, minMs = 1, maxMs?: number): Field<number> {
  return make(meta, DURATION_JSON(minMs), durationParser(minMs, maxMs), asNumber);
}

const urlParser =
  (protocols: readonly string[]): Parse<string> =>
  (raw, path, problems) => {
    if (typeof raw !== 'string') return problem(problems, path, 'must be a URL string');
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return problem(problems, path, 'must be an absolute URL');
    }
    if (!protocols.includes(url.protocol)) {
      return problem(problems, path, `must use ${protocols.map((p) => p.replace(':', '')).join(' or ')}`);
    }
    if (url.username || url.password) {
      if (!url.protocol.startsWith('redis')) return problem(problems, path, 'must not carry credentials');
    }
    return raw;
  };

export function optionalUrl(protocols: readonly string[], meta: Meta): Field<string | null> {
  return make(meta, orNull(URL_JSON), nullable(urlParser(protocols)), asNullable);
}

function listParser<T>(item: Parse<T>, minItems: number): Parse<readonly T[]> {
  return (raw, path, problems) => {
    if (!Array.isArray(raw)) return problem(problems, path, 'must be a list');
    if (raw.length < minItems) return problem(problems, path, `must have at least ${minItems} item${minItems > 1 ? 's' : ''}`);
    const before = problems.length;
    const out = raw.map((value, i) => item(value, `${path}[${i}]`, problems));
    return problems.length === before ? (out as T[]) : undefined;
  };
}

export function urlList(protocols: readonly string[], minItems: number, meta: Meta): Field<readonly string[]> {
  return make(meta, { type: 'array', items: URL_JSON, minItems }, listParser(urlParser(protocols), minItems), asList);
}

export function textList(meta: Meta, rule?: { pattern: RegExp; message: string }): Field<readonly string[]> {
  return make(meta, { type: 'array', items: STRING(rule) }, listParser(stringParser(rule), 0), asList);
}

export function enumList<const V extends string>(values: readonly V[], meta: Meta): Field<readonly V[]> {
  const item: Parse<V> = (raw, path, problems) =>
    typeof raw === 'string' && (values as readonly string[]).includes(raw)
      ? (raw as V)
      : problem(problems, path, `must be one of ${values.map((v) => `"${v}"`).join(', ')}`);
  return make(meta, { type: 'array', items: { enum: values } }, listParser(item, 0), asList);
}

/** `host:port` pairs, as Redis Sentinel and Cluster node lists take them. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const hostPortParser: Parse<HostPort> = (raw, path, problems) => {
  const match = typeof raw === 'string' ? /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw) : null;
  const port = match ? Number(match[2]) : 0;
  if (!match || port < 1 || port > 65535) return problem(problems, path, 'must be "host:port"');
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port };
};

export function optionalHostPortList(meta: Meta): Field<readonly HostPort[] | null> {
  return make(meta, orNull({ type: 'array', items: HOST_PORT_JSON, minItems: 1 }), nullable(listParser(hostPortParser, 1)), (s) => (s === '' ? null : asList(s)));
}

export function optionalHostPort(meta: Meta): Field<HostPort | null> {
  return make(meta, orNull(HOST_PORT_JSON), nullable(hostPortParser), asNullable);
}

// RFC 9110 §5.1 field-name token.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, space and tab; never CR/LF (header injection).
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

export function optionalHeaderName(meta: Meta): Field<string | null> {
  return make(meta, orNull(STRING({ pattern: HEADER_NAME })), nullable(stringParser({ pattern: HEADER_NAME, message: 'must be an HTTP header name' })), asNullable);
}

export function headerMap(meta: Meta): Field<Readonly<Record<string, string>>> {
  return make(meta, { type: 'object', propertyNames: { pattern: HEADER_NAME.source }, additionalProperties: { type: 'string', pattern: HEADER_VALUE.source } }, (raw, path, problems) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return problem(problems, path, 'must be an object of header names to values');
    const before = problems.length;
    for (const [name, value] of Object.entries(raw)) {
      if (!HEADER_NAME.test(name)) problem(problems, keyPath(path, name), 'is not a valid HTTP header name');
      else if (typeof value !== 'string' || !HEADER_VALUE.test(value)) problem(problems, keyPath(path, name), 'must be a string of visible ASCII');
    }
    return problems.length === before ? (raw as Record<string, string>) : undefined;
  });
}

/** A rate limit: `points` per `duration`, and for some limiters a `block` once exceeded. */
export interface Limit {
  readonly points: number;
  readonly durationMs: number;
  readonly blockMs: number;
}

const limitParser =
  (withBlock: boolean): Parse<Limit> =>
  (raw, path, problems) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return problem(problems, path, 'must be an object { "points", "duration" }');
    const obj = raw as Record<string, unknown>;
    const allowed = withBlock ? ['points', 'duration', 'block'] : ['points', 'duration'];
    for (const key of Object.keys(obj)) if (!allowed.includes(key)) problem(problems, keyPath(path, key), `is not a known key${didYouMean(key, allowed)}`);
    const points = intParser(1, 1_000_000_000)(obj.points, `${path}.points`, problems);
    const durationMs = durationParser(1000)(obj.duration, `${path}.duration`, problems);
    const blockMs = withBlock ? durationParser(1000)(obj.block, `${path}.block`, problems) : 0;
    if (points === undefined || durationMs === undefined || blockMs === undefined) return undefined;
    return { points, durationMs, blockMs };
  };

export function limit(meta: Meta, withBlock = false): Field<Limit> {
  return make(meta, limitJson(withBlock), limitParser(withBlock));
}

export function optionalLimit(meta: Meta): Field<Limit | null> {
  return make(meta, orNull(limitJson(false)), nullable(limitParser(false)));
}

/** Which `X-Forwarded-For` hops to believe: none, the nearest N, or hops from these networks. */
export type TrustProxy = { readonly kind: 'none' } | { readonly kind: 'hops'; readonly hops: number } | { readonly kind: 'cidrs'; readonly cidrs: readonly string[] };

const CIDR = /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/;

export function trustProxy(meta: Meta): Field<TrustProxy> {
  return make(
    meta,
    { anyOf: [{ const: false }, { type: 'integer', minimum: 1, maximum: 32 }, { type: 'array', items: { type: 'string' }, minItems: 1 }] },
    (raw, path, problems) => {
      if (raw === false) return { kind: 'none' };
      if (typeof raw === 'number') {
        const hops = intParser(1, 32)(raw, path, problems);
        return hops === undefined ? undefined : { kind: 'hops', hops };
      }
      if (Array.isArray(raw) && raw.length > 0) {
        const before = problems.length;
        raw.forEach((item, i) => {
          const match = typeof item === 'string' ? CIDR.exec(item) : null;
          const family = match ? isIP(match[1] ?? '') : 0;
          const bits = match?.[2] === undefined ? null : Number(match[2]);
          if (!family || (bits !== null && bits > (family === 4 ? 32 : 128))) {
            problem(problems, `${path}[${i}]`, 'must be an IP address or CIDR such as "10.0.0.0/8"');
          }
        });
        return problems.length === before ? { kind: 'cidrs', cidrs: raw as string[] } : undefined;
      }
      return problem(problems, path, 'must be false, a hop count (1-32) or a list of CIDRs');
    },
    (s) => (s === 'false' ? false : /^\d+$/.test(s) ? Number(s) : asList(s)),
  );
}

/**
 * Parses a raw object against a group of fields: unknown keys are problems (a typo must not
 * silently weaken security), missing keys take the field's default.
 */
export function parseGroup<G extends Group>(group: G, raw: unknown, path: string, problems: Problem[], opts: { partial?: boolean } = {}): Resolved<G> | undefined {
  const join = (key: string): string => (path ? `${path}.${key}` : key);
  const value = raw === undefined ? {} : raw;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return problem(problems, path || '(root)', 'must be an object');
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!Object.hasOwn(group, key)) problem(problems, keyPath(path, key), `is not a known key${didYouMean(key, Object.keys(group))}`);
  const before = problems.length;
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(group)) {
    const given = Object.hasOwn(obj, key) ? obj[key] : undefined;
    out[key] = isField(node)
      ? node.parse(given === undefined ? node.default : given, join(key), problems)
      : parseGroup(node, given, join(key), problems);
  }
  // The shape is checked field by field above; the cast only names the assembled result. A
  // partial result (holes where fields failed) is only for cross-key checks of clean areas.
  return problems.length === before || opts.partial ? (out as Resolved<G>) : undefined;
}

/** A list of objects (clients, issuers), each parsed against its own group of fields. */
export function records<G extends Group>(shape: G, meta: Meta): Field<readonly Resolved<G>[]> & { readonly shape: G } {
  return { ...make(meta, { type: 'array', items: groupJson(shape) }, listParser((raw, path, problems) => parseGroup(shape, raw, path, problems), 0)), shape };
}

export function optionalInt(min: number, max: number, meta: Meta): Field<number | null> {
  return make(meta, orNull({ type: 'integer', minimum: min, maximum: max }), nullable(intParser(min, max)), (s) => (s === '' || s === 'null' ? null : asNumber(s)));
}

/** A key whose value has a shape of its own (the policy section): parsed by `parse`, which reports every problem. */
export function custom<T>(meta: Meta & { json: JsonSchema }, parse: (raw: unknown, path: string, problems: Problem[]) => T | undefined): Field<T> {
  const { json, ...rest } = meta;
  return make(rest, json, parse);
}

/** Visits every field of a group with its dotted key path (records are visited as one field). */
export function forEachField(group: Group, visit: (path: string, field: Field<unknown>) => void, prefix = ''): void {
  for (const [key, node] of Object.entries(group)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isField(node)) visit(path, node);
    else forEachField(node, visit, path);
  }
}

/** A group of keys as a JSON Schema object: every key optional (defaults), no other key allowed. */
export function groupJson(group: Group): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [key, node] of Object.entries(group)) properties[key] = isField(node) ? node.json : groupJson(node);
  return { type: 'object', properties, additionalProperties: false };
}
