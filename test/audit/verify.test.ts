/**
 * `audit verify` against trails tampered in every way it must catch: an edited record, a missing
 * one, two swapped, one inserted, a checkpoint with a wrong signature, a trail re-signed with
 * another key, a cut-off tail, a damaged line; and the CLI's exit codes.
 */
import t from 'tap';
import { generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonical, checkpointMessage, lineHash, publicKeyOf } from '../../src/audit/chain.js';
import { createAuditTrail } from '../../src/audit/trail.js';
import type { AuditSink } from '../../src/audit/trail.js';
import { verifyTrail } from '../../src/audit/verify.js';
import { runCli, tempDir } from '../fixtures/admin-cli.js';

/** A real trail: start, 7 records with checkpoints every 3, a clean stop. */
async function trail(replica = 'r1'): Promise<{ lines: string[]; x: string; kid: string }> {
  const lines: string[] = [];
  const sink: AuditSink = { name: 'file', write: async (l) => void lines.push(...l.map((s) => s.trimEnd())), close: async () => {} };
  const audit = createAuditTrail({ replica, sinks: [sink], clock: Date.now, checkpointEvery: 3, checkpointIntervalMs: 60_000, maxQueue: 1000, onLoss: () => {} });
  for (let i = 0; i < 7; i++) audit.append({ principal: 'alice', method: 'tools/call', name: `tool${i}`, args: `d${i}`, decision: 'allow', status: 200 });
  await audit.close();
  return { lines, x: audit.publicKey.x, kid: audit.kid };
}

const parse = (line: string): Record<string, unknown> => JSON.parse(line) as Record<string, unknown>;
const rehash = (l: Record<string, unknown>): string => JSON.stringify({ ...l, hash: lineHash(l) });
const problems = (lines: string[], keys?: Map<string, ReturnType<typeof publicKeyOf>>) => verifyTrail(lines, keys).problems.map((p) => p.problem);

t.test('a whole trail verifies; each kind of tampering is found, and where', async (t) => {
  const { lines } = await trail();
  t.equal(lines.length, 1 + 7 + 2 + 1, 'start, records, two count checkpoints, the stop checkpoint');
  const clean = verifyTrail(lines);
  t.same(clean.problems, []);
  t.match(clean, { ok: true, records: 7, checkpoints: 3, replicas: ['r1'] });

  const edited = [...lines];
  edited[2] = JSON.stringify({ ...parse(lines[2] ?? ''), decision: 'deny' });
  t.match(problems(edited), [/^edited/], 'an edited record');

  const rehashedEdit = [...lines];
  rehashedEdit[2] = rehash({ ...parse(lines[2] ?? ''), decision: 'deny' });
  t.match(problems(rehashedEdit), [/^broken link/], 'an edited record with a recomputed hash breaks the next link');

  const missing = lines.filter((_, i) => i !== 3);
  t.match(problems(missing), [/^missing: seq 3/], 'a removed record');

  const swapped = [...lines];
  [swapped[2], swapped[3]] = [swapped[3] ?? '', swapped[2] ?? ''];
  t.match(problems(swapped), [/^missing: seq 2/, /^reordered or repeated/], 'two records swapped');

  const forged = rehash({ ...parse(lines[2] ?? ''), name: 'forged', seq: 3, prev: parse(lines[2] ?? '').hash });
  const inserted = [...lines.slice(0, 3), forged, ...lines.slice(3)];
  t.match(problems(inserted), [/^reordered or repeated|^broken link/], 'an inserted record');

  const badSig = lines.map((l) => {
    const line = parse(l);
    return line.type === 'checkpoint' && line.reason === 'count' ? rehash({ ...line, sig: Buffer.alloc(64, 7).toString('base64url') }) : l;
  });
  t.ok(problems(badSig).some((p) => p === 'bad checkpoint signature'), 'a checkpoint signature that does not verify');

  const cut = lines.slice(0, 7);
  t.match(problems(cut), [/ends without a final checkpoint: 2 record\(s\) since the last checkpoint/], 'a truncated tail');

  const damaged = [...lines];
  damaged[5] = '{"v":1,"type":"rec';
  t.ok(problems(damaged).some((p) => p.startsWith('not JSON')), 'a damaged line');
});

t.test('trusted keys: a trail rewritten and re-signed with another key is refused', async (t) => {
  const { lines, x, kid } = await trail();
  const keys = new Map([[kid, publicKeyOf({ kty: 'OKP', crv: 'Ed25519', x })]]);
  t.same(problems(lines, keys), [], 'the operator\'s key verifies its trail');
  // A forger recomputes every hash and signs every checkpoint with a key of their own.
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  let prev = '';
  const rewritten = lines.map((l) => {
    const line: Record<string, unknown> = { ...parse(l), prev };
    if (line.type === 'start') Object.assign(line, { jwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, kid: 'forged' });
    if (line.type === 'record') line.decision = 'allow-forged';
    if (line.type === 'checkpoint') Object.assign(line, { kid: 'forged', sig: sign(null, checkpointMessage(String(line.replica), Number(line.seq), prev), privateKey).toString('base64url') });
    const text = rehash(line);
    prev = String(parse(text).hash);
    return text;
  });
  t.same(problems(rewritten), [], 'without trusted keys a consistent rewrite cannot be told apart: pass --public-key');
  t.match(problems(rewritten, keys)[0], /key forged is not one of the trusted keys/);
  t.ok(problems(rewritten, keys).includes('bad checkpoint signature'));
});

t.test('two replicas in one file: each chain is checked on its own', async (t) => {
  const a = await trail('pod-a');
  const b = await trail('pod-b');
  const mixed = a.lines.flatMap((l, i) => [l, b.lines[i] ?? '']).filter(Boolean);
  t.match(verifyTrail(mixed), { ok: true, replicas: ['pod-a', 'pod-b'], records: 14 });
});

t.test('mcp-warden audit verify: exit 0 for a whole trail, 1 with the problems listed', async (t) => {
  const { lines, x } = await trail();
  const dir = tempDir();
  const good = join(dir, 'good.jsonl');
  writeFileSync(good, `${lines.join('\n')}\n`);
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, `${lines.filter((_, i) => i !== 4).join('\n')}\n`);
  const ok = await runCli(['audit', 'verify', good, `--public-key=${x}`]);
  t.equal(ok.error, null);
  t.match(ok.stdout, /7 records, 3 checkpoints, replicas: r1\nOK: the trail is whole/);
  t.equal(Number(process.exitCode ?? 0), 0);
  const failed = await runCli(['audit', 'verify', bad]);
  t.match(failed.stdout, /line 5 \(r1 seq 5\): missing: seq 4 not found/);
  t.match(failed.stdout, /FAILED: 1 problem\(s\)/);
  t.equal(process.exitCode, 1);
  process.exitCode = 0;
});

t.test('canonical JSON: JSON.stringify of the value with every object\'s keys sorted, at any depth', async (t) => {
  const sortedDeep = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : sortedDeep(x)));
    if (typeof v !== 'object' || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      out[k] = x === undefined ? null : sortedDeep(x);
    }
    return out;
  };
  const values: unknown[] = [
    null, 0, -1.5, 'a"b\\c\n', true, [], {}, [1, [2, [3]]], { b: 1, a: { d: [{ z: 1, y: 2 }], c: null } },
    { 'é': 1, e: 2, 'ß': [true, false], '': 'empty key' }, { u: undefined, n: null }, [undefined, 1],
    { nested: { deeper: { deepest: ['x', { k2: 2, k1: 1 }] } } },
  ];
  for (const value of values) t.equal(canonical(value), JSON.stringify(sortedDeep(value)), JSON.stringify(value) ?? 'undefined');
  t.equal(canonical({ b: 1, a: 2 }), canonical({ a: 2, b: 1 }), 'key order does not matter');
});
