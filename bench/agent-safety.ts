/**
 * `npx tsx bench/agent-safety.ts [seconds] [rounds]`: the cost of budgets (session, principal and
 * a per-tool budget, loop breaker on) and the audit trail (file sink), against both off, on the
 * memory store. Target >= 0.85x. Run `npm run build` first.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { auditConfig, budgetsConfig } from './feature-configs.js';
import { compareConfigs } from './policy.js';

await compareConfigs({
  off: 'budgets+audit off',
  on: 'budgets+audit on',
  extra: { ...budgetsConfig(), ...auditConfig(path.join(mkdtempSync(path.join(tmpdir(), 'mcpw-bench-audit-')), 'audit.jsonl')) },
  target: 0.85,
  durationSeconds: Number(process.argv[2] ?? 3),
  rounds: Number(process.argv[3] ?? 4),
});
