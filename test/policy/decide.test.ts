/** Policy decisions: who, what, explicit deny wins, default and baseline, step-up, arguments, lists. */
import t from 'tap';
import fc from 'fast-check';
import { parsePolicy } from '../../src/policy/config.js';
import { compilePolicy, isAmbiguousPath } from '../../src/policy/decide.js';
import type { Policy, Principal } from '../../src/policy/decide.js';
import { parsePointer, resolvePointer } from '../../src/policy/pointer.js';
import type { Problem } from '../../src/config/fields.js';

function policyOf(raw: unknown): Policy {
  const problems: Problem[] = [];
  const parsed = parsePolicy(raw, 'policy', problems);
  if (!parsed) throw new Error(`bad test policy: ${JSON.stringify(problems)}`);
  return compilePolicy(parsed);
}

const principal = (over: Partial<Principal> = {}): Principal => ({ clientId: 'agent-1', user: null, issuer: 'self', groups: [], scopes: ['mcp'], claims: {}, ...over });
const call = (name: string, args?: unknown) => ({ method: 'tools/call', target: name, arguments: args });

const DESIGN = {
  default: 'allow',
  rules: [
    { id: 'no-deletes', effect: 'deny', tools: ['delete_*'] },
    { id: 'admins-sql', effect: 'allow', when: { groups: ['admins'] }, tools: ['run_sql'] },
    { id: 'fence', effect: 'deny', resources: ['file:///etc/*'] },
    { id: 'step-up', effect: 'deny', unlessScopes: ['tools:write'], tools: ['write_*'] },
  ],
};

t.test('the DESIGN §12 example', async (t) => {
  const p = policyOf(DESIGN);
  t.match(p.decide(principal(), call('delete_ticket')), { allowed: false, rule: 'no-deletes', stepUp: null });
  t.match(p.decide(principal(), call('search')), { allowed: true, rule: null, by: 'default' });
  t.match(p.decide(principal({ groups: ['admins'] }), call('run_sql')), { allowed: true, rule: 'admins-sql' });
  t.match(p.decide(principal(), { method: 'resources/read', target: 'file:///etc/shadow' }), { allowed: false, rule: 'fence' });
  t.match(p.decide(principal(), { method: 'resources/subscribe', target: 'file:///etc/hosts' }), { allowed: false, rule: 'fence' });
  t.match(p.decide(principal(), { method: 'resources/read', target: 'file:///srv/a' }), { allowed: true });
  t.same(p.decide(principal(), call('write_file')), { allowed: false, rule: 'step-up', by: 'rule', stepUp: ['tools:write'] });
  t.match(p.decide(principal({ scopes: ['mcp', 'tools:write'] }), call('write_file')), { allowed: true });
  t.same(p.ruleIds, ['no-deletes', 'admins-sql', 'fence', 'step-up']);
  t.same([...p.namedTools], ['run_sql']);
});

t.test('explicit deny wins over any allow, in any order', async (t) => {
  const rules = [{ id: 'allow-all', effect: 'allow', tools: ['*'] }, { id: 'deny-x', effect: 'deny', tools: ['x'] }];
  for (const order of [rules, [...rules].reverse()]) {
    const p = policyOf({ default: 'allow', rules: order });
    t.match(p.decide(principal(), call('x')), { allowed: false, rule: 'deny-x' });
    t.match(p.decide(principal(), call('y')), { allowed: true, rule: 'allow-all' });
  }
});

t.test('default deny keeps the handshake and the lists, and nothing else', async (t) => {
  const p = policyOf({ default: 'deny', rules: [{ id: 'search', effect: 'allow', tools: ['search'] }] });
  for (const method of ['initialize', 'ping', 'notifications/initialized', 'notifications/cancelled', 'tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']) {
    t.match(p.decide(principal(), { method, target: null }), { allowed: true, by: 'baseline' }, method);
  }
  for (const method of ['completion/complete', 'logging/setLevel', 'tasks/get', 'sampling/createMessage']) t.match(p.decide(principal(), { method, target: null }), { allowed: false, by: 'default' }, method);
  t.match(p.decide(principal(), call('search')), { allowed: true, rule: 'search' });
  t.match(p.decide(principal(), call('other')), { allowed: false, rule: null, by: 'default' });
  t.match(p.decide(principal(), { method: 'prompts/get', target: 'search' }), { allowed: false }, 'a tools rule is not about prompts');
  t.match(p.decide(principal(), { method: null, target: null }), { allowed: true }, 'a response posted back');
});

t.test('a rule without selectors is about every message; methods narrow it', async (t) => {
  const p = policyOf({ default: 'deny', rules: [
    { id: 'admins', effect: 'allow', when: { groups: ['admins'] } },
    { id: 'banned', effect: 'deny', when: { clients: ['banned-*'] } },
    { id: 'read-only', effect: 'deny', when: { clients: ['reader'] }, methods: ['tools/call', 'resources/subscribe'] },
  ] });
  t.match(p.decide(principal({ groups: ['admins'] }), { method: 'completion/complete', target: null }), { allowed: true, rule: 'admins' });
  t.match(p.decide(principal({ clientId: 'banned-7', groups: ['admins'] }), { method: 'ping', target: null }), { allowed: false, rule: 'banned' });
  t.match(p.decide(principal({ clientId: 'reader', groups: ['admins'] }), call('x')), { allowed: false, rule: 'read-only' });
  t.match(p.decide(principal({ clientId: 'reader', groups: ['admins'] }), { method: 'resources/read', target: 'a://b' }), { allowed: true, rule: 'admins' });
});

t.test('when: every key given must match, any value of a key', async (t) => {
  const p = policyOf({ default: 'deny', rules: [{ id: 'r', effect: 'allow', tools: ['t'], when: { users: ['https://idp.example~*'], issuers: ['https://idp.example'], groups: ['eng', 'ops'], scopes: ['a', 'b'], claims: { department: ['sre'], '/realm_access/roles': ['tool-*'] } } }] });
  const ok = principal({ user: 'https://idp.example~alice', issuer: 'https://idp.example', groups: ['ops'], scopes: ['b'], claims: { department: 'sre', realm_access: { roles: ['x', 'tool-user'] } } });
  t.match(p.decide(ok, call('t')), { allowed: true });
  const without = (k: Partial<Principal>) => p.decide({ ...ok, ...k }, call('t')).allowed;
  t.notOk(without({ user: null }), 'a machine client is no user');
  t.notOk(without({ issuer: 'self' }));
  t.notOk(without({ groups: ['sales'] }));
  t.notOk(without({ scopes: ['c'] }));
  t.notOk(without({ claims: { ...ok.claims, department: ['sre-ish'] } }));
  t.ok(without({ claims: { ...ok.claims, department: ['hr', 'sre'] } }), 'an array claim matches by any element');
  t.ok(without({ claims: { department: 'sre', realm_access: { roles: 'tool-user' } } }), 'a string claim matches like a one-element list');
  t.notOk(without({ claims: { department: 'sre', realm_access: {} } }));
  t.notOk(without({ claims: { department: 7, realm_access: { roles: ['tool-user'] } } }), 'a non-string claim never matches');
});

t.test('argument conditions', async (t) => {
  const p = policyOf({ default: 'deny', rules: [
    { id: 'read-srv', effect: 'allow', tools: ['read_file'], arguments: [{ pointer: '/path', prefix: '/srv/' }] },
    { id: 'sql-select', effect: 'allow', tools: ['run_sql'], arguments: [{ pointer: '/mode', equals: 'read' }, { pointer: '/db', oneOf: ['a', 'b'] }] },
    { id: 'no-tmp', effect: 'deny', tools: ['*'], arguments: [{ pointer: '/opts/target~1dir', glob: '/tmp/*' }] },
    { id: 'deep', effect: 'allow', tools: ['deep'], arguments: [{ pointer: '/a/0/b', equals: { c: [1, 2] } }] },
  ] });
  t.match(p.decide(principal(), call('read_file', { path: '/srv/data.txt' })), { allowed: true, rule: 'read-srv' });
  t.match(p.decide(principal(), call('read_file', { path: '/etc/passwd' })), { allowed: false, by: 'default' });
  t.match(p.decide(principal(), call('read_file', { path: '/srv/../etc/passwd' })), { allowed: false, rule: 'read-srv', by: 'ambiguous' }, 'a dot segment cannot pass a prefix');
  t.match(p.decide(principal(), call('read_file', { path: '/srv/%2e%2e/etc' })), { allowed: false, by: 'ambiguous' });
  t.match(p.decide(principal(), call('read_file', { path: ['/srv/x'] })), { allowed: false }, 'not a string: the condition fails');
  t.match(p.decide(principal(), call('read_file', {})), { allowed: false }, 'missing: the condition fails');
  t.match(p.decide(principal(), call('read_file')), { allowed: false }, 'no arguments at all');
  t.match(p.decide(principal(), call('run_sql', { mode: 'read', db: 'b' })), { allowed: true });
  t.match(p.decide(principal(), call('run_sql', { mode: 'write', db: 'b' })), { allowed: false });
  t.match(p.decide(principal(), call('run_sql', { mode: 'read', db: 'c' })), { allowed: false });
  t.match(p.decide(principal(), call('read_file', { path: '/srv/x', opts: { 'target/dir': '/tmp/y' } })), { allowed: false, rule: 'no-tmp' });
  t.match(p.decide(principal(), call('deep', { a: [{ b: { c: [1, 2] } }] })), { allowed: true });
  t.match(p.decide(principal(), call('deep', { a: [{ b: { c: [2, 1] } }] })), { allowed: false });
  t.match(p.decide(principal(), call('deep', JSON.parse('{"a":{"0":{"b":{"c":[1,2]}}}}'))), { allowed: true }, 'an object key "0" is found like an index');
  t.match(p.decide(principal(), call('deep', JSON.parse('{"__proto__":{"a":[{"b":{"c":[1,2]}}]}}'))), { allowed: false });
});

t.test('step-up only when the wider scope would really allow', async (t) => {
  const p = policyOf({ default: 'deny', rules: [
    { id: 'write', effect: 'deny', unlessScopes: ['tools:write'], tools: ['write_*'] },
    { id: 'admin', effect: 'deny', unlessScopes: ['admin', 'tools:write'], tools: ['write_config'] },
    { id: 'allow-writes', effect: 'allow', tools: ['write_*'] },
  ] });
  t.same(p.decide(principal(), call('write_file')), { allowed: false, rule: 'write', by: 'rule', stepUp: ['tools:write'] });
  t.same(p.decide(principal({ scopes: ['mcp', 'tools:write'] }), call('write_config')), { allowed: false, rule: 'admin', by: 'rule', stepUp: ['admin'] });
  t.same(p.decide(principal(), call('write_config')), { allowed: false, rule: 'write', by: 'rule', stepUp: ['tools:write', 'admin'] });
  const noAllow = policyOf({ default: 'deny', rules: [{ id: 'write', effect: 'deny', unlessScopes: ['tools:write'], tools: ['write_*'] }] });
  t.match(noAllow.decide(principal(), call('write_file')), { allowed: false, stepUp: null }, 'the default would still deny: no challenge that cannot help');
  const hard = policyOf({ default: 'allow', rules: [{ id: 'w', effect: 'deny', unlessScopes: ['tools:write'], tools: ['write_*'] }, { id: 'never', effect: 'deny', tools: ['write_root'] }] });
  t.match(hard.decide(principal(), call('write_root')), { allowed: false, rule: 'never', stepUp: null });
});

t.test('resource URIs the policy cannot judge by their text are denied', async (t) => {
  const p = policyOf({ default: 'allow', rules: [{ id: 'srv', effect: 'allow', resources: ['file:///srv/*'] }] });
  for (const uri of ['file:///srv/../etc/passwd', 'file:///srv/./x', 'file:///srv/%2E%2E/etc', 'file:///srv/a%2fb', 'file:///srv\\..\\etc', 'file:///srv/a\u0000', 'file:///srv/..']) {
    t.match(p.decide(principal(), { method: 'resources/read', target: uri }), { allowed: false, by: 'ambiguous' }, JSON.stringify(uri));
  }
  t.match(p.decide(principal(), { method: 'resources/read', target: 'file:///srv/a..b/.hidden' }), { allowed: true });
  t.match(p.decide(principal(), { method: 'tools/call', target: null }), { allowed: false }, 'a target that is not a string');
  t.ok(isAmbiguousPath('/a/../b') && !isAmbiguousPath('/a/..b'));
});

t.test('lists: what the caller could use stays visible', async (t) => {
  const p = policyOf({ default: 'deny', rules: [
    { id: 'read', effect: 'allow', tools: ['read_*', 'write_*'], arguments: [{ pointer: '/p', prefix: '/srv/' }] },
    { id: 'no-secret', effect: 'deny', tools: ['read_secret'] },
    { id: 'maybe', effect: 'deny', tools: ['read_x'], arguments: [{ pointer: '/p', equals: 'x' }] },
    { id: 'step', effect: 'deny', tools: ['write_*'], unlessScopes: ['w'] },
    { id: 'prompts', effect: 'allow', prompts: ['greet'] },
    { id: 'res', effect: 'allow', resources: ['file:///srv/*'] },
  ] });
  t.ok(p.visible(principal(), 'tool', 'read_file'), 'allowed for some arguments');
  t.ok(p.visible(principal(), 'tool', 'read_x'), 'a deny with conditions leaves other calls');
  t.notOk(p.visible(principal(), 'tool', 'read_secret'));
  t.notOk(p.visible(principal(), 'tool', 'delete'));
  t.ok(p.visible(principal(), 'tool', 'write_file'), 'a step-up tool is listed');
  t.ok(p.visible(principal(), 'prompt', 'greet'));
  t.notOk(p.visible(principal(), 'prompt', 'other'));
  t.ok(p.visible(principal(), 'resource', 'file:///srv/a'));
  t.ok(p.visible(principal(), 'resource', 'file:///srv/{path}'), 'a template is judged by its text');
  t.notOk(p.visible(principal(), 'resource', 'file:///etc/hosts'));
  t.notOk(p.visible(principal(), 'resource', 'file:///srv/../etc'));
});

t.test('JSON pointers', async (t) => {
  t.same(parsePointer(''), []);
  t.same(parsePointer('/a~1b/c~0d/'), ['a/b', 'c~d', '']);
  t.equal(parsePointer('a'), null);
  t.equal(parsePointer('/a~2'), null);
  t.equal(resolvePointer({ a: [1, 2] }, ['a', '01']), undefined);
  t.equal(resolvePointer({ a: [1, 2] }, ['a', '1']), 2);
  t.equal(resolvePointer({ a: 1 }, ['constructor']), undefined);
  t.equal(resolvePointer('x', ['length']), undefined);
});

t.test('property: a deny rule for a name always wins, whatever else is configured', async (t) => {
  const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
  const otherRule = fc.record({ effect: fc.constantFrom('allow', 'deny'), tools: fc.array(fc.constantFrom('*', 'a*', '?b', 'x'), { minLength: 1, maxLength: 3 }) });
  t.doesNotThrow(() => fc.assert(fc.property(name, fc.array(otherRule, { maxLength: 5 }), fc.constantFrom('allow', 'deny'), fc.nat(5), (n, others, def, at) => {
    const literal = n.replace(/[*?\\]/g, '\\$&');
    const rules: unknown[] = others.map((r, i) => ({ id: `r${i}`, ...r }));
    rules.splice(at % (rules.length + 1), 0, { id: 'deny-it', effect: 'deny', tools: [literal] });
    const d = policyOf({ default: def, rules }).decide(principal(), call(n));
    return !d.allowed;
  }), { seed: 0x6201, numRuns: 2_000 }), 'denied');
});
