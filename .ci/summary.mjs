// Turns tap's closing comment `# { total: N, pass: P, fail: F, ... }` into "P passed, F failed".
// A non-zero exit with no failed assertion (coverage below threshold, a crashed file) counts as one failure.
import { readFileSync } from 'node:fs';

const [logPath, statusText] = process.argv.slice(2);
const status = Number(statusText);
const lines = readFileSync(logPath, 'utf8').split('\n');
const summary = lines.reverse().find((line) => /^# \{ total: \d+/.test(line));
const count = (name) => Number(new RegExp(`${name}: (\\d+)`).exec(summary ?? '')?.[1] ?? 0);
const passed = count('pass');
let failed = count('fail');
if (status !== 0 && failed === 0) {
  failed = 1;
  console.log(summary ? 'tap exited non-zero without a failed assertion (coverage threshold or a crashed test file)' : 'tap printed no summary');
}
console.log(`${passed} passed, ${failed} failed`);
