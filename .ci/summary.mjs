// Turns tap's closing comment `# { total: N, pass: P, fail: F, ... }` into "P passed, F failed",
// summed over every run given: `node .ci/summary.mjs <log> <status> [<log> <status> ...]` (CI runs
// the fast tier and the slow tier, and reads one line for both).
// A non-zero exit with no failed assertion (coverage below threshold, a crashed file) counts as one failure.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 0 || args.length % 2 !== 0) {
  console.error('usage: node .ci/summary.mjs <log> <status> [<log> <status> ...]');
  process.exit(2);
}

let passed = 0;
let failed = 0;
for (let i = 0; i < args.length; i += 2) {
  const logPath = args[i];
  const status = Number(args[i + 1]);
  const lines = readFileSync(logPath, 'utf8').split('\n');
  const summary = lines.reverse().find((line) => /^# \{ total: \d+/.test(line));
  const count = (name) => Number(new RegExp(`${name}: (\\d+)`).exec(summary ?? '')?.[1] ?? 0);
  passed += count('pass');
  let runFailed = count('fail');
  if (status !== 0 && runFailed === 0) {
    runFailed = 1;
    console.log(`${logPath}: ${summary ? 'tap exited non-zero without a failed assertion (coverage threshold or a crashed test file)' : 'tap printed no summary'}`);
  }
  failed += runFailed;
}
console.log(`${passed} passed, ${failed} failed`);
