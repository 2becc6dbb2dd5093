/**
 * The docs people navigate: every relative link in README.md, docs/ and deploy/ READMEs leads to a
 * file that exists, and every #anchor to a heading of that file (GitHub's slug rules); the README
 * stays a few screens long.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pages = ['README.md', 'CHANGELOG.md', 'SECURITY.md', 'bench/README.md', 'deploy/README.md', 'deploy/kubernetes/README.md', 'deploy/secrets/README.md',
  ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = (heading[1] ?? '').replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** Markdown links `[text](target)` outside code blocks and spans. */
function links(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '');
}

t.test('every relative link and anchor in the docs resolves', async (t) => {
  let checked = 0;
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8');
    for (const link of links(text)) {
      if (/^(https?:|mailto:)/.test(link)) continue;
      checked++;
      const [path = '', anchor] = link.split('#');
      const target = path === '' ? join(root, page) : resolve(dirname(join(root, page)), path);
      const shown = `${page}: ${link}`;
      if (!target.startsWith(root) || !existsSync(target)) {
        t.fail(`${shown}: ${relative(root, target)} does not exist`);
        continue;
      }
      if (anchor !== undefined && statSync(target).isFile() && target.endsWith('.md')) {
        t.ok(anchors(readFileSync(target, 'utf8')).has(anchor), `${shown}: #${anchor} is a heading of ${relative(root, target)}`);
      }
    }
  }
  t.ok(checked > 30, `${checked} links checked`);
});

t.test('the README is a few screens; every page of docs/ is linked from it', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  t.ok(Buffer.byteLength(readme) < 15_000, `README.md is ${Buffer.byteLength(readme)} bytes (under 15 KB)`);
  const linked = new Set(links(readme).map((l) => l.split('#')[0]));
  for (const page of pages.filter((p) => p.startsWith('docs/'))) t.ok(linked.has(page), `README links ${page}`);
});

t.test('the anchor rule is GitHub\'s', async (t) => {
  t.same([...anchors('# Redis down: fail closed, recover by itself\n## `config print`\n## A\n## A\n```\n# not a heading\n```')],
    ['redis-down-fail-closed-recover-by-itself', 'config-print', 'a', 'a-1']);
});
