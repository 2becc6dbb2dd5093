/** The 50-rule policy `bench/policy.ts` measures. */

/** 50 rules of every kind; none but the last matches `echo` for the bench client. */
export function fiftyRules(): unknown[] {
  const rules: unknown[] = [];
  for (let i = 0; i < 15; i++) rules.push({ id: `deny-tools-${i}`, effect: 'deny', tools: [`delete_${i}_*`, `drop_${i}`] });
  for (let i = 0; i < 10; i++) rules.push({ id: `group-${i}`, effect: 'allow', when: { groups: [`team-${i}`] }, tools: [`team_${i}_*`] });
  for (let i = 0; i < 10; i++) rules.push({ id: `fence-${i}`, effect: 'deny', resources: [`file:///secret/${i}/*`] });
  for (let i = 0; i < 5; i++) rules.push({ id: `args-${i}`, effect: 'deny', tools: ['*'], arguments: [{ pointer: '/path', prefix: `/forbidden/${i}/` }] });
  for (let i = 0; i < 5; i++) rules.push({ id: `methods-${i}`, effect: 'deny', when: { clients: [`blocked-${i}`] }, methods: ['tools/*'] });
  for (let i = 0; i < 4; i++) rules.push({ id: `step-up-${i}`, effect: 'deny', unlessScopes: ['admin'], tools: [`admin_${i}_*`] });
  rules.push({ id: 'bench-echo', effect: 'allow', when: { clients: ['bench'] }, tools: ['echo'], arguments: [{ pointer: '/message', oneOf: ['hello'] }] });
  return rules;
}
