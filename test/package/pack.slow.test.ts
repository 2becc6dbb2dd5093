/**
 * The published package, as a user gets it: `npm pack` the repository, install the tarball into an
 * empty project (production dependencies only, from npm's cache when it has them) and run the
 * installed `mcp-warden` binary. Catches a `files` list that leaves out what the CLI imports, a
 * `bin` that is not executable, and a tarball without its legal and security documents.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; license: string };
const work = mkdtempSync(join(tmpdir(), 'mcpw-pack-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

// Offline-capable: npm's cache answers when it can; no audit or funding round trips.
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund'];

/** Polls `check` until it returns something, or null after `ms`. */
async function until<T>(check: () => T | null, ms: number): Promise<T | null> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== null || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function npm(args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 90_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.error) throw r.error;
  return r;
}

// `npm run test:slow` builds dist/ first (pretest:slow); packing with --ignore-scripts reuses that build instead
// of running `prepare` (a second tsc run) on a machine the suite already keeps busy.
t.ok(existsSync(join(root, 'dist/cli/index.js')), 'dist/ is built (npm run build)');
const packed = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
t.equal(packed.status, 0, `npm pack: ${packed.stderr}`);
const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
const tarball = join(work, info.filename);
const packedFiles = new Set(info.files.map((f) => f.path));

t.test('the tarball carries the program, the example config and the documents', async (t) => {
  t.equal(info.filename, `${pkg.name}-${pkg.version}.tgz`);
  for (const file of ['package.json', 'README.md', 'LICENSE', 'SECURITY.md', 'CHANGELOG.md', 'proxy.config.example.json', 'mcp-warden.schema.json', 'dist/cli/index.js', 'dist/index.js', 'dist/index.d.ts']) {
    t.ok(packedFiles.has(file), `${file} is in the tarball`);
  }
  const stray = [...packedFiles].filter((f) => /^(src|test|bench|demo|deploy|node_modules|\.ci)\//.test(f));
  t.same(stray, [], 'no sources, tests, bench, demo, deploy files or node_modules');
  t.equal(pkg.license, 'MIT');
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  t.match(license, /^MIT License/);
  t.match(license, /Copyright \(c\) \d{4} mcp-warden contributors/);
  t.match(readFileSync(join(root, 'CHANGELOG.md'), 'utf8'), new RegExp(`## \\[${pkg.version.replace(/\./g, '\\.')}\\]`), 'CHANGELOG has a section for the package version');
});

t.test('installed into an empty project, the binary runs', async (t) => {
  const project = join(work, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'pack-consumer', private: true }));
  const install = npm(['install', tarball, '--omit=dev', ...NPM_FLAGS], project);
  t.equal(install.status, 0, `npm install <tgz>: ${install.stderr}`);
  t.ok(existsSync(join(project, 'node_modules/.bin/mcp-warden')), 'the bin link exists');
  t.notOk(existsSync(join(project, 'node_modules/tap')), 'no dev dependency came along');

  const help = spawnSync('npx', ['--no-install', 'mcp-warden', '--help'], { cwd: project, encoding: 'utf8', timeout: 30_000 });
  t.equal(help.status, 0, `mcp-warden --help: ${help.stderr}`);
  t.match(help.stdout, /^mcp-warden\n/);
  t.match(help.stdout, /Commands:/);
  for (const command of ['serve', 'init', 'token', 'config', 'doctor']) t.match(help.stdout, new RegExp(`mcp-warden ${command}\\b`), `--help lists ${command}`);

  const version = spawnSync('npx', ['--no-install', 'mcp-warden', '--version'], { cwd: project, encoding: 'utf8', timeout: 30_000 });
  t.equal(version.stdout.trim(), pkg.version, '--version is the package version');

  // A SIGTERM to npx stops the proxy too: npm exits without passing it on, the proxy sees its
  // parent gone and shuts down as if signalled (before, it ran on, orphaned).
  const served = spawn('npx', ['--no-install', 'mcp-warden', '--upstream', 'http://127.0.0.1:9/mcp', '--port', '0'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  served.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const start = await until(() => /"pid":(\d+)/.exec(out), 30_000);
  const pid = Number(start?.[1]);
  t.ok(pid > 0 && pid !== served.pid, 'the proxy runs in a process of its own, below npm');
  served.kill('SIGTERM');
  const gone = await until(() => {
    try {
      process.kill(pid, 0);
      return null;
    } catch {
      return true;
    }
  }, 10_000);
  t.ok(gone, 'the proxy exited after npx was sent SIGTERM');
  if (!gone) process.kill(pid, 'SIGKILL');
  t.match(out, /"signal":"parent exited","msg":"shutting down"/, 'a graceful shutdown, not a kill');

  // The library entry point (package.json `main`) loads from the installed copy too.
  const lib = spawnSync(process.execPath, ['--input-type=module', '-e', "const m = await import('mcp-warden'); console.log(typeof m.createWarden)"], { cwd: project, encoding: 'utf8', timeout: 30_000 });
  t.equal(lib.stdout.trim(), 'function', `import('mcp-warden'): ${lib.stderr}`);
});

t.test('npx ./<tarball> --help runs it without a project (the README path)', async (t) => {
  // Only --yes and --prefer-offline here: npx (npm 11) given --no-audit/--no-fund before the
  // package answers its own usage text instead of running the package.
  const r = spawnSync('npx', ['--yes', '--prefer-offline', `./${info.filename}`, '--help'], { cwd: work, encoding: 'utf8', timeout: 90_000 });
  t.equal(r.status, 0, `npx ./tgz --help: ${r.stderr}`);
  t.match(r.stdout, /--upstream/);
});
