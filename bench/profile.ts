/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self time,
 * and self time per origin (mcp-warden's dist/, each package, Node internals), so "where did the
 * time go" has an answer without opening DevTools. The profiler samples wall time while the
 * thread is not idle: on a busy machine a descheduled system call (writev) looks expensive, so
 * read it next to the CPU µs/req of the throughput table.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileLine {
  readonly name: string;
  readonly selfMs: number;
  /** Share of busy time (idle excluded). */
  readonly percent: number;
}

export interface ProfileSummary {
  readonly busyMs: number;
  readonly idleMs: number;
  readonly functions: readonly ProfileLine[];
  readonly origins: readonly ProfileLine[];
}

function origin(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.includes('/dist/')) return 'mcp-warden (dist/)';
  if (url.includes('/bench/')) return `bench/${url.slice(url.lastIndexOf('/') + 1)}`;
  return url;
}

function place(url: string, line: number): string {
  const short = url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/');
  return short ? ` ${short}:${line + 1}` : '';
}

function top(map: Map<string, number>, busyMs: number, count: number): ProfileLine[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, selfMs]) => ({ name, selfMs, percent: (100 * selfMs) / busyMs }));
}

/**
 * The main thread's profile in a `--cpu-prof-dir`: V8 names files
 * `CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile`, and the main thread is thread 0
 * (a tsx loader runs on another). Null when there is none.
 */
export async function mainThreadProfile(dir: string): Promise<string | null> {
  const files = await readdir(dir).catch(() => [] as string[]);
  const main = files.find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  return main ? path.join(dir, main) : null;
}

/** Reads one profile and ranks self time by function and by origin. */
export async function summariseProfile(file: string, count = 20): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  let idleMs = 0;
  let busyMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = nodes.get(id)?.callFrame;
    if (!frame) return;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      return;
    }
    busyMs += ms;
    const name = `${frame.functionName || '(anonymous)'}${place(frame.url, frame.lineNumber)}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    const from = origin(frame.url, frame.functionName);
    byOrigin.set(from, (byOrigin.get(from) ?? 0) + ms);
  });
  return { busyMs, idleMs, functions: top(byFunction, busyMs, count), origins: top(byOrigin, busyMs, 12) };
}

/**
 * The summary as Markdown. With `requests` (everything the process answered while profiled),
 * self time is also shown per request, which is what compares across proxies.
 */
export function renderProfile(title: string, summary: ProfileSummary, requests: number | null): string {
  const perRequest = (ms: number): string => (requests ? ` ${((ms * 1000) / requests).toFixed(1)} |` : '');
  const head = (first: string): string[] => [
    `| ${first} | self ms | share of busy |${requests ? ' µs/request |' : ''}`,
    `| --- | --- | --- |${requests ? ' --- |' : ''}`,
  ];
  const rows = (lines: readonly ProfileLine[]) =>
    lines.map((l) => `| ${l.name.replace(/\|/g, '\\|')} | ${l.selfMs.toFixed(0)} | ${l.percent.toFixed(1)}% |${perRequest(l.selfMs)}`);
  return [
    `### ${title}`,
    '',
    `Busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms${requests ? `, ${requests} requests answered (${((summary.busyMs * 1000) / requests).toFixed(0)} µs busy per request)` : ''}.`,
    '',
    ...head('origin'), ...rows(summary.origins),
    '',
    ...head('function'), ...rows(summary.functions),
    '',
  ].join('\n');
}
