/**
 * Keeps deploy/ in step with the program. Docker and Kubernetes are not run here: the files are
 * parsed and checked against what mcp-warden really reads (schema env names, loadConfig on the
 * environment and mounted files each setup produces, the routes a running warden serves), and
 * the two entry commands (the image's HEALTHCHECK, the demo upstream) are run for real.
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { serveCommand } from '../../src/cli/serve.js';
import { forEachField } from '../../src/config/fields.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { schema } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import { createWarden } from '../../src/warden.js';

// deploy/demo-upstream.ts is outside tsconfig.json's `include`; naming its type here puts it in
// `tsc -p tsconfig.json`, so it is type-checked with the rest (a type only: nothing runs).
export type DemoUpstreamModule = typeof import('../../deploy/demo-upstream.js');

const root = fileURLToPath(new URL('../../', import.meta.url));
const deployDir = join(root, 'deploy');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

// ---------- narrowing parsed YAML/JSON (values start as unknown) ----------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
function obj(v: unknown, what: string): Obj {
  if (!isObj(v)) throw new Error(`${what} must be a mapping`);
  return v;
}
function list(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error(`${what} must be a list`);
  return v;
}
function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Error(`${what} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

/** Every file under deploy/, as repo-relative paths. */
function deployFiles(dir = deployDir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? deployFiles(path) : [relative(root, path)];
  });
}

/** YAML documents of a file. Kubernetes reads YAML 1.1 (0440 is octal there), compose 1.2. */
function yamlDocs(path: string, version: '1.1' | '1.2' = '1.2'): unknown[] {
  return parseAllDocuments(read(path), { version }).map((doc) => {
    if (doc.errors.length) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS();
  });
}

const knownEnv = new Set<string>(['MCP_WARDEN_CONFIG']);
forEachField(schema, (_path, field) => {
  if (field.env) knownEnv.add(field.env);
});

// ---------- Dockerfile ----------

interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Stage {
  readonly image: string;
  readonly name: string | null;
  readonly instructions: Instruction[];
}

/** Stages of a Dockerfile: comments dropped, continuation lines joined. */
function parseDockerfile(path: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  for (const raw of read(path).split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = `${pending}${line}`;
    pending = '';
    const m = /^(\S+)\s*(.*)$/s.exec(full);
    const op = (m?.[1] ?? '').toUpperCase();
    const args = m?.[2] ?? '';
    if (op === 'FROM') {
      const from = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ image: from?.[1] ?? '', name: from?.[2] ?? null, instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`${path}: ${op} before FROM`);
      stage.instructions.push({ op, args });
    }
  }
  return stages;
}

const argsOf = (stage: Stage, op: string): string[] => stage.instructions.filter((i) => i.op === op).map((i) => i.args);

function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  const unquote = (s: string): string => s.replace(/^"(.*)"$/, '$1');
  for (const args of argsOf(stage, 'ENV')) {
    const tokens = args.split(/\s+/).filter(Boolean);
    if (tokens[0] && !tokens[0].includes('=')) env[tokens[0]] = unquote(tokens.slice(1).join(' '));
    else for (const tok of tokens) env[tok.slice(0, tok.indexOf('='))] = unquote(tok.slice(tok.indexOf('=') + 1));
  }
  return env;
}

function execForm(args: string, what: string): string[] {
  const parsed: unknown = JSON.parse(args);
  return list(parsed, what).map((x, i) => str(x, `${what}[${i}]`));
}

function finalStage(path: string): Stage {
  const stage = parseDockerfile(path).at(-1);
  if (!stage) throw new Error(`${path} has no stage`);
  return stage;
}

/** .dockerignore as Docker applies it: patterns in order, the last match wins, `!` re-includes. */
function dockerIgnored(path: string): boolean {
  let ignored = false;
  for (const raw of read('.dockerignore').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pattern = posix.normalize(negate ? line.slice(1) : line).replace(/^\/|\/$/g, '');
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\0/g, '.*').replace(/\?/g, '[^/]')}(/.*)?$`);
    if (re.test(posix.normalize(path).replace(/^\.\//, '').replace(/\/$/, ''))) ignored = !negate;
  }
  return ignored;
}

// ---------- running things ----------

const childEnv = (extra: Record<string, string>): Record<string, string> => ({ PATH: process.env.PATH ?? '', ...extra });

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: root, env: childEnv(env) });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => done({ code, output }));
  });
}

async function startWarden(t: Test): Promise<number> {
  const loaded = await loadConfig({ flags: { host: '127.0.0.1', port: '0', 'log-level': 'silent' } });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const warden = await createWarden(loaded.config);
  t.teardown(() => warden.close());
  return (warden.server.address() as AddressInfo).port;
}

/**
 * A container's view of its mounted files, laid out under a temp dir. `relocate` maps a path
 * inside the container to the temp copy, so loadConfig reads exactly the mounted files; a path
 * that no mount provides stays as it is and fails to read.
 */
function mountFiles(mounts: readonly { path: string; files: Readonly<Record<string, string>> }[]): (value: string) => string {
  const base = mkdtempSync(join(tmpdir(), 'mcpw-deploy-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const relocate = (value: string): string => (mounts.some((m) => value === m.path || value.startsWith(`${m.path}/`)) ? join(base, value) : value);
  const deep = (value: unknown): unknown =>
    typeof value === 'string' ? relocate(value)
    : Array.isArray(value) ? value.map(deep)
    : isObj(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deep(v)]))
    : value;
  for (const mount of mounts) {
    for (const [name, content] of Object.entries(mount.files)) {
      const target = join(base, mount.path, name);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, name.endsWith('.json') ? JSON.stringify(deep(JSON.parse(content))) : content);
    }
  }
  return relocate;
}

async function effectiveConfig(env: Record<string, string>, relocate: (v: string) => string): Promise<Config> {
  const relocated = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, relocate(v)]));
  const loaded = await loadConfig({ env: relocated });
  if (!loaded.ok) throw new Error(`config problems: ${loaded.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  return loaded.config;
}

const PLACEHOLDER = /^REPLACE_ME/;
const NODE_20 = /^node:20-(bookworm-slim|alpine)$/;
const fakeSecret = (): string => randomBytes(48).toString('base64');
const portOf = (url: string): number => {
  const u = new URL(url);
  return Number(u.port || (u.protocol === 'https:' ? 443 : u.protocol.startsWith('redis') ? 6379 : 80));
};

// ---------- the checks ----------

t.test('every YAML and JSON file under deploy/ parses; config JSON passes validateConfig', async (t) => {
  const files = deployFiles();
  const yamlFiles = files.filter((f) => /\.ya?ml$/.test(f));
  t.ok(yamlFiles.length >= 5, 'compose and the kubernetes manifests are found');
  for (const file of yamlFiles) {
    const docs = yamlDocs(file, file.includes('kubernetes') ? '1.1' : '1.2');
    t.ok(docs.length > 0 && docs.every(isObj), `${file}: ${docs.length} document(s)`);
    for (const doc of docs.filter((d) => isObj(d) && d.kind === 'ConfigMap')) {
      for (const [key, value] of Object.entries(obj(obj(doc, 'ConfigMap').data, `${file} data`))) {
        if (!key.endsWith('.json')) continue;
        const result = validateConfig(JSON.parse(str(value, key)));
        t.same(result.ok ? [] : result.problems, [], `${file} ${key} is a valid mcp-warden config`);
      }
    }
  }
  for (const file of files.filter((f) => f.endsWith('.json'))) {
    const parsed: unknown = JSON.parse(read(file));
    if (!/config/i.test(file)) continue;
    const result = validateConfig(parsed);
    t.same(result.ok ? [] : result.problems, [], `${file} is a valid mcp-warden config`);
  }
});

t.test('every MCP_WARDEN_* name in deploy/ is one the program reads', async (t) => {
  let seen = 0;
  for (const file of deployFiles()) {
    for (const [name] of read(file).matchAll(/\bMCP_WARDEN_[A-Z0-9_]+\b/g)) {
      seen++;
      if (!knownEnv.has(name)) t.fail(`${file}: ${name} is not an env name of src/config/schema.ts (nor MCP_WARDEN_CONFIG)`);
    }
  }
  t.ok(seen > 10, `${seen} uses checked`);
});

t.test('Dockerfile: node 20, production deps only, non-root, port, entrypoint', async (t) => {
  const stages = parseDockerfile('deploy/Dockerfile');
  const pkg = obj(JSON.parse(read('package.json')), 'package.json');
  for (const s of stages) t.match(s.image, NODE_20, `stage ${s.name ?? '?'} is an official Node 20 image`);

  // A `prepare` script runs the TypeScript build: every install must skip scripts, which is
  // only safe while no production dependency needs an install script.
  const scripts = obj(pkg.scripts, 'scripts');
  const installs = stages.flatMap((s) => argsOf(s, 'RUN')).filter((r) => /\bnpm (ci|install|i)\b/.test(r));
  t.ok(installs.length >= 2, 'a build install and a production install');
  if (scripts.prepare !== undefined) for (const r of installs) t.match(r, /--ignore-scripts/, `"${r}" skips the prepare script`);
  const lock = obj(obj(JSON.parse(read('package-lock.json')), 'lock').packages, 'lock packages');
  const prodScripts = Object.entries(lock).filter(([, v]) => isObj(v) && v.hasInstallScript === true && v.dev !== true).map(([k]) => k);
  t.same(prodScripts, [], 'no production dependency has an install script (--ignore-scripts loses nothing)');

  const runtime = stages.at(-1);
  if (!runtime) throw new Error('no stage');
  const byName = new Map(stages.map((s) => [s.name, s]));
  const copies = argsOf(runtime, 'COPY');
  const fromStage = (what: string): Stage | undefined => {
    const m = copies.map((c) => /^--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(c)).find((x) => x?.[2]?.endsWith(`/${what}`));
    return m?.[1] === undefined ? undefined : byName.get(m[1]);
  };
  t.ok(fromStage('node_modules') && argsOf(fromStage('node_modules') as Stage, 'RUN').some((r) => /npm ci\b.*--omit=dev/.test(r)), 'node_modules come from an --omit=dev install');
  t.ok(fromStage('dist') && argsOf(fromStage('dist') as Stage, 'RUN').includes('npm run build'), 'dist/ comes from the stage that builds');
  t.ok(copies.some((c) => /^package\.json\b/.test(c) && c.includes('proxy.config.example.json')), 'package.json ("type": "module") and the example config are copied');

  const env = stageEnv(runtime);
  t.equal(env.NODE_ENV, 'production', 'NODE_ENV=production');
  t.equal(env.MCP_WARDEN_HOST, '0.0.0.0', 'listens beyond the container loopback');
  t.same(argsOf(runtime, 'EXPOSE'), [env.MCP_WARDEN_PORT], 'EXPOSE is MCP_WARDEN_PORT');
  const user = argsOf(runtime, 'USER').at(-1)?.split(':')[0];
  t.ok(user !== undefined && user !== 'root' && user !== '0', `runs as a non-root user (${user})`);

  const entry = execForm(argsOf(runtime, 'ENTRYPOINT').at(-1) ?? 'null', 'ENTRYPOINT');
  t.same(entry, ['node', str(obj(pkg.bin, 'bin')['mcp-warden'], 'bin')], 'ENTRYPOINT runs the package binary');
  const build = obj(obj(JSON.parse(read('tsconfig.build.json')), 'tsconfig').compilerOptions, 'compilerOptions');
  const source = (entry[1] ?? '').replace(`${str(build.outDir, 'outDir')}/`, `${str(build.rootDir, 'rootDir')}/`).replace(/\.js$/, '.ts');
  t.ok(existsSync(join(root, source)), `${entry[1]} is built from ${source}`);
  const cmd = execForm(argsOf(runtime, 'CMD').at(-1) ?? 'null', 'CMD');
  t.ok([serveCommand.command].flat().includes(cmd[0] ?? ''), `CMD ${JSON.stringify(cmd)} names the serve command`);
});

t.test('Dockerfiles copy only files that exist and that .dockerignore lets through', async (t) => {
  for (const file of ['deploy/Dockerfile', 'deploy/Dockerfile.demo-upstream']) {
    for (const stage of parseDockerfile(file)) {
      for (const args of argsOf(stage, 'COPY').filter((c) => !c.startsWith('--from='))) {
        const tokens = args.split(/\s+/).filter((x) => !x.startsWith('--'));
        for (const src of tokens.slice(0, -1)) {
          t.ok(existsSync(join(root, src)), `${file}: ${src} exists`);
          t.notOk(dockerIgnored(src), `${file}: ${src} is in the build context`);
        }
      }
    }
  }
  for (const path of ['node_modules', 'dist', '.git', '.tap', 'bench/results', 'deploy/secrets/token_secret']) t.ok(dockerIgnored(path), `${path} stays out of the build context`);
});

t.test('HEALTHCHECK calls /healthz on MCP_WARDEN_PORT and passes against a running warden', async (t) => {
  const runtime = finalStage('deploy/Dockerfile');
  const env = stageEnv(runtime);
  const m = /^((?:--\S+\s+)*)CMD\s+(\[.*\])$/s.exec(argsOf(runtime, 'HEALTHCHECK').at(-1) ?? '');
  const argv = execForm(m?.[2] ?? 'null', 'HEALTHCHECK CMD');
  t.same(argv.slice(0, 2), ['node', '-e'], 'node itself, no curl');
  const script = argv[2] ?? '';
  t.match(script, /\/healthz\b/, 'liveness route');
  const ports = [...script.matchAll(/(?::|\|\|\s*)(\d{2,5})\b/g)].map((x) => x[1]);
  t.ok(ports.length > 0, 'the script names a port');
  t.same([...new Set(ports)], [env.MCP_WARDEN_PORT], 'the port is MCP_WARDEN_PORT and EXPOSE');
  t.same(argsOf(runtime, 'EXPOSE'), [env.MCP_WARDEN_PORT], 'EXPOSE is MCP_WARDEN_PORT');

  // Run it for real: the image's port swapped for a test warden's (a fixed 8080 may be taken).
  const port = String(await startWarden(t));
  const onPort = (p: string): string => script.replaceAll(env.MCP_WARDEN_PORT ?? '', p);
  const healthy = await run(process.execPath, ['-e', onPort(port)], { ...env, MCP_WARDEN_PORT: port });
  t.equal(healthy.code, 0, `healthy against a running warden ${healthy.output}`);
  const closed = await run(process.execPath, ['-e', onPort('1')], { ...env, MCP_WARDEN_PORT: '1' });
  t.equal(closed.code, 1, 'unhealthy when nothing answers');
});

t.test('probe and health paths in deploy/ are routes a running warden serves', async (t) => {
  const paths = new Set<string>();
  for (const doc of yamlDocs('deploy/kubernetes/deployment.yaml', '1.1')) {
    const pod = obj(obj(obj(obj(doc, 'Deployment').spec, 'spec').template, 'template').spec, 'pod');
    for (const c of list(pod.containers, 'containers').map((x) => obj(x, 'container'))) {
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        if (isObj(c[kind]) && isObj(c[kind].httpGet)) paths.add(str(c[kind].httpGet.path, `${kind}.httpGet.path`));
      }
    }
  }
  for (const m of (argsOf(finalStage('deploy/Dockerfile'), 'HEALTHCHECK').at(-1) ?? '').matchAll(/'(\/[a-z]+)'/g)) if (m[1]) paths.add(m[1]);
  t.same([...paths].sort(), ['/healthz', '/readyz'], 'the probes use /healthz and /readyz');
  const base = `http://127.0.0.1:${await startWarden(t)}`;
  for (const path of paths) t.equal((await fetch(`${base}${path}`)).status, 200, `GET ${path} answers 200`);
  t.equal((await fetch(`${base}/no-such-probe`)).status, 404, 'and a wrong path would fail');
});

t.test('demo upstream image: its entry runs, honours HOST/PORT and stops on SIGTERM', async (t) => {
  const stage = finalStage('deploy/Dockerfile.demo-upstream');
  const env = stageEnv(stage);
  t.match(stage.image, NODE_20, 'an official Node 20 image');
  t.same(argsOf(stage, 'EXPOSE'), [env.PORT], 'EXPOSE is PORT');
  const user = argsOf(stage, 'USER').at(-1)?.split(':')[0];
  t.ok(user !== undefined && user !== 'root' && user !== '0', 'non-root');
  const entry = execForm(argsOf(stage, 'ENTRYPOINT').at(-1) ?? 'null', 'ENTRYPOINT');
  const pkg = obj(JSON.parse(read('package.json')), 'package.json');
  t.ok(entry.includes('tsx') && obj(pkg.devDependencies, 'devDependencies').tsx !== undefined, 'tsx is a devDependency');
  t.ok(argsOf(stage, 'RUN').some((r) => /npm ci\b/.test(r) && !r.includes('--omit=dev')), 'devDependencies (SDK, tsx) are installed');

  // The entry exactly as the image runs it, from the repo root (laid out like /app).
  const [cmd, ...args] = entry;
  const child = spawn(cmd === 'node' ? process.execPath : (cmd ?? ''), args, { cwd: root, env: childEnv({ ...env, HOST: '127.0.0.1', PORT: '0' }) });
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  let output = '';
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`demo upstream did not start: ${output}`)), 30_000);
    const onData = (d: Buffer): void => {
      output += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m?.[1]) {
        clearTimeout(timer);
        done(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
  t.equal(new URL(url).hostname, '127.0.0.1', 'binds the HOST it is given');
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'deploy-test', version: '1' } } }),
  });
  t.equal(res.status, 200, 'answers MCP initialize');
  await res.body?.cancel();
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 on SIGTERM (it runs as PID 1)');
});

t.test('compose: only mcp-warden is published; upstream and Redis are on an internal network', async (t) => {
  const compose = obj(yamlDocs('deploy/docker-compose.yml')[0], 'compose');
  const services = obj(compose.services, 'services');
  const networks = obj(compose.networks ?? {}, 'networks');
  const isInternal = (name: string): boolean => isObj(networks[name]) && networks[name].internal === true;
  const netsOf = (svc: Obj): string[] => (Array.isArray(svc.networks) ? svc.networks.map((n) => str(n, 'network')) : Object.keys(obj(svc.networks ?? { default: null }, 'networks')));
  const envOf = (svc: Obj): Record<string, string> =>
    Array.isArray(svc.environment)
      ? Object.fromEntries(svc.environment.map((e) => str(e, 'environment').split(/=(.*)/s).slice(0, 2)))
      : Object.fromEntries(Object.entries(obj(svc.environment ?? {}, 'environment')).map(([k, v]) => [k, String(v)]));
  const dockerfileOf = (svc: Obj): string | null => {
    if (!isObj(svc.build)) return null;
    return relative(root, resolve(deployDir, str(svc.build.context ?? '.', 'context'), str(svc.build.dockerfile ?? 'Dockerfile', 'dockerfile')));
  };

  const wardenName = Object.keys(services).find((n) => dockerfileOf(obj(services[n], n)) === 'deploy/Dockerfile');
  if (!wardenName) throw new Error('no service builds deploy/Dockerfile');
  const warden = obj(services[wardenName], wardenName);
  for (const [name, raw] of Object.entries(services)) {
    const svc = obj(raw, name);
    const dockerfile = dockerfileOf(svc);
    if (dockerfile) t.ok(existsSync(join(root, dockerfile)), `${name} builds ${dockerfile}`);
    if (name === wardenName) continue;
    t.same(list(svc.ports, `${name}.ports`), [], `${name} publishes no port`);
    t.equal(svc.network_mode, undefined, `${name} has no network_mode`);
    for (const net of netsOf(svc)) t.ok(isInternal(net), `${name} is only on internal networks (${net})`);
  }

  // What mcp-warden really runs with: the image's ENV, compose's environment, mounted secrets.
  const secretMounts = list(warden.secrets, 'secrets').map((s) => {
    const target = typeof s === 'string' ? s : str(obj(s, 'secret').target ?? obj(s, 'secret').source, 'secret target');
    return target.startsWith('/') ? target : `/run/secrets/${target}`;
  });
  const relocate = mountFiles(secretMounts.map((p) => ({ path: dirname(p), files: { [posix.basename(p)]: fakeSecret() } })));
  const env = { ...stageEnv(finalStage('deploy/Dockerfile')), ...envOf(warden) };
  const config = await effectiveConfig(env, relocate);

  const published = list(warden.ports, 'ports').map((p) => {
    if (isObj(p)) return { host: String(p.published), target: String(p.target) };
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    return { host: parts.at(-2) ?? parts.at(-1) ?? '', target: parts.at(-1) ?? '' };
  });
  t.same(published.map((p) => p.target), [String(config.listen.port)], 'the one published port is mcp-warden\'s listen port');
  t.ok(config.admin.listen !== null && config.admin.listen.port !== config.listen.port, 'metrics are on the admin port');
  t.notOk(published.some((p) => p.target === String(config.admin.listen?.port)), 'which is not published');
  t.same(argsOf(finalStage('deploy/Dockerfile'), 'EXPOSE'), [String(config.listen.port)], 'and the image\'s EXPOSE');
  t.equal(config.listen.host, '0.0.0.0', 'listens on the container network');
  t.equal(String(portOf(config.publicUrl ?? '')), published[0]?.host, 'publicUrl names the published host port');

  const reachable = (url: string, what: string): Obj => {
    const host = new URL(url).hostname;
    const svc = obj(services[host], `${what}: service "${host}"`);
    const shared = netsOf(svc).filter((n) => netsOf(warden).includes(n));
    t.ok(shared.length > 0 && shared.every(isInternal), `${what} ${host} shares only internal networks with mcp-warden`);
    return svc;
  };
  t.equal(config.store.type, 'redis', 'store: redis');
  t.match(str(reachable(config.store.url ?? '', 'store').image, 'redis image'), /^redis:7\b/, 'official redis:7');
  for (const upstream of config.upstreams) {
    const svc = reachable(upstream, 'upstream');
    const dockerfile = dockerfileOf(svc);
    const upstreamEnv = { ...(dockerfile ? stageEnv(finalStage(dockerfile)) : {}), ...envOf(svc) };
    t.equal(String(portOf(upstream)), upstreamEnv.PORT, 'upstream URL port is the port the demo server listens on');
    t.equal(new URL(upstream).pathname, /const MCP_PATH = '([^']+)'/.exec(read('demo/mcp-server.ts'))?.[1], 'and its MCP path');
  }

  const secretFile = list(Object.values(obj(compose.secrets, 'secrets')), 'secrets').map((s) => resolve(deployDir, str(obj(s, 'secret').file, 'secret file')));
  for (const file of secretFile) {
    const path = relative(root, file);
    t.ok(dockerIgnored(path), `${path} stays out of images`);
    t.match(read('deploy/secrets/README.md'), new RegExp(`openssl rand -base64 \\d+ > ${path.replace(/[.]/g, '\\.')}`), `the README says how to create ${path}`);
    const git = spawnSync('git', ['check-ignore', '-q', path], { cwd: root });
    if (git.status === 0 || git.status === 1) t.equal(git.status, 0, `${path} is git-ignored`);
  }
});

t.test('kubernetes: sidecar pod, probes, ports, Service, secrets as files', async (t) => {
  const docs = ['deployment', 'service', 'secret', 'configmap', 'ingress'].flatMap((f) => yamlDocs(`deploy/kubernetes/${f}.yaml`, '1.1')).map((d) => obj(d, 'manifest'));
  const one = (kind: string): Obj => {
    const found = docs.filter((d) => d.kind === kind);
    t.equal(found.length, 1, `one ${kind}`);
    return obj(found[0], kind);
  };
  const deployment = one('Deployment');
  const template = obj(obj(deployment.spec, 'spec').template, 'template');
  const pod = obj(template.spec, 'pod spec');
  const podLabels = obj(obj(template.metadata, 'metadata').labels, 'labels');
  const podSecurity = obj(pod.securityContext ?? {}, 'pod securityContext');
  t.equal(pod.enableServiceLinks, false, 'no service-link variables (a Service named mcp-warden would set MCP_WARDEN_PORT)');

  const containers = list(pod.containers, 'containers').map((c) => obj(c, 'container'));
  const warden = containers.find((c) => c.name === 'mcp-warden');
  if (!warden) throw new Error('no mcp-warden container');
  const servers = containers.filter((c) => c !== warden);
  t.ok(servers.length >= 1, 'an MCP server container beside it');
  // As the kubelet builds it: downward-API fields filled in, $(VAR) references expanded in order.
  const downward: Record<string, string> = { 'metadata.name': 'mcp-server-7d9f-abcde', 'status.podIP': '10.1.2.3' };
  const envOf = (c: Obj): Record<string, string> => {
    const built: Record<string, string> = {};
    for (const e of list(c.env, 'env')) {
      const entry = obj(e, 'env');
      const name = str(entry.name, 'env name');
      if (entry.valueFrom !== undefined) {
        const path = str(obj(obj(entry.valueFrom, 'valueFrom').fieldRef, 'fieldRef').fieldPath, 'fieldPath');
        t.ok(path in downward, `${name}: a downward-API field the test knows (${path})`);
        built[name] = downward[path] ?? '';
        continue;
      }
      built[name] = str(entry.value, `env ${name} (Kubernetes wants strings)`).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, v: string) => built[v] ?? ref);
    }
    return built;
  };
  for (const c of containers) {
    const sc = obj(c.securityContext, `${String(c.name)} securityContext`);
    t.ok(sc.runAsNonRoot === true || podSecurity.runAsNonRoot === true, `${String(c.name)} runAsNonRoot`);
    t.equal(sc.readOnlyRootFilesystem, true, `${String(c.name)} readOnlyRootFilesystem`);
    t.equal(sc.allowPrivilegeEscalation, false, `${String(c.name)} allowPrivilegeEscalation false`);
    const resources = obj(c.resources, 'resources');
    for (const kind of ['requests', 'limits']) t.ok(['cpu', 'memory'].every((r) => obj(resources[kind], kind)[r] !== undefined), `${String(c.name)} ${kind} cpu and memory`);
  }

  // The pod's mounted files: ConfigMap data and Secret values, placeholders replaced.
  const volumes = new Map(list(pod.volumes, 'volumes').map((v) => [str(obj(v, 'volume').name, 'volume name'), obj(v, 'volume')]));
  const named = (kind: string, name: unknown): Obj => obj(docs.find((d) => d.kind === kind && obj(d.metadata, 'metadata').name === name), `${kind} ${String(name)}`);
  const secretDoc = one('Secret');
  const secretValues = obj(secretDoc.stringData, 'Secret stringData');
  for (const [key, value] of Object.entries(secretValues)) t.match(str(value, key), PLACEHOLDER, `Secret ${key} is a placeholder, not a real secret`);
  const mountsOf = (c: Obj, substitute: boolean) =>
    list(c.volumeMounts, 'volumeMounts').flatMap((m) => {
      const mount = obj(m, 'volumeMount');
      const volume = volumes.get(str(mount.name, 'mount name'));
      if (!volume) throw new Error(`volume ${String(mount.name)} is not declared`);
      const path = str(mount.mountPath, 'mountPath');
      if (isObj(volume.configMap)) return [{ path, files: Object.fromEntries(Object.entries(obj(named('ConfigMap', volume.configMap.name).data, 'data')).map(([k, v]) => [k, str(v, k)])) }];
      if (isObj(volume.secret)) {
        const values = obj(named('Secret', volume.secret.secretName).stringData, 'stringData');
        return [{ path, files: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, substitute && PLACEHOLDER.test(str(v, k)) ? fakeSecret() : str(v, k)])) }];
      }
      return [];
    });
  const env = { ...stageEnv(finalStage('deploy/Dockerfile')), ...envOf(warden) };
  const config = await effectiveConfig(env, mountFiles(mountsOf(warden, true)));
  await t.rejects(effectiveConfig(env, mountFiles(mountsOf(warden, false))), /tokens\.secretFile/, 'with the placeholders left in, mcp-warden refuses to start');
  t.ok(config.store.type === 'redis' && config.store.sentinels !== null, 'store: Redis through Sentinel');
  t.ok(config.clients.length > 0 && config.clients.every((c) => c.secret !== null), 'client secrets come from the mounted Secret');

  // Ports: listen port = the container port = what the probes and the Service target.
  const wardenPorts = list(warden.ports, 'ports').map((p) => obj(p, 'port'));
  const resolvePort = (port: unknown): unknown => wardenPorts.find((p) => p.name === port || p.containerPort === port)?.containerPort;
  t.equal(config.listen.host, '0.0.0.0', 'mcp-warden listens on the pod IP');
  // Each pod has its own MCP server: with more than one replica, sessions must be relayed to their pod.
  t.ok(Number(obj(deployment.spec, 'spec').replicas) > 1, 'replicated');
  t.equal(config.replica.id, downward['metadata.name'], 'replica id: the pod name');
  t.equal(config.replica.advertiseUrl, `http://${downward['status.podIP'] ?? ''}:${config.listen.port}`, 'relay address: the pod IP on the listen port');
  t.same(wardenPorts.map((p) => p.containerPort), [config.listen.port, config.admin.listen?.port], 'containerPorts: the listen port (MCP_WARDEN_PORT) and the admin port');
  t.equal(wardenPorts.find((p) => p.name === 'admin')?.containerPort, config.admin.listen?.port, 'metrics are served on the admin port, not the public one');
  const probe = (kind: string): Obj => obj(obj(warden[kind], kind).httpGet, `${kind}.httpGet`);
  t.equal(probe('readinessProbe').path, '/readyz', 'readiness probe: /readyz');
  t.equal(probe('livenessProbe').path, '/healthz', 'liveness probe: /healthz');
  for (const kind of ['readinessProbe', 'livenessProbe']) t.equal(resolvePort(probe(kind).port), config.listen.port, `${kind} hits the listen port`);

  const service = one('Service');
  const serviceSpec = obj(service.spec, 'Service spec');
  for (const [k, v] of Object.entries(obj(serviceSpec.selector, 'selector'))) t.equal(podLabels[k], v, `Service selector ${k} matches the pod`);
  const servicePorts = list(serviceSpec.ports, 'Service ports').map((p) => obj(p, 'Service port'));
  t.same(servicePorts.map((p) => resolvePort(p.targetPort ?? p.port)), [config.listen.port], 'the Service targets only mcp-warden\'s port');

  // Behind the Ingress: the client's address is the hop it appends, and only it (and the other
  // replicas, which relay) can reach the public port, so nobody sends a forged X-Forwarded-For.
  const ingress = obj(one('Ingress').spec, 'Ingress spec');
  const firstRule = obj(list(ingress.rules, 'rules')[0], 'rule');
  const firstPath = obj(list(obj(firstRule.http, 'http').paths, 'paths')[0], 'path');
  const backend = obj(obj(firstPath.backend, 'backend').service, 'backend service');
  t.equal(backend.name, obj(service.metadata, 'metadata').name, 'the Ingress sends to the Service');
  t.ok(servicePorts.some((p) => p.name === obj(backend.port, 'port').name), 'on its port');
  t.same(config.security.trustProxy, { kind: 'hops', hops: 1 }, 'trustProxy: the one hop the Ingress appends');
  const policy = obj(one('NetworkPolicy').spec, 'NetworkPolicy spec');
  for (const [k, v] of Object.entries(obj(obj(policy.podSelector, 'podSelector').matchLabels, 'matchLabels'))) t.equal(podLabels[k], v, `NetworkPolicy selects the pod (${k})`);
  const rules = list(policy.ingress, 'ingress rules').map((r) => obj(r, 'rule'));
  const publicRule = rules.find((r) => list(r.ports, 'ports').some((p) => resolvePort(obj(p, 'port').port) === config.listen.port));
  const sources = list(publicRule?.from, 'from').map((f) => JSON.stringify(f));
  t.equal(sources.length, 2, 'the public port admits two sources');
  t.ok(sources.some((s) => s.includes('ingress-nginx')) && sources.some((s) => s.includes('podSelector')), 'the Ingress controller and the replicas (relay), nothing else');
  t.ok(rules.every((r) => list(r.ports, 'ports').length > 0), 'every rule names its ports');

  // The MCP server: loopback only, no port, no access to mcp-warden's secrets; the upstream URL points at it.
  const secretVolumes = new Set([...volumes].filter(([, v]) => isObj(v.secret)).map(([k]) => k));
  for (const server of servers) {
    const serverEnv = { ...stageEnv(finalStage('deploy/Dockerfile.demo-upstream')), ...envOf(server) };
    t.equal(serverEnv.HOST, '127.0.0.1', `${String(server.name)} binds 127.0.0.1 only`);
    t.same(list(server.ports, 'ports'), [], `${String(server.name)} declares no port`);
    t.notOk(list(server.volumeMounts, 'volumeMounts').some((m) => secretVolumes.has(String(obj(m, 'mount').name))), `${String(server.name)} does not see mcp-warden's secrets`);
    t.same(config.upstreams.map((u) => [new URL(u).hostname, String(portOf(u))]), [['127.0.0.1', serverEnv.PORT]], 'upstream is the MCP server on the pod loopback');
  }
});
