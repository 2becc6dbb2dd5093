/**
 * deploy/kubernetes against the program, as Kubernetes would get it: each overlay (and each with
 * the Redis component) is rendered by `kubectl kustomize` (kustomize built into kubectl; no
 * cluster), and the output is checked semantically. Every selector selects pods of a workload in
 * the same render, every named port exists, the config the mcp-warden pod gets passes loadConfig
 * with exactly the files it mounts, its secrets come from a Secret as files, the probe and scrape
 * paths answer on the listener their port names against a running warden, and the memory
 * guidance follows the benchmark numbers in docs/performance.md.
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { forEachField } from '../../src/config/fields.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { schema } from '../../src/config/schema.js';
import { createWarden } from '../../src/warden.js';
import { effectiveConfig, fakeSecret, finalStage, isObj, knownEnv, list, mountFiles, obj, PLACEHOLDER, portOf, read, root, stageEnv, str } from '../fixtures/deploy.js';
import type { Obj } from '../fixtures/deploy.js';
import { freePort } from '../fixtures/redis.js';

const K8S = 'deploy/kubernetes';
const KUBECTL = process.env.KUBECTL ?? 'kubectl';

// ---------- rendering ----------

/** `kubectl kustomize` of a directory, as parsed objects (YAML 1.1, as the API server reads it). */
function kustomize(dir: string): Obj[] {
  const out = spawnSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8' });
  if (out.error) throw new Error(`${KUBECTL} kustomize: ${out.error.message} (kubectl with built-in kustomize v5 is needed)`);
  if (out.status !== 0) throw new Error(`${KUBECTL} kustomize ${dir} failed: ${out.stderr}`);
  return parseAllDocuments(out.stdout, { version: '1.1' }).map((doc) => {
    if (doc.errors.length) throw new Error(`${dir}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return obj(doc.toJS(), 'rendered object');
  });
}

/**
 * An overlay with components added, as a user's own kustomization does it (README.md). Kustomize
 * refuses absolute paths, so the temp kustomization names them relative to itself.
 */
function withComponents(overlay: string, components: string[]): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), 'mcpw-kustomize-'));
  try {
    const rel = (p: string): string => relative(dir, join(root, p));
    writeFileSync(join(dir, 'kustomization.yaml'), `resources:\n  - ${rel(overlay)}\ncomponents:\n${components.map((c) => `  - ${rel(c)}\n`).join('')}`);
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------- reading a render ----------

const nameOf = (o: Obj): string => str(obj(o.metadata, `${String(o.kind)} metadata`).name, `${String(o.kind)} name`);
const labelsOf = (o: Obj): Obj => obj(obj(o.metadata, 'metadata').labels ?? {}, 'labels');

interface Workload {
  readonly kind: string;
  readonly name: string;
  readonly replicas: number;
  readonly labels: Obj;
  readonly pod: Obj;
  readonly containers: Obj[];
  readonly spec: Obj;
}

function workloads(docs: Obj[]): Workload[] {
  return docs
    .filter((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet')
    .map((d) => {
      const spec = obj(d.spec, `${nameOf(d)} spec`);
      const template = obj(spec.template, `${nameOf(d)} template`);
      const pod = obj(template.spec, `${nameOf(d)} pod spec`);
      return {
        kind: str(d.kind, 'kind'),
        name: nameOf(d),
        replicas: Number(spec.replicas ?? 1),
        labels: labelsOf(template),
        pod,
        containers: [...list(pod.initContainers, 'initContainers'), ...list(pod.containers, 'containers')].map((c) => obj(c, 'container')),
        spec,
      };
    });
}

/** matchLabels (or a Service's plain selector) against labels; an empty selector selects nothing here. */
function selects(selector: unknown, labels: Obj): boolean {
  const s = obj(selector, 'selector');
  const match = isObj(s.matchLabels) ? s.matchLabels : s;
  const pairs = Object.entries(match).filter(([k]) => k !== 'matchExpressions');
  if (s.matchExpressions !== undefined) throw new Error('matchExpressions: not read by this test');
  return pairs.length > 0 && pairs.every(([k, v]) => labels[k] === v);
}

const portsOf = (c: Obj): Obj[] => list(c.ports, `${String(c.name)} ports`).map((p) => obj(p, 'port'));
/** A container port by name or number, in the containers of a workload. */
function containerPort(w: Workload, port: unknown): { container: Obj; port: number } | null {
  for (const c of w.containers) {
    const p = portsOf(c).find((x) => x.name === port || x.containerPort === port);
    if (p) return { container: c, port: Number(p.containerPort) };
  }
  return null;
}

/** As the kubelet builds a container's environment: downward API filled in, $(VAR) expanded in order. */
const downward: Record<string, string> = { 'metadata.name': 'mcp-warden-7d9f-abcde', 'status.podIP': '10.1.2.3' };
function envOf(t: Test, c: Obj): Record<string, string> {
  const built: Record<string, string> = {};
  for (const e of list(c.env, 'env')) {
    const entry = obj(e, 'env');
    const name = str(entry.name, 'env name');
    if (entry.valueFrom !== undefined) {
      const from = obj(entry.valueFrom, 'valueFrom');
      t.notOk(from.secretKeyRef, `${name}: no secret in the environment (secrets are mounted files)`);
      const path = str(obj(from.fieldRef, `${name}: fieldRef`).fieldPath, 'fieldPath');
      t.ok(path in downward, `${name}: a downward-API field the test knows (${path})`);
      built[name] = downward[path] ?? '';
      continue;
    }
    built[name] = str(entry.value, `env ${name} (Kubernetes wants strings)`).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, v: string) => built[v] ?? ref);
  }
  return built;
}

/** Env names of fields marked secret: never set in a manifest (their *_FILE sibling is). */
const secretEnv = new Set<string>();
forEachField(schema, (_path, field) => {
  if (field.secret && field.env) secretEnv.add(field.env);
});

/** Quantities as the API server reads them ("128Mi", "200M", "1Gi"), in bytes. */
function bytes(quantity: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(String(quantity));
  if (!m) throw new Error(`not a memory quantity: ${String(quantity)}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

// ---------- what a running warden serves ----------

/** Probe and scrape requests, collected from every render, answered by one warden at the end. */
interface Probe {
  readonly what: string;
  readonly listener: 'main' | 'admin';
  readonly path: string;
}
const probes: Probe[] = [];

// ---------- one render ----------

interface Layout {
  readonly name: string;
  readonly docs: Obj[];
  readonly sidecar: boolean;
  readonly redis: boolean;
}

/**
 * The served API version of each kind (Kubernetes 1.25 removed policy/v1beta1, among others), so
 * a render the API server would refuse fails here; the ServiceMonitor's is the Prometheus
 * Operator's CRD.
 */
const API_VERSIONS: Readonly<Record<string, string>> = {
  ConfigMap: 'v1', Secret: 'v1', Service: 'v1', Deployment: 'apps/v1', StatefulSet: 'apps/v1',
  PodDisruptionBudget: 'policy/v1', NetworkPolicy: 'networking.k8s.io/v1', Ingress: 'networking.k8s.io/v1',
  ServiceMonitor: 'monitoring.coreos.com/v1',
};

/** Fields of a container in core/v1 (a misspelt probe or mount would otherwise vanish unnoticed). */
const CONTAINER_FIELDS = new Set(['name', 'image', 'imagePullPolicy', 'command', 'args', 'workingDir', 'env', 'envFrom', 'ports', 'resources', 'readinessProbe', 'livenessProbe', 'startupProbe', 'lifecycle', 'securityContext', 'volumeMounts', 'volumeDevices', 'terminationMessagePath', 'terminationMessagePolicy', 'stdin', 'stdinOnce', 'tty', 'resizePolicy', 'restartPolicy']);

async function checkRender(t: Test, layout: Layout): Promise<void> {
  const { docs } = layout;
  const keys = docs.map((d) => `${String(d.kind)}/${nameOf(d)}`);
  t.same(keys.filter((k, i) => keys.indexOf(k) !== i), [], 'no two objects of a kind share a name');
  for (const d of docs) t.equal(d.apiVersion, API_VERSIONS[String(d.kind)], `${String(d.kind)} ${nameOf(d)}: apiVersion ${String(d.apiVersion)}`);
  const all = workloads(docs);
  const byKind = (kind: string): Obj[] => docs.filter((d) => d.kind === kind);
  const named = (kind: string, name: unknown): Obj => obj(docs.find((d) => d.kind === kind && nameOf(d) === name), `${kind} ${String(name)} in the render`);
  const selected = (selector: unknown): Workload[] => all.filter((w) => selects(selector, w.labels));

  // ----- selectors: every one selects pods of a workload in this render -----
  for (const w of all) {
    t.ok(selects(w.spec.selector, w.labels), `${w.kind} ${w.name}: its selector matches its own pod template`);
    for (const c of list(w.pod.topologySpreadConstraints, 'topologySpreadConstraints')) {
      t.ok(selects(obj(c, 'constraint').labelSelector, w.labels), `${w.name}: topology spread counts its own pods`);
    }
  }
  const services = byKind('Service');
  const serviceTargets = new Map<string, Workload[]>();
  for (const svc of services) {
    const spec = obj(svc.spec, 'Service spec');
    const targets = selected(spec.selector);
    serviceTargets.set(nameOf(svc), targets);
    t.equal(targets.length, 1, `Service ${nameOf(svc)} selects the pods of one workload (${targets.map((w) => w.name).join(', ')})`);
    for (const p of list(spec.ports, 'Service ports').map((x) => obj(x, 'Service port'))) {
      for (const w of targets) t.ok(containerPort(w, p.targetPort ?? p.port), `Service ${nameOf(svc)} port ${String(p.name)}: targetPort ${String(p.targetPort)} is a port of ${w.name}`);
    }
  }
  for (const pdb of byKind('PodDisruptionBudget')) {
    const spec = obj(pdb.spec, 'PDB spec');
    const targets = selected(spec.selector);
    t.equal(targets.length, 1, `PodDisruptionBudget ${nameOf(pdb)} selects one workload`);
    for (const w of targets) t.ok(w.replicas > Number(spec.minAvailable), `${w.name}: ${w.replicas} replicas > minAvailable ${String(spec.minAvailable)} (a drain can proceed)`);
  }
  for (const np of byKind('NetworkPolicy')) {
    const spec = obj(np.spec, 'NetworkPolicy spec');
    const targets = selected(spec.podSelector);
    t.equal(targets.length, 1, `NetworkPolicy ${nameOf(np)} selects the pods of one workload`);
    for (const rule of list(spec.ingress, 'ingress').map((r) => obj(r, 'rule'))) {
      const ports = list(rule.ports, 'ports').map((p) => obj(p, 'port').port);
      t.ok(ports.length > 0, `NetworkPolicy ${nameOf(np)}: every rule names its ports`);
      for (const port of ports) for (const w of targets) t.ok(containerPort(w, port), `NetworkPolicy ${nameOf(np)}: port ${String(port)} is a port of ${w.name}`);
      for (const from of list(rule.from, 'from').map((f) => obj(f, 'from'))) {
        if (isObj(from.podSelector) && from.namespaceSelector === undefined) t.ok(selected(from.podSelector).length > 0, `NetworkPolicy ${nameOf(np)}: a podSelector source selects pods in this render`);
      }
    }
  }
  const monitors = byKind('ServiceMonitor');
  t.equal(monitors.length, 1, 'one ServiceMonitor');
  for (const sm of monitors) {
    const spec = obj(sm.spec, 'ServiceMonitor spec');
    const svcs = services.filter((s) => selects(spec.selector, labelsOf(s)));
    t.equal(svcs.length, 1, `ServiceMonitor ${nameOf(sm)} selects one Service (${svcs.map(nameOf).join(', ')})`);
    for (const ep of list(spec.endpoints, 'endpoints').map((e) => obj(e, 'endpoint'))) {
      for (const svc of svcs) {
        const sp = list(obj(svc.spec, 'spec').ports, 'ports').map((p) => obj(p, 'port')).find((p) => p.name === ep.port);
        t.ok(sp, `ServiceMonitor port ${String(ep.port)} is a port of Service ${nameOf(svc)}`);
        for (const w of serviceTargets.get(nameOf(svc)) ?? []) {
          const cp = containerPort(w, sp?.targetPort);
          t.equal(cp?.container.name, 'mcp-warden', 'it scrapes the mcp-warden container');
          t.equal(portsOf(cp?.container ?? {}).find((p) => p.containerPort === cp?.port)?.name, 'admin', 'on its admin port');
          probes.push({ what: `${layout.name}: ServiceMonitor ${String(ep.path)}`, listener: 'admin', path: str(ep.path ?? '/metrics', 'endpoint path') });
        }
      }
    }
  }

  // ----- every container: resources, hardening, env names -----
  for (const w of all) {
    for (const c of w.containers) {
      const what = `${w.name}/${String(c.name)}`;
      t.same(Object.keys(c).filter((k) => !CONTAINER_FIELDS.has(k)), [], `${what}: only container fields`);
      const resources = obj(c.resources, `${what} resources`);
      for (const kind of ['requests', 'limits']) t.ok(['cpu', 'memory'].every((r) => obj(resources[kind], `${what} ${kind}`)[r] !== undefined), `${what}: ${kind} cpu and memory`);
      t.ok(bytes(obj(resources.requests, 'requests').memory) <= bytes(obj(resources.limits, 'limits').memory), `${what}: memory request within the limit`);
      const sc = obj(c.securityContext, `${what} securityContext`);
      t.ok(sc.runAsNonRoot === true || obj(w.pod.securityContext ?? {}, 'pod securityContext').runAsNonRoot === true, `${what}: runAsNonRoot`);
      t.equal(sc.readOnlyRootFilesystem, true, `${what}: readOnlyRootFilesystem`);
      t.equal(sc.allowPrivilegeEscalation, false, `${what}: allowPrivilegeEscalation false`);
      for (const e of list(c.env, 'env')) {
        const name = str(obj(e, 'env').name, 'env name');
        if (name.startsWith('MCP_WARDEN_')) t.ok(knownEnv.has(name), `${what}: ${name} is an env name the program reads`);
        t.notOk(secretEnv.has(name), `${what}: ${name} is not set (a secret goes in a file: its _FILE variable)`);
      }
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        if (!isObj(c[kind])) continue;
        const probe = obj(c[kind], kind);
        const port = isObj(probe.httpGet) ? probe.httpGet.port : isObj(probe.tcpSocket) ? probe.tcpSocket.port : undefined;
        if (port !== undefined) t.ok(portsOf(c).some((p) => p.name === port || p.containerPort === port), `${what} ${kind}: port ${String(port)} is a port of this container`);
      }
    }
  }

  // ----- the mcp-warden pod: the config it gets, from exactly what it mounts -----
  const wardens = all.filter((w) => w.containers.some((c) => c.name === 'mcp-warden'));
  t.equal(wardens.length, 1, 'one mcp-warden workload');
  const wardenW = wardens[0];
  if (!wardenW) return;
  const warden = obj(wardenW.containers.find((c) => c.name === 'mcp-warden'), 'mcp-warden container');
  t.equal(wardenW.pod.enableServiceLinks, false, 'no service-link variables (the Service named mcp-warden would set MCP_WARDEN_PORT)');
  t.ok(wardenW.replicas > 1, `replicated (${wardenW.replicas})`);
  t.equal(byKind('PodDisruptionBudget').filter((pdb) => selects(obj(pdb.spec, 'spec').selector, wardenW.labels)).length, 1, 'a PodDisruptionBudget covers mcp-warden');

  const volumes = new Map(list(wardenW.pod.volumes, 'volumes').map((v) => [str(obj(v, 'volume').name, 'volume name'), obj(v, 'volume')]));
  const secretVolumes = new Set([...volumes].filter(([, v]) => isObj(v.secret)).map(([k]) => k));
  const mountsOf = (c: Obj, substitute: boolean) =>
    list(c.volumeMounts, 'volumeMounts').flatMap((m) => {
      const mount = obj(m, 'volumeMount');
      const volume = volumes.get(str(mount.name, 'mount name'));
      if (!volume) throw new Error(`volume ${String(mount.name)} is not declared`);
      const path = str(mount.mountPath, 'mountPath');
      if (isObj(volume.configMap)) return [{ path, secret: false, files: Object.fromEntries(Object.entries(obj(named('ConfigMap', volume.configMap.name).data, 'data')).map(([k, v]) => [k, str(v, k)])) }];
      if (isObj(volume.secret)) {
        const values = obj(named('Secret', volume.secret.secretName).stringData, 'stringData');
        return [{ path, secret: true, files: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, substitute && PLACEHOLDER.test(str(v, k)) ? fakeSecret() : str(v, k)])) }];
      }
      return [];
    });
  for (const secret of byKind('Secret')) {
    for (const [key, value] of Object.entries(obj(secret.stringData ?? {}, 'stringData'))) t.match(str(value, key), PLACEHOLDER, `Secret ${key} is a placeholder, not a real secret`);
  }
  for (const [name, v] of volumes) if (isObj(v.secret)) t.equal(v.secret.defaultMode, 0o440, `secret volume ${name}: 0440, readable by the pod's group only`);

  const env = { ...stageEnv(finalStage('deploy/Dockerfile')), ...envOf(t, warden) };
  const mounts = mountsOf(warden, true);
  const config = await effectiveConfig(env, mountFiles(mounts));
  await t.rejects(effectiveConfig(env, mountFiles(mountsOf(warden, false))), /tokens\.secretFile/, 'with the placeholders left in, mcp-warden refuses to start');

  // Every secret file the config names (*_FILE env, "...File" keys in the config file) is a key
  // of a mounted Secret.
  const secretPaths = new Set(mounts.filter((m) => m.secret).flatMap((m) => Object.keys(m.files).map((k) => `${m.path}/${k}`)));
  const fileRefs: string[] = Object.entries(env).filter(([k]) => /^MCP_WARDEN_.*_FILE$/.test(k)).map(([, v]) => v);
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(collect);
    else if (isObj(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (/File$/.test(k) && typeof x === 'string') fileRefs.push(x);
        else collect(x);
      }
    }
  };
  for (const m of mounts.filter((x) => !x.secret)) for (const [k, content] of Object.entries(m.files)) if (k.endsWith('.json')) collect(JSON.parse(content));
  t.ok(fileRefs.length >= 2, `secret files named: ${fileRefs.join(', ')}`);
  for (const ref of fileRefs) t.ok(secretPaths.has(ref), `${ref} is a key of a mounted Secret`);
  t.ok(config.tokens.secret !== null && config.clients.length > 0 && config.clients.every((c) => c.secret !== null), 'the signing and client secrets are read from those files');

  // Ports: the listen port is containerPort http, metrics on the admin port, not the public one.
  const wardenPorts = portsOf(warden);
  const portNamed = (name: string): number | undefined => wardenPorts.find((p) => p.name === name)?.containerPort as number | undefined;
  t.equal(config.listen.host, '0.0.0.0', 'mcp-warden listens on the pod IP');
  t.equal(portNamed('http'), config.listen.port, 'containerPort http is the listen port');
  t.ok(config.admin.listen !== null, 'an admin listener: /metrics is off the public port');
  t.equal(portNamed('admin'), config.admin.listen?.port, 'containerPort admin is admin.listen');
  const listenerOf = (port: unknown): 'main' | 'admin' | null => {
    const n = typeof port === 'number' ? port : portNamed(String(port));
    return n === config.listen.port ? 'main' : n === config.admin.listen?.port ? 'admin' : null;
  };
  for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
    if (!isObj(warden[kind])) continue;
    const get = obj(obj(warden[kind], kind).httpGet, `${kind}.httpGet`);
    const listener = listenerOf(get.port);
    t.ok(listener, `${kind} targets a port mcp-warden listens on`);
    if (listener) probes.push({ what: `${layout.name}: ${kind} ${String(get.path)}`, listener, path: str(get.path, 'probe path') });
  }
  t.ok(probes.some((p) => p.what.startsWith(`${layout.name}: readinessProbe`)) && probes.some((p) => p.what.startsWith(`${layout.name}: livenessProbe`)), 'readiness and liveness probes');

  // The public Service and the Ingress reach only the listen port.
  const publicSvc = named('Service', 'mcp-warden');
  const publicPorts = list(obj(publicSvc.spec, 'spec').ports, 'ports').map((p) => obj(p, 'port'));
  t.same(publicPorts.map((p) => listenerOf(p.targetPort)), ['main'], 'the public Service targets only the listen port');
  for (const ing of byKind('Ingress')) {
    for (const rule of list(obj(ing.spec, 'spec').rules, 'rules')) {
      for (const path of list(obj(obj(rule, 'rule').http, 'http').paths, 'paths')) {
        const backend = obj(obj(obj(path, 'path').backend, 'backend').service, 'backend service');
        const svc = named('Service', backend.name);
        const port = obj(backend.port, 'backend port');
        t.ok(list(obj(svc.spec, 'spec').ports, 'ports').some((p) => obj(p, 'port').name === port.name || obj(p, 'port').port === port.number), `Ingress backend ${String(backend.name)}:${String(port.name ?? port.number)} is a port of that Service`);
        t.equal(svc, publicSvc, 'the Ingress sends to the public Service');
      }
    }
  }
  t.same(config.security.trustProxy, { kind: 'hops', hops: 1 }, 'trustProxy: the one hop the Ingress appends');

  // Who reaches mcp-warden: the Ingress controller (and, sidecar, the other replicas) on the
  // public port; only the monitoring namespace on the admin port.
  const policies = byKind('NetworkPolicy').filter((np) => selects(obj(np.spec, 'spec').podSelector, wardenW.labels));
  t.equal(policies.length, 1, 'one NetworkPolicy guards mcp-warden');
  const rules = list(obj(policies[0]?.spec, 'spec').ingress, 'ingress').map((r) => obj(r, 'rule'));
  const sourcesOf = (listener: 'main' | 'admin'): Obj[] => rules.filter((r) => list(r.ports, 'ports').some((p) => listenerOf(obj(p, 'port').port) === listener)).flatMap((r) => list(r.from, 'from').map((f) => obj(f, 'from')));
  const nsOf = (f: Obj): unknown => (isObj(f.namespaceSelector) ? obj(f.namespaceSelector.matchLabels, 'matchLabels')['kubernetes.io/metadata.name'] : undefined);
  const peers = (f: Obj): boolean => isObj(f.podSelector) && f.namespaceSelector === undefined && selects(f.podSelector, wardenW.labels);
  const publicSources = sourcesOf('main');
  t.same(publicSources.filter((f) => !peers(f)).map(nsOf), ['ingress-nginx'], 'the public port admits the Ingress controller');
  t.equal(publicSources.some(peers), layout.sidecar, layout.sidecar ? 'and the other replicas (they relay sessions)' : 'and no other pod (no relay in the gateway layout)');
  t.same(sourcesOf('admin').map(nsOf), ['monitoring'], 'the admin port admits only the monitoring namespace');

  // ----- the layout: where the upstream is -----
  if (layout.sidecar) {
    t.equal(config.replica.id, downward['metadata.name'], 'replica id: the pod name');
    t.equal(config.replica.advertiseUrl, `http://${downward['status.podIP'] ?? ''}:${config.listen.port}`, 'relay address: the pod IP on the listen port');
    const servers = wardenW.containers.filter((c) => c !== warden);
    t.equal(servers.length, 1, 'an MCP server container beside mcp-warden');
    for (const server of servers) {
      const serverEnv = { ...stageEnv(finalStage('deploy/Dockerfile.demo-upstream')), ...envOf(t, server) };
      t.equal(serverEnv.HOST, '127.0.0.1', 'the MCP server binds the pod loopback only');
      t.same(portsOf(server), [], 'and declares no port');
      t.notOk(list(server.volumeMounts, 'volumeMounts').some((m) => secretVolumes.has(String(obj(m, 'mount').name))), 'and does not see mcp-warden\'s secrets');
      t.same(config.upstreams.map((u) => [new URL(u).hostname, String(portOf(u))]), [['127.0.0.1', serverEnv.PORT]], 'upstream: the MCP server on the pod loopback');
    }
  } else {
    t.equal(config.replica.advertiseUrl, null, 'no relay: every replica forwards to the same upstreams');
    t.same(wardenW.containers.map((c) => c.name), ['mcp-warden'], 'mcp-warden alone in its pod');
    t.ok(config.upstreams.length > 0, 'upstreams');
    for (const upstream of config.upstreams) {
      const url = new URL(upstream);
      const svc = named('Service', url.hostname);
      const sp = list(obj(svc.spec, 'spec').ports, 'ports').map((p) => obj(p, 'port')).find((p) => p.port === portOf(upstream));
      t.ok(sp, `${upstream}: a port of Service ${url.hostname}`);
      const [w] = serviceTargets.get(url.hostname) ?? [];
      if (!w || !sp) continue;
      t.not(w, wardenW, 'the upstream Service selects the MCP server, not mcp-warden');
      const target = containerPort(w, sp.targetPort ?? sp.port);
      const serverEnv = { ...stageEnv(finalStage('deploy/Dockerfile.demo-upstream')), ...envOf(t, target?.container ?? {}) };
      t.equal(String(target?.port), serverEnv.PORT, 'which listens on that port (PORT)');
      t.equal(serverEnv.HOST, '0.0.0.0', 'on the pod IP');
      t.equal(url.pathname, /const MCP_PATH = '([^']+)'/.exec(read('demo/mcp-server.ts'))?.[1], 'the upstream URL has the demo server\'s MCP path');
      const guards = byKind('NetworkPolicy').filter((np) => selects(obj(np.spec, 'spec').podSelector, w.labels));
      const from = guards.flatMap((np) => list(obj(np.spec, 'spec').ingress, 'ingress')).flatMap((r) => list(obj(r, 'rule').from, 'from').map((f) => obj(f, 'from')));
      t.ok(guards.length === 1 && from.length > 0 && from.every(peers), 'a NetworkPolicy admits only mcp-warden to the MCP server');
    }
  }

  // ----- the store -----
  t.equal(config.store.type, 'redis', 'store: Redis (replicas share sessions)');
  const stateful = all.filter((w) => w.kind === 'StatefulSet');
  if (!layout.redis) {
    t.same(stateful, [], 'no Redis in the render without the component');
    return;
  }
  const redisUrl = new URL(config.store.url ?? '');
  const redisSvc = named('Service', redisUrl.hostname);
  const [redis] = serviceTargets.get(redisUrl.hostname) ?? [];
  if (!redis) throw new Error('the Redis Service selects no workload');
  t.equal(redis.kind, 'StatefulSet', 'store.url names the Service of the Redis StatefulSet');
  t.equal(redis.spec.serviceName, nameOf(redisSvc), 'which is its governing Service');
  t.equal(obj(redisSvc.spec, 'spec').clusterIP, 'None', 'headless');
  const sp = list(obj(redisSvc.spec, 'spec').ports, 'ports').map((p) => obj(p, 'port')).find((p) => p.port === portOf(redisUrl.href));
  t.equal(containerPort(redis, sp?.targetPort)?.port, portOf(redisUrl.href), 'the URL port is the Redis container port (headless: no port mapping)');
  t.equal(redis.replicas, 1, 'one Redis (a plain StatefulSet does not replicate)');
  const server = redis.containers.find((c) => c.name === 'redis');
  const args = list(server?.args, 'redis args').map((a) => String(a));
  const arg = (name: string): string | undefined => args[args.indexOf(`--${name}`) + 1];
  t.equal(args[0], 'redis-server', 'redis-server');
  t.equal(arg('appendonly'), 'yes', 'persistence: appendonly yes');
  t.equal(arg('maxmemory-policy'), 'noeviction', 'noeviction: sessions and revocations are never dropped to make room');
  // Redis units: "mb" is 1024 * 1024 bytes, "m" 1,000,000.
  const maxmemory = bytes(arg('maxmemory')?.replace(/([kmg])b$/i, (_, u: string) => `${u.toUpperCase()}i`).replace(/^(\d+)([kmg])$/i, (_, n: string, u: string) => `${n}${u === 'k' ? 'k' : u.toUpperCase()}`));
  t.ok(maxmemory * 1.2 <= bytes(obj(obj(server?.resources, 'resources').limits, 'limits').memory), 'maxmemory 20% below the memory limit (fragmentation, the AOF rewrite\'s fork): Redis refuses writes before the kernel kills it');
  const claims = list(redis.spec.volumeClaimTemplates, 'volumeClaimTemplates').map((c) => obj(c, 'claim'));
  const dataMount = list(server?.volumeMounts, 'volumeMounts').map((m) => obj(m, 'mount')).find((m) => m.mountPath === arg('dir'));
  t.ok(dataMount && claims.some((c) => nameOf(c) === dataMount.name), `--dir ${String(arg('dir'))} is on a PersistentVolumeClaim`);
  t.ok(claims.every((c) => obj(obj(obj(c.spec, 'spec').resources, 'resources').requests, 'requests').storage !== undefined), 'the claim asks for storage');
  const guards = byKind('NetworkPolicy').filter((np) => selects(obj(np.spec, 'spec').podSelector, redis.labels));
  const from = guards.flatMap((np) => list(obj(np.spec, 'spec').ingress, 'ingress')).flatMap((r) => list(obj(r, 'rule').from, 'from').map((f) => obj(f, 'from')));
  t.ok(guards.length === 1 && from.length > 0 && from.every(peers), 'a NetworkPolicy admits only mcp-warden to Redis');
}

// ---------- the checks ----------

const overlays = {
  sidecar: `${K8S}/overlays/sidecar`,
  gateway: `${K8S}/overlays/gateway`,
};
const REDIS = `${K8S}/components/redis`;

for (const [name, dir] of Object.entries(overlays)) {
  t.test(`kustomize: ${name} overlay`, async (t) => {
    await checkRender(t, { name, docs: kustomize(join(root, dir)), sidecar: name === 'sidecar', redis: false });
  });
  t.test(`kustomize: ${name} overlay with components/redis`, async (t) => {
    await checkRender(t, { name: `${name}+redis`, docs: withComponents(dir, [REDIS]), sidecar: name === 'sidecar', redis: true });
  });
}

t.test('README: the example kustomization renders; the Secret it leaves out is the one the README creates', async (t) => {
  const readme = read(`${K8S}/README.md`);
  const example = /```yaml\n# my-deploy\/kustomization\.yaml\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  t.match(example, /\.\.\/deploy\/kubernetes\//, 'the README shows a kustomization on top of deploy/kubernetes');
  const dir = mkdtempSync(join(tmpdir(), 'mcpw-kustomize-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'kustomization.yaml'), example.replaceAll('../deploy/kubernetes/', `${relative(dir, join(root, K8S))}/`));
  const docs = kustomize(dir);
  t.same(docs.filter((d) => d.kind === 'Secret'), [], 'no placeholder Secret in the render (apply would overwrite the real one)');
  const all = workloads(docs);
  const [warden] = all.flatMap((w) => w.containers).filter((c) => c.name === 'mcp-warden');
  t.equal(warden?.image, 'registry.example.com/mcp-warden:0.1.0', 'images: sets the mcp-warden image');
  t.ok(all.some((w) => w.kind === 'StatefulSet'), 'the Redis component is in');

  // The Secret the README's `kubectl create secret` makes has every key the base's Secret has.
  const base = kustomize(join(root, overlays.sidecar)).find((d) => d.kind === 'Secret');
  const created = /kubectl create secret generic (\S+)((?:\s+\\?\s*--from-literal=[^=\s]+=(?:"[^"]*"|\S+))+)/.exec(readme);
  t.equal(created?.[1], base && nameOf(base), 'the README creates the Secret the pod mounts');
  t.same([...(created?.[2] ?? '').matchAll(/--from-literal=([^=\s]+)=/g)].map((m) => m[1]).sort(), Object.keys(obj(base?.stringData, 'stringData')).sort(), 'with the same keys');
});

t.test('probe and scrape paths answer on the listener their port names, against a running warden', async (t) => {
  t.ok(probes.length >= 12, `${probes.length} probes and scrapes collected from the renders`);
  const loaded = await loadConfig({ flags: { host: '127.0.0.1', port: '0', 'log-level': 'silent' }, env: { MCP_WARDEN_ADMIN_LISTEN: `127.0.0.1:${await freePort()}` } });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const config: Config = loaded.config;
  const warden = await createWarden(config);
  t.teardown(() => warden.close());
  const address = warden.server.address();
  const base = { main: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, admin: warden.adminUrl ?? '' };
  t.ok(base.admin, 'the admin listener is up');
  for (const p of new Map(probes.map((x) => [`${x.listener} ${x.path}`, x])).values()) {
    const res = await fetch(`${base[p.listener]}${p.path}`);
    t.equal(res.status, 200, `${p.what}: GET ${p.path} on the ${p.listener} listener answers 200`);
    if (p.path === '/metrics') t.match(await res.text(), /^# HELP mcp_warden_/m, 'Prometheus text with mcp-warden\'s metrics');
    else await res.body?.cancel();
  }
  t.equal((await fetch(`${base.main}/metrics`)).status, 404, 'with an admin listener, /metrics is not on the public port');
  t.equal((await fetch(`${base.main}/no-such-probe`)).status, 404, 'and a wrong path would fail');
});

t.test('memory guidance follows the bench (docs/performance.md: idle streams)', async (t) => {
  const row = read('docs/performance.md').split('\n').find((l) => l.startsWith('| warden-memory |') && /\| [\d,]+ \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/.test(l));
  const cells = row?.split('|').map((c) => c.trim()) ?? [];
  // | target | streams held | failed | RSS before (MB) | RSS holding (MB) | per stream (KB) | ...
  const before = Number(cells[4]);
  const perStream = Number(cells[6]);
  t.ok(before > 0 && perStream > 0, `bench: ${before} MB before, ${perStream} KB per idle stream`);
  const need = (streams: number): number => before * 1e6 + streams * perStream * 1e3;

  // The manifest's comment quotes these numbers and says how many streams each quantity holds.
  const source = read(`${K8S}/base/deployment.yaml`);
  t.ok(source.includes(`${before} MB`) && source.includes(`${perStream} KB`), 'base/deployment.yaml quotes the bench numbers');
  const [warden] = workloads(kustomize(join(root, overlays.gateway))).flatMap((w) => w.containers).filter((c) => c.name === 'mcp-warden');
  const resources = obj(warden?.resources, 'resources');
  for (const kind of ['requests', 'limits']) {
    const m = new RegExp(`${kind}\\.memory (\\S+): ~([\\d,]+) open streams`).exec(source);
    const quantity = obj(resources[kind], kind).memory;
    t.equal(m?.[1], quantity, `the comment's ${kind}.memory is the manifest's`);
    const streams = Number(m?.[2]?.replace(/,/g, ''));
    t.ok(streams > 0 && bytes(quantity) >= need(streams), `${kind}.memory ${String(quantity)} holds ${streams} streams (${(need(streams) / 2 ** 20).toFixed(0)} MiB)`);
    t.ok(bytes(quantity) < need(streams * 1.25), `and the stream count is not understated by more than a quarter`);
  }

  // The README's sizing table: each row is the bench's arithmetic.
  const table = read(`${K8S}/README.md`).split('\n').filter((l) => /^\| [\d,]+ \| \d+ MiB \|/.test(l));
  t.ok(table.length >= 3, 'deploy/kubernetes/README.md has a sizing table');
  for (const line of table) {
    const [, streams, mib] = /^\| ([\d,]+) \| (\d+) MiB \|/.exec(line) ?? [];
    t.equal(Number(mib), Math.ceil(need(Number(streams?.replace(/,/g, ''))) / 2 ** 20), `${String(streams)} idle streams: ${String(mib)} MiB RSS`);
  }
});
