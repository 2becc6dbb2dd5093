/**
 * `npx tsx bench/agent-safety.ts [seconds] [rounds]`: the cost of budgets (session, principal and
 * a per-tool budget, loop breaker on) and the audit trail (file sink), against both off, on the
 * memory store. Target >= 0.85x. Run `npm run build` first.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compareConfigs } from './policy.js';

const big = { points: 1_000_000_000, duration: '1h' };
await compareConfigs({
  off: 'budgets+audit off',
  on: 'budgets+audit on',
  extra: {
    budgets: { session: big, principal: big, tools: [{ tools: ['echo'], ...big }] },
    // The bench repeats one call: the breaker must not trip (it is measured, not exercised).
    loopBreaker: { maxRepeats: 100_000, window: '1s', coolDown: '1s' },
    audit: { sinks: ['file'], file: path.join(mkdtempSync(path.join(tmpdir(), 'mcpw-bench-audit-')), 'audit.jsonl'), key: 'bench-audit-key-0123456789abcdef-0123' },
  },
  target: 0.85,
  durationSeconds: Number(process.argv[2] ?? 3),
  rounds: Number(process.argv[3] ?? 4),
});
