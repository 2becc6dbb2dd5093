/**
 * `npx tsx bench/ab.ts <git revision> [seconds] [rounds] [memory|redis|redis-cached]`: this working tree's build
 * against another revision's, in one run: both as mcp-warden processes (memory store, or each its
 * own key prefix on the Redis at MCP_WARDEN_BENCH_REDIS, default 127.0.0.1:6379) in front of the
 * bench upstream, same config, interleaved rotated rounds. The revision is checked out into a
 * temporary git worktree (this checkout's node_modules linked in) and compiled there. For changes
 * that must cost nothing measurable (the A/B rule of the redesign issue). `npm run build` first.
 * A change of dependencies: BASE_NODE_MODULES=<the base's node_modules> links that one instead,
 * so each side runs on its own versions (the base may not even compile against the new ones).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compareConfigs } from './policy.js';

const revision = process.argv[2];
if (!revision) {
  process.stderr.write('usage: npx tsx bench/ab.ts <git revision> [seconds] [rounds] [memory|redis|redis-cached]\n');
  process.exit(2);
}
const root = process.cwd();
const dir = path.join(mkdtempSync(path.join(tmpdir(), 'mcpw-bench-ab-')), 'tree');
const git = (...args: string[]): string => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
const short = git('rev-parse', '--short', revision);
git('worktree', 'add', '--detach', dir, revision);
try {
  symlinkSync(process.env.BASE_NODE_MODULES ?? path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  await compareConfigs({
    off: `${short} (base)`,
    on: 'this tree',
    offCli: path.join(dir, 'dist/cli/index.js'),
    extra: {},
    target: 0.95,
    durationSeconds: Number(process.argv[3] ?? 3),
    rounds: Number(process.argv[4] ?? 6),
    ...(process.argv[5] === 'redis' || process.argv[5] === 'redis-cached' ? {
      shared: (target: 'off' | 'on') => ({
        store: { type: 'redis', url: process.env.MCP_WARDEN_BENCH_REDIS ?? 'redis://127.0.0.1:6379', keyPrefix: `mcpw-ab-${process.pid}-${target}:`, clientCache: process.argv[5] === 'redis-cached' },
      }),
    } : {}),
  });
} finally {
  git('worktree', 'remove', '--force', dir);
  rmSync(path.dirname(dir), { recursive: true, force: true });
}
