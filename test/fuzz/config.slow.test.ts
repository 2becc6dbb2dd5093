/**
 * Hostile configuration files: arbitrary bytes, arbitrary JSON and mutated real configs go through
 * `loadConfig({ file })`, which must answer ok or a list of problems (exit 2), never throw; and
 * through the built binary (`config check`), which must exit 2 and print one line per problem, each
 * starting with its key path, whatever bytes the keys and values held.
 */
import t from 'tap';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { printProblems } from '../../src/cli/options.js';
import { validateConfig } from '../../src/config/validate.js';
import { forEachField } from '../../src/config/fields.js';
import { schema } from '../../src/config/schema.js';
import { hostileString, tally } from '../fixtures/fuzz.js';

const fuzz = tally();
// About 10-15 s of CPU; the longer limit only keeps a heavily shared CI box from killing a run that
// is slow, not stuck (each spawn has its own 30 s limit).
t.setTimeout(300_000);
const started = performance.now();
const bin = new URL('../../dist/cli/index.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mcpw-fuzz-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// Files a `...File` key may point at: good, short, empty, a bare newline, a directory, nothing.
const files = {
  good: join(dir, 'secret-good'),
  short: join(dir, 'secret-short'),
  empty: join(dir, 'secret-empty'),
  newline: join(dir, 'secret-newline'),
  directory: join(dir, 'a-directory'),
  missing: join(dir, 'does-not-exist'),
};
writeFileSync(files.good, 'a-secret-file-of-at-least-32-bytes-0123456789\n');
writeFileSync(files.short, 'short\n');
writeFileSync(files.empty, '');
writeFileSync(files.newline, '\n');
mkdirSync(files.directory);
const fileRef = fc.oneof(fc.constantFrom(...Object.values(files)), hostileString(20), fc.constant(`${dir}/with\nnewline`));

const BASE = {
  listen: { host: '127.0.0.1', port: 0 },
  upstreams: ['http://127.0.0.1:3000/mcp'],
  tokens: { secretFile: files.good },
  clients: [{ id: 'agent-1', secretFile: files.good, scopes: ['mcp'] }, { id: 'agent-2', secret: 'a-client-secret-0123' }],
  security: { allowedOrigins: ['https://app.example'] },
};
const LEAVES: string[] = [];
forEachField(schema, (path) => LEAVES.push(path));
// Keys that become setTimeout delays (headersTimeout and requestTimeout are checked by the HTTP server instead).
const TIMERS = ['security.upstreamTimeout', 'shutdownGrace', 'store.commandTimeout'];
const MAX_TIMER_MS = 2 ** 31 - 1;

function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() ?? '';
  let node = root;
  for (const key of keys) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true });
}

const value = fc.oneof(fc.jsonValue({ maxDepth: 3 }), hostileString(30), fileRef, fc.constantFrom(null, -1, 0, 70_000, '', '25d', '24d', '999999999d', '1h', 'redis', 'EdDSA', '/oauth', ['::/200'], { points: 0 }));
const key = fc.oneof(hostileString(12), fc.constantFrom('', '__proto__', 'constructor', 'a\nb', 'a\r\n  fake.path: injected', '\u001b[31mred', 'listen.port'));
const mutatedConfig = fc
  .tuple(fc.array(fc.tuple(fc.constantFrom(...LEAVES, 'clients.0.secretFile', 'tokens.secret'), value), { maxLength: 3 }), fc.array(fc.tuple(fc.constantFrom('', 'listen', 'tokens', 'security', 'rateLimits.client'), key, value), { maxLength: 2 }))
  .map(([changes, extras]) => {
    const raw = JSON.parse(JSON.stringify(BASE)) as Record<string, unknown>;
    // Each value copied: a constant arbitrary hands out one object, and a later change that sets a
    // path inside it would then make the config circular (FUZZ_SEED=1925280467 found it).
    const copy = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;
    for (const [path, v] of changes) setPath(raw, path, copy(v));
    for (const [group, k, v] of extras) setPath(raw, group ? `${group}.${k}` : k, copy(v));
    return JSON.stringify(raw);
  });
const fileText = fc.oneof(
  { weight: 4, arbitrary: mutatedConfig },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 2, arbitrary: hostileString(200) },
  { weight: 1, arbitrary: fc.constantFrom('', '\ufeff{}', '{"listen":', '[]', 'null', '{}\n{}', '{"a":1,}', '// comment\n{}', `{"upstreams":["http://x"]${' '.repeat(10)}}`) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('[', '{"a":'), fc.integer({ min: 1_000, max: 20_000 })).map(([open, depth]) => open.repeat(depth) + (open === '[' ? ']'.repeat(depth) : `1${'}'.repeat(depth)}`)) },
);

/** Problems a good config can still get once files are read (everything else is validateConfig's). */
const FILE_KEYS = /^(tokens\.secretFile|store\.passwordFile|clients\[\d+\]\.secretFile|(admin|audit|tls)\.keyFile|tls\.certFile)$/;

t.test('loadConfig on arbitrary files', async (t) => {
  const path = join(dir, 'config.json');
  await fuzz.check(t, 'never throws: ok and frozen, or every problem with a key path (exit 2); the same verdict as validateConfig', fc.asyncProperty(fileText, async (text) => {
    writeFileSync(path, text);
    const result = await loadConfig({ file: path, env: {} });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return !result.ok && result.problems.length === 1 && result.problems[0]?.path === '(file)';
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return !result.ok && result.problems[0]?.path === '(file)';
    const validated = validateConfig(parsed);
    if (!validated.ok) return !result.ok && JSON.stringify(result.problems) === JSON.stringify(validated.problems);
    if (result.ok) {
      const { config } = result;
      const secretsRead = config.tokens.secretFile === null && config.clients.every((c) => c.secretFile === null || (typeof c.secret === 'string' && c.secret.length > 0));
      return Object.isFrozen(config) && Object.isFrozen(config.tokens) && secretsRead && TIMERS.every((k) => Number(k.split('.').reduce<unknown>((n, p) => (n as Record<string, unknown>)[p], config)) <= MAX_TIMER_MS);
    }
    return result.problems.length > 0 && result.problems.every((p) => FILE_KEYS.test(p.path) && p.message.length > 0);
  }), { seed: 0xf11e, numRuns: 1_000 });

  t.test('table', async (t) => {
    const load = async (raw: unknown): Promise<string[]> => {
      writeFileSync(path, typeof raw === 'string' ? raw : JSON.stringify(raw));
      const result = await loadConfig({ file: path, env: {} });
      return result.ok ? [] : result.problems.map((p) => p.path);
    };
    t.same(await load(BASE), [], 'the base config loads (so the refusals come from the changes)');
    t.same(await load('['.repeat(100_000) + ']'.repeat(100_000)), ['(file)'], '100k nested arrays: not an object');
    t.same(await load({ ...BASE, tokens: { secretFile: files.short } }), ['tokens.secretFile']);
    // Found by a random seed (1610529933): validateConfig passed a short audit.key that loading refused.
    t.same(await load({ ...BASE, audit: { key: '\u0000' } }), ['audit.key'], 'a short audit key, with or without sinks');
    t.same(await load({ ...BASE, tokens: { secretFile: files.directory } }), ['tokens.secretFile']);
    t.same(await load({ ...BASE, tokens: { secretFile: files.newline } }), ['tokens.secretFile'], 'a file holding only a newline is empty');
    t.same(await load({ ...BASE, clients: [{ id: 'a', secretFile: files.missing }] }), ['clients[0].secretFile']);
    // Found by a commit's seed (717168088): a missing audit.keyFile is a loading problem, as it should be;
    // the property's list of the keys loading reads files for lacked it (and admin.keyFile).
    t.same(await load({ ...BASE, audit: { keyFile: files.missing } }), ['audit.keyFile']);
    // Regression: Node timers hold at most 2^31-1 ms; a longer one fires after 1 ms, so a valid-looking
    // "25d" upstream timeout made every forwarded request a 504 (and a Redis command timeout a 503).
    for (const timer of TIMERS) {
      const raw = JSON.parse(JSON.stringify(BASE)) as Record<string, unknown>;
      setPath(raw, timer, '25d');
      t.same(await load(raw), [timer], `${timer}: 25d is refused`);
      setPath(raw, timer, '24d');
      t.same(await load(raw), [], `${timer}: 24d is fine`);
    }
  });
});

t.test('table: problem reports stay one line per problem', async (t) => {
  // Regressions found by the binary property below: a key or a file path with a line break (or an
  // empty key) printed as several lines, or as a line without a key path ("  : is not a known key").
  const result = validateConfig(JSON.parse('{"":1," listen":2,"a\\nb":3,"x\\u2028":4,"listen":{"\\u001b[2J":5}}'));
  t.same(result.ok ? [] : result.problems.map((p) => p.path), ['""', '" listen"', '"a\\nb"', '"x\u2028"', 'listen."\\u001b[2J"'], 'odd keys are shown quoted, as JSON strings');
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write;
  try {
    printProblems([{ path: 'tokens.secretFile', message: `cannot read ${dir}/with\nnewline\u2028x: ENOENT` }, { path: 'a\rb', message: '\u001b[2Jclear' }]);
  } finally {
    process.stderr.write = write;
  }
  const lines = written.join('').replace(/\n$/, '').split('\n');
  t.equal(lines.length, 3, 'a header and one line per problem');
  t.match(lines[1] ?? '', /^ {2}tokens\.secretFile: cannot read .*\\u000anewline\\u2028x: ENOENT$/);
  t.equal(lines[2], '  a\\u000db: \\u001b[2Jclear');
});

/** A test message that cannot break tap's own line-oriented output. */
const ascii = (text: string): string => text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

t.test('config check (the built binary) on generated bad files', async (t) => {
  const seed = fuzz.seed(0xc11);
  const runs = 20;
  // Bad for certain, and rich in keys and values that could break a line-per-problem report.
  const bad = fc.oneof(
    mutatedConfig.filter((text) => !validateConfig(JSON.parse(text)).ok),
    fc.tuple(key, value).map(([k, v]) => {
      const raw = JSON.parse(JSON.stringify(BASE)) as Record<string, unknown>;
      setPath(raw, k, v);
      Object.defineProperty(raw, `${k}\n`, { value: 1, enumerable: true });
      return JSON.stringify(raw);
    }),
    hostileString(60).filter((text) => { try { JSON.parse(text); return false; } catch { return true; } }),
    // Valid until the files are read: the problem message carries the path as written.
    fc.constantFrom(files.missing, files.empty, `${dir}/with\nnewline`, `${dir}/\u001b[2J`).map((secretFile) => JSON.stringify({ ...BASE, tokens: { secretFile } })),
  );
  const samples = fc.sample(bad, { seed, numRuns: runs });
  fuzz.record(t, 'config check exits 2 with one key-path line per problem', { seed, numRuns: samples.length });

  const run = (file: string): Promise<{ code: number | null; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [bin, 'config', 'check', '--config', file], { env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 }, (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr });
      });
    });
  const results: { text: string; code: number | null; stderr: string; expected: number }[] = [];
  const queue = samples.map((text, i) => ({ text, file: join(dir, `bad-${i}.json`) }));
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        writeFileSync(job.file, job.text);
        const inProcess = await loadConfig({ file: job.file, env: {} });
        const { code, stderr } = await run(job.file);
        results.push({ text: job.text, code, stderr, expected: inProcess.ok ? 0 : inProcess.problems.length });
      }
    }),
  );
  for (const { text, code, stderr, expected } of results) {
    const name = ascii(text.slice(0, 60));
    const [header = '', ...lines] = stderr.replace(/\n$/, '').split('\n');
    t.equal(code, 2, `exit 2: ${name}`);
    t.match(header, /^mcp-warden: invalid configuration \((\d+) problems?\):$/, `header line: ${name}`);
    t.equal(Number(/\((\d+) problem/.exec(header)?.[1]), expected, `counts every problem: ${name}`);
    t.equal(lines.length, expected, `one line per problem: ${name}`);
    const malformed = lines.filter((line) => !/^ {2}\S.*?: \S/.test(line) || /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/.test(line));
    t.same(malformed.map(ascii), [], `every line is "  <key path>: <message>" without control characters: ${name}`);
  }
});

t.test('case total', async (t) => {
  t.comment(`config: ${fuzz.total} generated cases in ${Math.round(performance.now() - started)} ms`);
  t.ok(fuzz.total >= 1_000, `at least 1,000 cases in this file (ran ${fuzz.total})`);
});
