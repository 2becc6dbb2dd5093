/**
 * deploy/prometheus and deploy/grafana against the program: the alert rules pass `promtool check
 * rules` and their unit tests (`promtool test rules`, Debian's `prometheus` package), and every
 * PromQL expression in the rules and the dashboard names only metrics, and label names, that
 * createMetrics really registers (read from a live registry, not from a list kept by hand).
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { createMetrics } from '../../src/observability/metrics.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const RULES = 'deploy/prometheus/alerts.yml';
const RULE_TESTS = 'deploy/prometheus/alerts.test.yml';
const DASHBOARD = 'deploy/grafana/mcp-warden.json';

// ---------- what /metrics exports: name -> label names ----------

const metrics = createMetrics(undefined, { sessionsActive: async () => 0 });
const exported = new Map<string, Set<string>>();
for (const m of await metrics.registry.getMetricsAsJSON()) {
  const labels = new Set((metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? []);
  if (String(m.type) === 'histogram') {
    exported.set(`${m.name}_bucket`, new Set([...labels, 'le']));
    exported.set(`${m.name}_sum`, labels);
    exported.set(`${m.name}_count`, labels);
  } else exported.set(m.name, labels);
}
// Labels Prometheus adds to every scraped series.
const TARGET_LABELS = new Set(['job', 'instance']);

// ---------- a small PromQL reader: selectors (metric + matcher label names) ----------

const FUNCTION_OR_KEYWORD = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);
interface Selector { readonly metric: string; readonly labels: string[] }

/** The vector selectors of an expression. Grafana variables are replaced by what they stand for. */
function selectors(expr: string): Selector[] {
  let s = expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m');
  const found: Selector[] = [];
  // Matchers first, while their quoted values are intact: name? { label op "value", ... }.
  s = s.replace(/([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}/g, (_, metric: string | undefined, body: string) => {
    const labels = [...body.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)].map((m) => m[1]!);
    found.push({ metric: metric ?? '', labels });
    return ' ';
  });
  s = s
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\d+[a-z]+/g, ' ')
    .replace(/\b[A-Za-z_][A-Za-z0-9_]*\s*\(/g, '(') // function calls
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, ' ');
  for (const [name] of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) if (!FUNCTION_OR_KEYWORD.has(name.toLowerCase())) found.push({ metric: name, labels: [] });
  return found;
}

/** What is wrong with an expression's selectors: unknown metrics, unknown labels, no mcp-warden metric. */
function problems(expr: string): string[] {
  const sels = selectors(expr);
  const out: string[] = [];
  if (!sels.some((s) => s.metric.startsWith('mcp_warden_'))) out.push('reads no mcp_warden_ metric');
  for (const { metric, labels } of sels) {
    const known = exported.get(metric);
    if (!known) {
      out.push(`${metric || '(a selector without a metric name)'} is not a metric src/observability/metrics.ts exports`);
      continue;
    }
    for (const label of labels) if (!known.has(label) && !TARGET_LABELS.has(label)) out.push(`${metric} has no label "${label}"`);
  }
  return out;
}

function checkExpr(t: Test, where: string, expr: string): void {
  t.same(problems(expr), [], `${where}: real metrics and labels only`);
}

function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool did not run (apt-get install -y prometheus): ${r.error.message}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

// ---------- the checks ----------

t.test('the PromQL reader finds metrics and matcher labels, not functions or grouping labels', async (t) => {
  t.same(
    selectors('sum by (job, le) (rate(a_bucket{job=~"$job",code="X"}[5m] offset 1h)) / on (job) group_left count(b) > 0.5 and c'),
    [{ metric: 'a_bucket', labels: ['job', 'code'] }, { metric: 'b', labels: [] }, { metric: 'c', labels: [] }],
  );
  t.same(selectors('histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))'), [{ metric: 'x_bucket', labels: [] }]);
  t.ok(exported.has('mcp_warden_requests_total') && exported.get('mcp_warden_requests_total')!.has('status'), 'the registry is read with label names');
  // The checks below would catch a misspelt metric or label, or a query of someone else's metrics.
  t.match(problems('sum(rate(mcp_warden_request_total[5m]))'), [/mcp_warden_request_total is not a metric/]);
  t.match(problems('rate(mcp_warden_auth_failures_total{code="X"}[5m])'), [/has no label "code"/]);
  t.match(problems('up == 0'), [/no mcp_warden_ metric/, /up is not a metric/]);
  t.same(problems('rate(mcp_warden_upstream_latency_seconds_bucket{le="1",job="x"}[5m])'), []);
});

t.test(`${RULES}: promtool check rules, the required alerts, real metrics only`, async (t) => {
  const check = promtool(['check', 'rules', RULES]);
  t.equal(check.status, 0, check.out);
  t.match(check.out, /SUCCESS: \d+ rules found/);

  const doc = parse(readFileSync(join(root, RULES), 'utf8')) as { groups: { name: string; rules: { alert?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);
  const names = rules.map((r) => r.alert);
  for (const required of ['MCPWardenStoreDown', 'MCPWarden5xxRatioHigh', 'MCPWardenAuthFailureSpike', 'MCPWardenAddressesBlocked', 'MCPWardenUpstreamErrors', 'MCPWardenSessionCapPressure']) {
    t.ok(names.includes(required), `${required} is defined`);
  }
  for (const rule of rules) {
    checkExpr(t, `${rule.alert}`, rule.expr);
    t.match(rule.labels?.severity ?? '', /^(critical|warning|info)$/, `${rule.alert}: a severity`);
    t.ok(rule.annotations?.summary && rule.annotations.description, `${rule.alert}: summary and description`);
  }
  // Refusal codes and limiter names in the rules are ones the program produces.
  const codes = readFileSync(join(root, 'src/errors.ts'), 'utf8');
  for (const rule of rules) {
    for (const [, code] of rule.expr.matchAll(/code=~?"([^"]+)"/g)) for (const c of code!.split('|')) t.match(codes, new RegExp(`\\b${c}: \\{`), `${rule.alert}: ${c} is in the error catalog`);
    for (const [, limiter] of rule.expr.matchAll(/limiter=~?"([^"]+)"/g)) for (const l of limiter!.split('|')) t.ok(['failed_attempts', 'sessions', 'streams', 'client'].includes(l) || codes.includes(`'${l}'`), `${rule.alert}: limiter ${l} is one warden.ts counts`);
  }
});

t.test(`${RULE_TESTS}: promtool test rules (alerts fire on an outage, stay quiet on healthy traffic)`, async (t) => {
  const r = promtool(['test', 'rules', RULE_TESTS]);
  t.equal(r.status, 0, r.out);
  t.match(r.out, /SUCCESS/);
  const tests = (parse(readFileSync(join(root, RULE_TESTS), 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests;
  const cases = tests.flatMap((x) => x.alert_rule_test);
  t.ok(cases.some((c) => c.exp_alerts.length > 0) && cases.some((c) => c.exp_alerts.length === 0), 'cases that fire and cases that do not');
  for (const series of tests.flatMap((x) => (x as unknown as { input_series: { series: string }[] }).input_series)) checkExpr(t, `input series ${series.series}`, series.series);
});

t.test(`${DASHBOARD}: a Grafana dashboard whose every query reads real metrics`, async (t) => {
  const dash = JSON.parse(readFileSync(join(root, DASHBOARD), 'utf8')) as {
    uid: string; title: string; schemaVersion: number;
    templating: { list: { name: string; query: unknown }[] };
    panels: { id: number; type: string; title: string; gridPos: { h: number; w: number; x: number; y: number }; targets?: { refId: string; expr: string }[] }[];
  };
  t.equal(dash.uid, 'mcp-warden');
  t.ok(dash.schemaVersion >= 36, 'a current dashboard schema');
  const ids = dash.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const queries = dash.panels.filter((p) => p.type !== 'row');
  t.ok(queries.length >= 10, `${queries.length} panels`);
  for (const p of dash.panels) t.ok(p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0, `${p.title}: fits the 24-column grid`);
  let exprs = 0;
  for (const p of queries) {
    t.ok((p.targets ?? []).length > 0, `${p.title}: has queries`);
    for (const target of p.targets ?? []) {
      exprs++;
      checkExpr(t, `panel "${p.title}" ${target.refId}`, target.expr);
    }
  }
  const job = dash.templating.list.find((v) => v.name === 'job');
  const jobQuery = (job?.query as { query?: string } | undefined)?.query ?? '';
  const inner = /^label_values\((.+),\s*job\)$/.exec(jobQuery);
  t.ok(inner, 'the job variable lists the jobs that export mcp-warden metrics');
  if (inner) checkExpr(t, 'variable job', inner[1]!);
  t.ok(exprs >= 15, `${exprs} expressions checked`);
});
