import { TARGET_PARAM } from '../http/jsonrpc.js';
import { anyGlob, compileGlob } from './glob.js';
import type { Glob } from './glob.js';
import { parsePointer, resolvePointer } from './pointer.js';
import type { Pointer } from './pointer.js';
import type { ArgumentCondition, PolicyConfig, RuleConfig, WhenConfig } from './config.js';

/** The caller as policy sees it; an `Identity` is one. */
export interface Principal {
  readonly clientId: string;
  readonly user: string | null;
  readonly issuer: string;
  readonly groups: readonly string[];
  readonly scopes: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/** One message to judge: what the message seam reads of it. */
export interface Request {
  readonly method: string | null;
  readonly target: string | null;
  readonly arguments?: unknown;
}

/** A decision and what made it. */
export type Decision =
  | { readonly allowed: true; readonly rule: string | null; readonly by: 'rule' | 'default' | 'baseline' }
  | {
      readonly allowed: false;
      readonly rule: string | null;
      readonly by: 'rule' | 'default' | 'ambiguous';
      /** Scopes that would lift the denial (MCP step-up), or null when none would. */
      readonly stepUp: readonly string[] | null;
    };

/** A compiled policy: pure, built once at startup (and on reload). */
export interface Policy {
  /** Whether a caller may send this message. */
  decide(principal: Principal, request: Request): Decision;
  /**
   * Whether a listed item (tool, prompt, resource or template) stays in a list result. A tool is
   * listed when some call of it could be allowed (argument conditions are not known yet) or a
   * wider scope would allow it (the caller then gets the step-up challenge when calling it).
   */
  visible(principal: Principal, kind: ListKind, name: string): boolean;
  /** Rule ids, in order. */
  readonly ruleIds: readonly string[];
  /** Tool names listed literally in the rules: the only tool names metrics may carry as a label. */
  readonly namedTools: ReadonlySet<string>;
}

/** What a list result lists. */
export type ListKind = 'tool' | 'prompt' | 'resource';

/**
 * Methods allowed when no rule decides, even under `default: "deny"`: the handshake, liveness,
 * client notifications and the lists (which are filtered to what the caller may use).
 */
const BASELINE = new Set(['initialize', 'ping', 'server/discover', 'tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']);
const isBaseline = (method: string): boolean => BASELINE.has(method) || method.startsWith('notifications/');

const LIST_METHOD: Record<ListKind, string> = { tool: 'tools/call', prompt: 'prompts/get', resource: 'resources/read' };

interface Condition {
  readonly pointer: Pointer;
  readonly test: (value: unknown) => 'yes' | 'no' | 'ambiguous';
}

interface Rule {
  readonly id: string;
  readonly deny: boolean;
  readonly who: ((p: Principal) => boolean) | null;
  readonly methods: readonly Glob[] | null;
  readonly tools: readonly Glob[] | null;
  readonly prompts: readonly Glob[] | null;
  readonly resources: readonly Glob[] | null;
  readonly conditions: readonly Condition[] | null;
  readonly unlessScopes: readonly string[] | null;
}

/**
 * A path-like string policy cannot judge by its text alone: a dot segment the upstream may
 * resolve (`/srv/../etc`), an encoded separator or dot it may decode, a backslash, or a control
 * character. Such a value is denied rather than matched, so `file:///srv/*` cannot reach `/etc`.
 */
export function isAmbiguousPath(value: string): boolean {
  if (/[\x00-\x1f\x7f\\]/.test(value) || /%(2e|2f|5c|00)/i.test(value)) return true;
  return value.split('/').some((segment) => segment === '.' || segment === '..');
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function compileCondition(c: ArgumentCondition): Condition {
  const pointer = parsePointer(c.pointer) ?? [];
  switch (c.op) {
    case 'equals':
      return { pointer, test: (v) => (v !== undefined && jsonEqual(v, c.value) ? 'yes' : 'no') };
    case 'oneOf':
      return { pointer, test: (v) => (v !== undefined && c.values.some((x) => jsonEqual(v, x)) ? 'yes' : 'no') };
    case 'prefix':
      return { pointer, test: (v) => (typeof v !== 'string' ? 'no' : isAmbiguousPath(v) ? 'ambiguous' : v.startsWith(c.prefix) ? 'yes' : 'no') };
    default: {
      const glob = compileGlob(c.glob);
      return { pointer, test: (v) => (typeof v !== 'string' ? 'no' : isAmbiguousPath(v) ? 'ambiguous' : glob.test(v) ? 'yes' : 'no') };
    }
  }
}

const compileGlobs = (list: readonly string[] | null): readonly Glob[] | null => list?.map(compileGlob) ?? null;

/** Claim values a `when.claims` entry compares: a string, or the strings of an array claim. */
function claimValues(claims: Readonly<Record<string, unknown>>, name: string): readonly string[] {
  const value = name.startsWith('/') ? resolvePointer(claims, parsePointer(name) ?? []) : Object.hasOwn(claims, name) ? claims[name] : undefined;
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function compileWhen(when: WhenConfig | null): ((p: Principal) => boolean) | null {
  if (!when) return null;
  const checks: ((p: Principal) => boolean)[] = [];
  const clients = compileGlobs(when.clients);
  const users = compileGlobs(when.users);
  const issuers = compileGlobs(when.issuers);
  const groups = compileGlobs(when.groups);
  const scopes = when.scopes;
  if (clients) checks.push((p) => anyGlob(clients, p.clientId));
  if (users) checks.push((p) => p.user !== null && anyGlob(users, p.user));
  if (issuers) checks.push((p) => anyGlob(issuers, p.issuer));
  if (groups) checks.push((p) => p.groups.some((g) => anyGlob(groups, g)));
  if (scopes) checks.push((p) => scopes.some((s) => p.scopes.includes(s)));
  for (const [name, values] of Object.entries(when.claims ?? {})) {
    const accepted = values.map(compileGlob);
    checks.push((p) => claimValues(p.claims, name).some((v) => anyGlob(accepted, v)));
  }
  return (p) => checks.every((check) => check(p));
}

function compileRule(r: RuleConfig): Rule {
  return {
    id: r.id,
    deny: r.effect === 'deny',
    who: compileWhen(r.when),
    methods: compileGlobs(r.methods),
    tools: compileGlobs(r.tools),
    prompts: compileGlobs(r.prompts),
    resources: compileGlobs(r.resources),
    conditions: r.arguments?.map(compileCondition) ?? null,
    unlessScopes: r.unlessScopes,
  };
}

/** The target selector of a rule for a targeted method. */
function selectorFor(rule: Rule, method: string): readonly Glob[] | null {
  if (method === 'tools/call') return rule.tools;
  if (method === 'prompts/get') return rule.prompts;
  return rule.resources;
}

type Match = 'yes' | 'no' | 'ambiguous';

/**
 * Whether a rule is about this message. `listing`: a listed item is judged without arguments, so
 * argument conditions count as met for an allow rule (some call may be allowed) and unmet for a
 * deny rule (some call may escape it).
 */
function matches(rule: Rule, p: Principal, method: string, target: string | null, args: unknown, listing: boolean): Match {
  if (rule.who && !rule.who(p)) return 'no';
  if (rule.methods && !anyGlob(rule.methods, method)) return 'no';
  if (rule.tools || rule.prompts || rule.resources) {
    const selector = Object.hasOwn(TARGET_PARAM, method) ? selectorFor(rule, method) : undefined;
    if (!selector || target === null || !anyGlob(selector, target)) return 'no';
  }
  if (!rule.conditions) return 'yes';
  if (method !== 'tools/call') return 'no';
  if (listing) return rule.deny ? 'no' : 'yes';
  let result: Match = 'yes';
  for (const c of rule.conditions) {
    const r = c.test(resolvePointer(args, c.pointer));
    if (r === 'no') return 'no';
    if (r === 'ambiguous') result = 'ambiguous';
  }
  return result;
}

/** Compiles a validated policy section. */
export function compilePolicy(config: PolicyConfig): Policy {
  const rules = config.rules.map(compileRule);
  const defaultAllows = config.default === 'allow';
  const namedTools = new Set(config.rules.flatMap((r) => r.tools ?? []).filter((t) => !/[*?\\]/.test(t)));

  function judge(p: Principal, method: string, target: string | null, args: unknown, listing: boolean, extraScopes: readonly string[]): Decision {
    const isResource = TARGET_PARAM[method] === 'uri';
    if (Object.hasOwn(TARGET_PARAM, method) && (target === null || (isResource && isAmbiguousPath(target)))) return { allowed: false, rule: null, by: 'ambiguous', stepUp: null };
    const holds = (scope: string): boolean => p.scopes.includes(scope) || extraScopes.includes(scope);
    let allow: Rule | null = null;
    let liftable: Rule[] | null = null;
    for (const rule of rules) {
      const m = matches(rule, p, method, target, args, listing);
      if (m === 'no') continue;
      // An argument the policy cannot judge (a dot segment under a prefix) denies, whatever the effect.
      if (m === 'ambiguous') return { allowed: false, rule: rule.id, by: 'ambiguous', stepUp: null };
      if (!rule.deny) {
        allow ??= rule;
        continue;
      }
      if (!rule.unlessScopes) return { allowed: false, rule: rule.id, by: 'rule', stepUp: null };
      if (!rule.unlessScopes.every(holds)) (liftable ??= []).push(rule);
    }
    if (liftable) {
      const wanted = [...new Set(liftable.flatMap((r) => r.unlessScopes ?? []))];
      // Step-up only when the wider scope would really allow the call, not merely lift this rule.
      const lifted = extraScopes.length === 0 ? judge(p, method, target, args, listing, wanted) : null;
      return { allowed: false, rule: liftable[0]?.id ?? null, by: 'rule', stepUp: lifted?.allowed ? wanted.filter((s) => !p.scopes.includes(s)) : null };
    }
    if (allow) return { allowed: true, rule: allow.id, by: 'rule' };
    if (defaultAllows) return { allowed: true, rule: null, by: 'default' };
    return isBaseline(method) ? { allowed: true, rule: null, by: 'baseline' } : { allowed: false, rule: null, by: 'default', stepUp: null };
  }

  return {
    decide(p, request) {
      // A response the client posts back (sampling, elicitation) answers the server; it asks nothing.
      if (request.method === null) return { allowed: true, rule: null, by: 'baseline' };
      return judge(p, request.method, request.target, request.arguments, false, []);
    },
    visible(p, kind, name) {
      const d = judge(p, LIST_METHOD[kind], name, undefined, true, []);
      return d.allowed || d.stepUp !== null;
    },
    ruleIds: rules.map((r) => r.id),
    namedTools,
  };
}
