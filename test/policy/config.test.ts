/** The policy section is validated like the rest of the config: every problem with its key path. */
import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';

const BAD: [string, unknown, string[]][] = [
  ['not an object', 'allow', ['policy']],
  ['no default, no rules', {}, ['policy.default', 'policy.rules']],
  ['unknown keys', { default: 'allow', rules: [], mode: 'x' }, ['policy.mode']],
  ['bad default', { default: 'permit', rules: [] }, ['policy.default']],
  ['rule not an object', { default: 'allow', rules: ['deny'] }, ['policy.rules[0]']],
  ['rule id and effect', { default: 'allow', rules: [{ id: 'a b', effect: 'block' }] }, ['policy.rules[0].id', 'policy.rules[0].effect']],
  ['duplicate ids', { default: 'allow', rules: [{ id: 'a', effect: 'deny' }, { id: 'a', effect: 'allow' }] }, ['policy.rules[1].id']],
  ['unknown rule key (a typo must not widen a rule)', { default: 'allow', rules: [{ id: 'a', effect: 'deny', tool: ['x'] }] }, ['policy.rules[0].tool']],
  ['empty and bad globs', { default: 'allow', rules: [{ id: 'a', effect: 'deny', tools: [], prompts: [''], resources: ['a\\b'], methods: 'tools/call' }] }, ['policy.rules[0].tools', 'policy.rules[0].prompts[0]', 'policy.rules[0].resources[0]', 'policy.rules[0].methods']],
  ['bad when', { default: 'allow', rules: [{ id: 'a', effect: 'deny', when: { group: ['x'], scopes: ['a b'], claims: { '/a~2': ['x'], dept: 'eng' } } }] }, ['policy.rules[0].when.group', 'policy.rules[0].when.scopes[0]', 'policy.rules[0].when.claims./a~2', 'policy.rules[0].when.claims.dept']],
  ['when not an object', { default: 'allow', rules: [{ id: 'a', effect: 'deny', when: [] }] }, ['policy.rules[0].when']],
  ['empty claims', { default: 'allow', rules: [{ id: 'a', effect: 'deny', when: { claims: {} } }] }, ['policy.rules[0].when.claims']],
  ['bad arguments', { default: 'allow', rules: [{ id: 'a', effect: 'deny', arguments: [{ pointer: 'path', prefix: '/x' }, { pointer: '/p' }, { pointer: '/p', equals: 1, prefix: 'x' }, { pointer: '/p', oneOf: [] }, { pointer: '/p', prefix: '' }, { pointer: '/p', glob: 'a\\' }, 'x', { pointer: '/p', equals: 1, regex: '.*' }] }] },
    ['policy.rules[0].arguments[0].pointer', 'policy.rules[0].arguments[1]', 'policy.rules[0].arguments[2]', 'policy.rules[0].arguments[3].oneOf', 'policy.rules[0].arguments[4].prefix', 'policy.rules[0].arguments[5].glob', 'policy.rules[0].arguments[6]', 'policy.rules[0].arguments[7].regex']],
  ['empty arguments', { default: 'allow', rules: [{ id: 'a', effect: 'deny', arguments: [] }] }, ['policy.rules[0].arguments']],
  ['unlessScopes on an allow rule', { default: 'allow', rules: [{ id: 'a', effect: 'allow', unlessScopes: ['w'] }] }, ['policy.rules[0].unlessScopes']],
  ['bad unlessScopes', { default: 'allow', rules: [{ id: 'a', effect: 'deny', unlessScopes: ['a"b'] }] }, ['policy.rules[0].unlessScopes[0]']],
  ['rules not a list', { default: 'deny', rules: {} }, ['policy.rules']],
  ['too many rules', { default: 'deny', rules: Array.from({ length: 10_001 }, (_, i) => ({ id: `r${i}`, effect: 'deny' })) }, ['policy.rules']],
];

t.test('bad policies report every problem with its key path', async (t) => {
  for (const [name, policy, paths] of BAD) {
    const result = validateConfig({ policy });
    t.notOk(result.ok, `${name}: refused`);
    if (result.ok) continue;
    t.same(result.problems.map((p) => p.path).sort(), [...paths].sort(), name);
    for (const p of result.problems) t.ok(p.message.length > 5, `${name}: ${p.path} has a message`);
  }
});

t.test('good policies', async (t) => {
  const none = validateConfig({});
  t.ok(none.ok && none.config.policy === null, 'no policy by default');
  const result = validateConfig({ policy: { default: 'deny', rules: [
    { id: 'all', effect: 'allow', when: { clients: ['a'], users: ['u'], issuers: ['self'], groups: ['g'], scopes: ['s'], claims: { c: ['v'] } }, methods: ['tools/*'], tools: ['t'], prompts: ['p'], resources: ['r://*'], arguments: [{ pointer: '', equals: null }, { pointer: '/a', oneOf: [1, 'x'] }, { pointer: '/b', prefix: 'x' }, { pointer: '/c', glob: 'x*' }] },
    { id: 'lift', effect: 'deny', unlessScopes: ['w'], tools: ['write_*'] },
  ] } });
  t.ok(result.ok, JSON.stringify(!result.ok && result.problems));
  if (result.ok) {
    t.ok(Object.isFrozen(result.config.policy?.rules[0]?.when), 'frozen like the rest');
    t.same(result.config.policy?.rules[1]?.when, null);
  }
});
