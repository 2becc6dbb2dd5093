import t from 'tap';
import { readFileSync } from 'node:fs';
import client from 'prom-client';
import { SECURITY_EVENTS } from '../../src/observability/events.js';
import { createMetrics } from '../../src/observability/metrics.js';

const section = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');
const troubleshooting = readFileSync(new URL('../../docs/troubleshooting.md', import.meta.url), 'utf8');

/** First-column backticked names of the markdown table rows under a `## heading`. */
function tableNames(heading: string): string[] {
  const at = section.indexOf(`## ${heading}`);
  const next = section.indexOf('\n## ', at + 1);
  const body = section.slice(at, next === -1 ? undefined : next);
  return [...body.matchAll(/^\| `([a-z_.]+)(?:\{[a-z,]*\})?` \|/gm)].map((m) => m[1] ?? '');
}

t.test('docs/observability.md lists exactly the security events', async (t) => {
  t.ok(section.length > 0, 'docs/observability.md exists');
  t.same(tableNames('Logs and security events').sort(), [...SECURITY_EVENTS].sort());
});

t.test('docs/observability.md lists exactly our metrics', async (t) => {
  const defaults = new client.Registry();
  client.collectDefaultMetrics({ register: defaults, prefix: 'mcp_warden_' });
  const skip = new Set(defaults.getMetricsAsArray().map((m) => m.name));
  const names = (await createMetrics(new client.Registry(), { sessionsActive: async () => 0 }).registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !skip.has(n));
  t.same(tableNames('Metrics').sort(), names.sort());
});

t.test('docs/troubleshooting.md says what each refusal status means to a client', async (t) => {
  for (const status of ['401', '403', '404', '429', '503']) t.match(troubleshooting, new RegExp(`^\\| ${status} \\|`, 'm'), status);
  t.match(section, /only\*\* on the admin listener/, 'where /metrics is served');
});
