/** The policy glob matcher: a table of odd names and URIs, and properties against a regex reference. */
import t from 'tap';
import fc from 'fast-check';
import { anyGlob, compileGlob, globProblem } from '../../src/policy/glob.js';

t.test('table', async (t) => {
  const cases: [string, string, boolean][] = [
    ['delete_*', 'delete_ticket', true],
    ['delete_*', 'delete_', true],
    ['delete_*', 'Delete_ticket', false],
    ['delete_*', 'undelete_x', false],
    ['file:///etc/*', 'file:///etc/passwd', true],
    ['file:///etc/*', 'file:///etc/ssl/private/key.pem', true],
    ['file:///etc/*', 'file:///etc', false],
    ['file:///etc/*', 'file:///etcetera', false],
    ['*', '', true],
    ['*', 'anything/at all\n', true],
    ['?', 'é', true],
    ['?', '😀', true],
    ['?', 'e\u0301', false],
    ['caf\u00e9', 'cafe\u0301', false],
    ['caf\u00e9', 'caf\u00e9', true],
    ['a?c', 'a/c', true],
    ['a*b*c', 'aXbYbZc', true],
    ['a*b*c', 'aXbYbZ', false],
    ['\\*', '*', true],
    ['\\*', 'x', false],
    ['a\\?', 'a?', true],
    ['a\\?', 'ab', false],
    ['a\\\\b', 'a\\b', true],
    ['res://x/[id]/{a}.(b)+$^|', 'res://x/[id]/{a}.(b)+$^|', true],
    ['res://x/[id]', 'res://x/i', false],
    ['%2e%2e', '..', false],
    ['🔧_*', '🔧_fix', true],
    ['*😀', 'x😀', true],
    ['*😀', 'x\ud83d', false],
    ['**', 'x', true],
    ['*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000), false],
  ];
  for (const [pattern, value, want] of cases) t.equal(compileGlob(pattern).test(value), want, `${JSON.stringify(pattern)} ~ ${JSON.stringify(value)}`);
  t.ok(anyGlob([compileGlob('a'), compileGlob('b*')], 'bc'));
  t.notOk(anyGlob([], 'x'));
});

t.test('bad patterns are problems, and compiling one is a bug', async (t) => {
  for (const bad of ['', 'a\\', 'a\\b', 'x'.repeat(1025), 'a\ud800', '\udc00b']) {
    t.type(globProblem(bad), 'string', JSON.stringify(bad.slice(0, 20)));
    t.throws(() => compileGlob(bad), TypeError);
  }
  t.equal(globProblem('ok_*?\\*\\?\\\\'), null);
});

/** Reference: the same language as a regular expression over code points. */
function reference(pattern: string): RegExp {
  let source = '';
  const points = Array.from(pattern);
  for (let i = 0; i < points.length; i++) {
    const c = points[i] as string;
    if (c === '\\') source += (points[++i] as string).replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
    else if (c === '*') source += '[^]*';
    else if (c === '?') source += '.';
    else source += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su');
}

const unit = fc.constantFrom('a', 'b', '/', '.', 'é', 'e\u0301', '😀', '\n', '%', '[', '{', '$');
const patternPart = fc.oneof(unit, fc.constantFrom('*', '?', '\\*', '\\?', '\\\\'));
const pattern = fc.array(patternPart, { minLength: 1, maxLength: 8 }).map((p) => p.join(''));
const value = fc.array(fc.oneof(unit, fc.constantFrom('*', '?', '\\')), { maxLength: 10 }).map((v) => v.join(''));

t.test('properties', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(pattern, value, (p, v) => compileGlob(p).test(v) === reference(p).test(v)), { seed: 0x6101, numRuns: 20_000 }), 'agrees with a regular-expression reference on odd characters and unicode');
  t.doesNotThrow(() => fc.assert(fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((s) => !/[*?\\]/.test(s)), (s) => compileGlob(s).test(s) && !compileGlob(s).test(`${s}x`)), { seed: 0x6102, numRuns: 5_000 }), 'a pattern without wildcards matches exactly itself');
  t.doesNotThrow(() => fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 20 }), (prefix, rest) => {
    const escaped = prefix.replace(/[*?\\]/g, '\\$&');
    return prefix === '' || (compileGlob(`${escaped}*`).test(prefix + rest));
  }), { seed: 0x6103, numRuns: 5_000 }), 'an escaped prefix followed by * matches every extension');
});
