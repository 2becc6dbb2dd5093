import type { Problem } from '../config/fields.js';
import { didYouMean } from '../config/suggest.js';
import { keyPath } from '../config/fields.js';
import { globProblem } from './glob.js';
import { parsePointer } from './pointer.js';

/** Who a rule is about: each list matches when the caller has any of its values; every list given must match. */
export interface WhenConfig {
  readonly clients: readonly string[] | null;
  readonly users: readonly string[] | null;
  readonly issuers: readonly string[] | null;
  readonly groups: readonly string[] | null;
  readonly scopes: readonly string[] | null;
  /** Claim name (or JSON pointer into the claims) → accepted values. */
  readonly claims: Readonly<Record<string, readonly string[]>> | null;
}

/** A condition on a `tools/call` argument, found by JSON pointer. */
export type ArgumentCondition =
  | { readonly pointer: string; readonly op: 'equals'; readonly value: unknown }
  | { readonly pointer: string; readonly op: 'oneOf'; readonly values: readonly unknown[] }
  | { readonly pointer: string; readonly op: 'prefix'; readonly prefix: string }
  | { readonly pointer: string; readonly op: 'glob'; readonly glob: string };

export interface RuleConfig {
  readonly id: string;
  readonly effect: 'allow' | 'deny';
  readonly when: WhenConfig | null;
  readonly methods: readonly string[] | null;
  readonly tools: readonly string[] | null;
  readonly prompts: readonly string[] | null;
  readonly resources: readonly string[] | null;
  readonly arguments: readonly ArgumentCondition[] | null;
  /** Deny rules only: the denial is lifted for a caller holding all of these scopes (MCP step-up). */
  readonly unlessScopes: readonly string[] | null;
}

/** The `policy` section (DESIGN §12), validated. */
export interface PolicyConfig {
  readonly default: 'allow' | 'deny';
  readonly rules: readonly RuleConfig[];
}

const RULE_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const WHEN_KEYS = ['clients', 'users', 'issuers', 'groups', 'scopes', 'claims'] as const;
const RULE_KEYS = ['id', 'effect', 'when', 'methods', 'tools', 'prompts', 'resources', 'arguments', 'unlessScopes'];
const OPERATORS = ['equals', 'oneOf', 'prefix', 'glob'] as const;
const MAX_RULES = 10_000;

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function unknownKeys(obj: Obj, known: readonly string[], path: string, problems: Problem[]): void {
  for (const key of Object.keys(obj)) if (!known.includes(key)) problems.push({ path: keyPath(path, key), message: `is not a known key${didYouMean(key, known)}` });
}

/** A non-empty list of strings, each checked by `check` (returns a message or null). */
function stringList(raw: unknown, path: string, problems: Problem[], check: (s: string) => string | null): readonly string[] | null {
  if (raw === undefined) return null;
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.push({ path, message: 'must be a non-empty list of strings' });
    return null;
  }
  const before = problems.length;
  raw.forEach((item, i) => {
    const message = typeof item !== 'string' || item.length === 0 ? 'must be a non-empty string' : check(item);
    if (message) problems.push({ path: `${path}[${i}]`, message });
  });
  return problems.length === before ? (raw as string[]) : null;
}

const globs = (raw: unknown, path: string, problems: Problem[]) => stringList(raw, path, problems, globProblem);
const scopes = (raw: unknown, path: string, problems: Problem[]) => stringList(raw, path, problems, (s) => (SCOPE.test(s) ? null : 'must be an OAuth scope token (RFC 6749 §3.3)'));

function parseWhen(raw: unknown, path: string, problems: Problem[]): WhenConfig | null {
  if (raw === undefined) return null;
  if (!isObject(raw)) {
    problems.push({ path, message: `must be an object with any of ${WHEN_KEYS.join(', ')}` });
    return null;
  }
  unknownKeys(raw, WHEN_KEYS, path, problems);
  let claims: Record<string, readonly string[]> | null = null;
  if (raw.claims !== undefined) {
    if (!isObject(raw.claims) || Object.keys(raw.claims).length === 0) problems.push({ path: `${path}.claims`, message: 'must be an object of claim names (or JSON pointers) to lists of values' });
    else {
      claims = {};
      for (const [name, values] of Object.entries(raw.claims)) {
        const at = keyPath(`${path}.claims`, name);
        if (name.startsWith('/') && parsePointer(name) === null) problems.push({ path: at, message: 'is not a valid JSON pointer (RFC 6901)' });
        const list = globs(values, at, problems);
        if (list) claims[name] = list;
      }
    }
  }
  return {
    clients: globs(raw.clients, `${path}.clients`, problems),
    users: globs(raw.users, `${path}.users`, problems),
    issuers: globs(raw.issuers, `${path}.issuers`, problems),
    groups: globs(raw.groups, `${path}.groups`, problems),
    scopes: scopes(raw.scopes, `${path}.scopes`, problems),
    claims,
  };
}

function parseCondition(raw: unknown, path: string, problems: Problem[]): ArgumentCondition | null {
  if (!isObject(raw)) {
    problems.push({ path, message: 'must be an object { "pointer", and one of "equals", "oneOf", "prefix", "glob" }' });
    return null;
  }
  unknownKeys(raw, ['pointer', ...OPERATORS], path, problems);
  const pointer = raw.pointer;
  if (typeof pointer !== 'string' || parsePointer(pointer) === null) problems.push({ path: `${path}.pointer`, message: 'must be a JSON pointer such as "/path" (RFC 6901)' });
  const ops = OPERATORS.filter((op) => Object.hasOwn(raw, op));
  if (ops.length !== 1) {
    problems.push({ path, message: 'must have exactly one of "equals", "oneOf", "prefix", "glob"' });
    return null;
  }
  if (typeof pointer !== 'string') return null;
  switch (ops[0]) {
    case 'equals':
      return { pointer, op: 'equals', value: raw.equals };
    case 'oneOf':
      if (!Array.isArray(raw.oneOf) || raw.oneOf.length === 0) {
        problems.push({ path: `${path}.oneOf`, message: 'must be a non-empty list of values' });
        return null;
      }
      return { pointer, op: 'oneOf', values: raw.oneOf };
    case 'prefix':
      if (typeof raw.prefix !== 'string' || raw.prefix.length === 0) {
        problems.push({ path: `${path}.prefix`, message: 'must be a non-empty string' });
        return null;
      }
      return { pointer, op: 'prefix', prefix: raw.prefix };
    default: {
      const message = typeof raw.glob === 'string' ? globProblem(raw.glob) : 'must be a non-empty string';
      if (message) {
        problems.push({ path: `${path}.glob`, message });
        return null;
      }
      return { pointer, op: 'glob', glob: raw.glob as string };
    }
  }
}

function parseRule(raw: unknown, path: string, problems: Problem[]): RuleConfig | null {
  if (!isObject(raw)) {
    problems.push({ path, message: 'must be an object with "id" and "effect"' });
    return null;
  }
  const before = problems.length;
  unknownKeys(raw, RULE_KEYS, path, problems);
  if (typeof raw.id !== 'string' || !RULE_ID.test(raw.id)) problems.push({ path: `${path}.id`, message: 'must be 1-64 characters of A-Z a-z 0-9 . _ : -' });
  if (raw.effect !== 'allow' && raw.effect !== 'deny') problems.push({ path: `${path}.effect`, message: 'must be "allow" or "deny"' });
  let args: ArgumentCondition[] | null = null;
  if (raw.arguments !== undefined) {
    if (!Array.isArray(raw.arguments) || raw.arguments.length === 0) problems.push({ path: `${path}.arguments`, message: 'must be a non-empty list of conditions' });
    else args = raw.arguments.map((c, i) => parseCondition(c, `${path}.arguments[${i}]`, problems)).filter((c) => c !== null);
  }
  const rule: RuleConfig = {
    id: raw.id as string,
    effect: raw.effect as 'allow' | 'deny',
    when: parseWhen(raw.when, `${path}.when`, problems),
    methods: globs(raw.methods, `${path}.methods`, problems),
    tools: globs(raw.tools, `${path}.tools`, problems),
    prompts: globs(raw.prompts, `${path}.prompts`, problems),
    resources: globs(raw.resources, `${path}.resources`, problems),
    arguments: args,
    unlessScopes: scopes(raw.unlessScopes, `${path}.unlessScopes`, problems),
  };
  if (raw.unlessScopes !== undefined && raw.effect === 'allow') problems.push({ path: `${path}.unlessScopes`, message: 'only a deny rule can be lifted by scopes' });
  return problems.length === before ? rule : null;
}

/**
 * Parses the `policy` section: null (no policy: nothing is checked or filtered) or
 * `{ default, rules }`. Every problem is reported with its key path; rule ids must be unique
 * (they name the rule in events and in `mcp-warden policy test`).
 */
export function parsePolicy(raw: unknown, path: string, problems: Problem[]): PolicyConfig | null | undefined {
  if (raw === null) return null;
  if (!isObject(raw)) {
    problems.push({ path, message: 'must be null or an object { "default", "rules" }' });
    return undefined;
  }
  const before = problems.length;
  unknownKeys(raw, ['default', 'rules'], path, problems);
  if (raw.default !== 'allow' && raw.default !== 'deny') problems.push({ path: `${path}.default`, message: 'must be "allow" or "deny"' });
  const rules: RuleConfig[] = [];
  if (!Array.isArray(raw.rules)) problems.push({ path: `${path}.rules`, message: 'must be a list of rules' });
  else if (raw.rules.length > MAX_RULES) problems.push({ path: `${path}.rules`, message: `must have at most ${MAX_RULES} rules` });
  else {
    const seen = new Set<string>();
    raw.rules.forEach((r, i) => {
      const rule = parseRule(r, `${path}.rules[${i}]`, problems);
      if (!rule) return;
      if (seen.has(rule.id)) problems.push({ path: `${path}.rules[${i}].id`, message: `duplicates rule "${rule.id}"` });
      seen.add(rule.id);
      rules.push(rule);
    });
  }
  return problems.length === before ? { default: raw.default as 'allow' | 'deny', rules } : undefined;
}
