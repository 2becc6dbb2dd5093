/**
 * What one idle GET stream keeps alive, by heap snapshot:
 * `npx tsx bench/stream-heap.ts [n] [warden|undici|both]` (build first). Opens 50 streams (so that
 * lazily made things exist), takes a heap snapshot (which collects garbage first), opens n more,
 * takes another, and prints the live objects that grew, per stream, by constructor; through
 * mcp-warden (memory store) and through bare-undici. Not part of `npm run bench`.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { openEventStream } from './event-stream.js';
import { freePort, HOST } from './ports.js';
import { tokenThenInitialize, initializeOnly } from './prepare.js';
import { cleanup, installCleanupHandlers, startChild, startScript, waitHealthy } from './processes.js';
import type { Child } from './processes.js';
import { rssBytes } from './idle-streams.js';
import { writeWardenConfig } from './warden-config.js';
import { sessionHeaders } from './workload.js';
import type { Credentials } from './workload.js';

const n = Number(process.argv[2] ?? 2000);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Snapshot {
  readonly groups: Map<string, { count: number; bytes: number }>;
  readonly total: number;
}

/**
 * Live objects of a heap snapshot grouped by type and constructor name; plain objects by their
 * first property names, strings, arrays and closures by what holds them (first strong retainer).
 */
async function summarize(file: string): Promise<Snapshot> {
  const snap = JSON.parse(await readFile(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const { meta } = snap.snapshot;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const etypes = meta.edge_types[0];
  const width = fields.length;
  const ewidth = meta.edge_fields.length;
  const [typeAt, nameAt, sizeAt, edgeCountAt] = ['type', 'name', 'self_size', 'edge_count'].map((f) => fields.indexOf(f)) as [number, number, number, number];
  const [etypeAt, enameAt, etoAt] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f)) as [number, number, number];
  const count = snap.nodes.length / width;
  const nodeType = (i: number): string => types[snap.nodes[i * width + typeAt] ?? 0] ?? '?';
  const nodeName = (i: number): string => snap.strings[snap.nodes[i * width + nameAt] ?? 0] ?? '?';
  const retainer = new Int32Array(count).fill(-1);
  const retainerEdge = new Array<string>(count);
  const props = new Array<string[]>(count);
  let e = 0;
  for (let i = 0; i < count; i++) {
    const edges = snap.nodes[i * width + edgeCountAt] ?? 0;
    for (let k = 0; k < edges; k++, e += ewidth) {
      const et = etypes[snap.edges[e + etypeAt] ?? 0] ?? '?';
      const to = (snap.edges[e + etoAt] ?? 0) / width;
      const rawName = snap.edges[e + enameAt] ?? 0;
      const ename = et === 'element' || et === 'hidden' ? `[${rawName}]` : (snap.strings[rawName] ?? '?');
      if (et === 'property' || et === 'internal') (props[i] ??= []).push(ename);
      if (et === 'weak' || et === 'shortcut') continue;
      if (retainer[to] === -1 && !(nodeType(i) === 'synthetic')) {
        retainer[to] = i;
        retainerEdge[to] = ename;
      }
    }
  }
  const holder = (i: number): string => {
    const r = retainer[i] ?? -1;
    if (r === -1) return '(none)';
    const rt = nodeType(r);
    const what = rt === 'object' && nodeName(r) === 'Object' ? `{${(props[r] ?? []).filter((p) => p !== '__proto__' && p !== 'map').slice(0, 5).join(',')}}` : nodeName(r).slice(0, 30);
    return `${rt === 'object' ? '' : `${rt}:`}${what}.${(retainerEdge[i] ?? '').slice(0, 30)}`;
  };
  const groups = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < count; i++) {
    const type = nodeType(i);
    let name = nodeName(i);
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = `(string) in ${holder(i)}`;
    else if (type === 'code') name = '(code)';
    else if (type === 'array' || type === 'closure' || type === 'hidden' || (type === 'object' && (name === 'Array' || name === 'system / Context' || name === 'Promise'))) name = `${name.slice(0, 40)} in ${holder(i)}`;
    else if (type === 'object' && name === 'Object') name = `{${(props[i] ?? []).filter((p) => p !== '__proto__' && p !== 'map').slice(0, 6).join(',')}} in ${holder(i)}`;
    const key = `${type}:${name.slice(0, 100)}`;
    const size = snap.nodes[i * width + sizeAt] ?? 0;
    total += size;
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
  }
  return { groups, total };
}

async function snapshot(child: Child, dir: string): Promise<Snapshot> {
  const before = new Set(await readdir(dir));
  process.kill(child.pid, 'SIGUSR2');
  for (;;) {
    await sleep(500);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    const file = files[0];
    if (!file) continue;
    // Written when its size stops growing.
    let size = -1;
    for (;;) {
      const { size: now } = await stat(path.join(dir, file));
      if (now === size && now > 0) break;
      size = now;
      await sleep(700);
    }
    const summary = await summarize(path.join(dir, file));
    await rm(path.join(dir, file));
    return summary;
  }
}

async function open(url: URL, headers: Record<string, string>, count: number, into: net.Socket[]): Promise<void> {
  for (let done = 0; done < count; done += 250) {
    const batch = await Promise.all(Array.from({ length: Math.min(250, count - done) }, () => openEventStream(url, headers, 15_000)));
    for (const s of batch) into.push(s.socket);
  }
}

async function probe(name: string, child: Child, mcpUrl: string, credentials: Credentials | null, dir: string): Promise<void> {
  const url = new URL(mcpUrl);
  const headers = { ...sessionHeaders(credentials), 'x-bench-first-event': '1' };
  const sockets: net.Socket[] = [];
  await open(url, headers, 50, sockets); // warm up lazily made things
  await sleep(500);
  const base = await snapshot(child, dir);
  const rss0 = await rssBytes(child.pid);
  await open(url, headers, n, sockets);
  await sleep(1000);
  const rss1 = await rssBytes(child.pid);
  const after = await snapshot(child, dir);
  const rows = [...after.groups].map(([key, g]) => {
    const b = base.groups.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: (g.count - b.count) / n, bytes: (g.bytes - b.bytes) / n };
  }).filter((r) => Math.abs(r.bytes) >= 8).sort((a, b) => b.bytes - a.bytes);
  console.log(`\n## ${name}: live heap per stream ${((after.total - base.total) / n).toFixed(0)} B; RSS per stream before snapshot ${((rss1 - rss0) / n / 1000).toFixed(2)} KB`);
  for (const r of rows.slice(0, Number(process.env.ROWS ?? 90))) console.log(`${r.bytes.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(6)}  ${r.key}`);
  for (const s of sockets) s.destroy();
}

installCleanupHandlers();
const dir = await mkdtemp(path.join(tmpdir(), 'stream-heap-'));
try {
  const [upstreamPort, wardenPort, undiciPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const origin = (port: number): string => `http://${HOST}:${port}`;
  const upstream = startScript('upstream', 'upstream.ts', [String(upstreamPort)], { leash: true });
  await waitHealthy(`${origin(upstreamPort)}/healthz`, upstream);
  const { file, client } = await writeWardenConfig(dir);
  const snapArgs = ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];
  const only = process.argv[3] ?? 'both';
  if (only !== 'undici') {
    const warden = startChild('warden-memory', process.execPath, [...snapArgs, 'dist/cli/index.js', 'serve', '--host', HOST, '--port', String(wardenPort), '--upstream', `${origin(upstreamPort)}/mcp`, '--config', file, '--log-level', 'warn']);
    await waitHealthy(`${origin(wardenPort)}/healthz`, warden);
    const credentials = await tokenThenInitialize(origin(wardenPort), client)(`${origin(wardenPort)}/mcp`);
    await probe('warden-memory', warden, `${origin(wardenPort)}/mcp`, credentials, dir);
    await warden.stop();
  }
  if (only !== 'warden') {
    const undici = startScript('bare-undici', 'bare-undici.ts', [String(undiciPort), origin(upstreamPort)], { leash: true, nodeArgs: snapArgs });
    await waitHealthy(`${origin(undiciPort)}/healthz`, undici);
    const credentials = await initializeOnly()(`${origin(undiciPort)}/mcp`);
    await probe('bare-undici', undici, `${origin(undiciPort)}/mcp`, credentials, dir);
  }
} finally {
  await cleanup();
  await rm(dir, { recursive: true, force: true });
}
