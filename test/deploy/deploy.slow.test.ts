/**
 * Keeps deploy/ in step with the program. Docker is not run here: the files are parsed and
 * checked against what mcp-warden really reads (schema env names, loadConfig on the environment
 * and mounted files each setup produces, the routes a running warden serves), and the two entry
 * commands (the image's HEALTHCHECK, the demo upstream) are run for real. The Kubernetes
 * manifests have their own test (kustomize.slow.test.ts).
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { serveCommand } from '../../src/cli/serve.js';
import { validateConfig } from '../../src/config/validate.js';
import {
  argsOf, effectiveConfig, execForm, fakeSecret, finalStage, isObj, knownEnv, list, mountFiles, obj, parseDockerfile, portOf, read, root, stageEnv, startWarden, str, yamlDocs,
} from '../fixtures/deploy.js';
import type { Obj, Stage } from '../fixtures/deploy.js';

// deploy/demo-upstream.ts is outside tsconfig.json's `include`; naming its type here puts it in
// `tsc -p tsconfig.json`, so it is type-checked with the rest (a type only: nothing runs).
export type DemoUpstreamModule = typeof import('../../deploy/demo-upstream.js');

const deployDir = join(root, 'deploy');

/** Every file under deploy/, as repo-relative paths. */
function deployFiles(dir = deployDir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? deployFiles(path) : [relative(root, path)];
  });
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

// The image's Node: a current LTS line (Node 20 reached end of life in April 2026), pinned by digest.
const NODE_LTS = /^node:(22|24)-(bookworm-slim|alpine)@sha256:[0-9a-f]{64}$/;

/** The major lines an `engines` range such as "^20.19.0 || ^22.12.0 || >=24" admits (up to 30). */
function semverRange(range: string): number[] {
  return range.split('||').flatMap((part) => {
    const m = /^\s*(\^|>=)?(\d+)/.exec(part);
    if (!m) return [];
    const major = Number(m[2]);
    return m[1] === '>=' ? Array.from({ length: 31 - major }, (_, i) => major + i) : [major];
  });
}

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

t.test('Dockerfile: Node LTS pinned by digest, production deps only, non-root, port, entrypoint', async (t) => {
  const stages = parseDockerfile('deploy/Dockerfile');
  const pkg = obj(JSON.parse(read('package.json')), 'package.json');
  for (const s of stages) t.match(s.image, NODE_LTS, `stage ${s.name ?? '?'} is an official Node LTS image, pinned by digest`);
  t.equal(new Set(stages.map((s) => s.image)).size, 1, 'every stage on the same image (dist/ built where it runs)');
  const engines = String(obj(pkg.engines, 'engines').node);
  const line = /^node:(\d+)-/.exec(stages[0]?.image ?? '')?.[1] ?? '';
  t.ok(semverRange(engines).includes(Number(line)), `package.json engines (${engines}) admit the image's Node ${line}`);

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

t.test('demo upstream image: its entry runs, honours HOST/PORT and stops on SIGTERM', async (t) => {
  const stage = finalStage('deploy/Dockerfile.demo-upstream');
  const env = stageEnv(stage);
  t.match(stage.image, NODE_LTS, 'an official Node LTS image, pinned by digest');
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
