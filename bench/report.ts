/** Renders a run as Markdown and writes bench/results/latest.md and latest.json. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pairedOverheadMs } from './first-event.js';
import type { FirstEventResult } from './first-event.js';
import type { GoalCheck } from './goals.js';
import { ROOT } from './processes.js';
import type { BenchResults } from './results.js';
import { SESSION_ROUNDS } from './session-scale.js';

export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');

const fixed = (value: number, digits = 2): string => value.toFixed(digits);
const int = (value: number): string => Math.round(value).toLocaleString('en-US');

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function throughputSection(results: BenchResults, saturated: boolean): string[] {
  const rows = saturated ? results.throughputSaturated : results.throughput;
  if (!rows) return [];
  const bare = rows.find((r) => r.target === 'bare');
  const o = results.options;
  return [
    `## Throughput${saturated ? ' at saturation' : ''}: POST tools/call (median of ${o.rounds} rounds, ${o.duration} s each, ${saturated ? o.saturate : o.connections} connections)`,
    '',
    ...(saturated
      ? ['Enough connections that every proxy is kept busy: what each can carry, where the run above (a closed loop at few connections) also counts the wait of each extra network hop.', '']
      : []),
    table(
      ['target', 'auth', 'store', 'req/s', 'p50 ms', 'p99 ms', 'errors+non2xx', 'vs bare req/s', 'p99 overhead vs bare', 'CPU µs/req', 'CPU vs bare', 'Redis cmds/req', 'req/s per round'],
      rows.map((r) => [
        r.target,
        r.auth,
        r.store ?? '-',
        int(r.requestsPerSecond),
        fixed(r.p50Ms),
        fixed(r.p99Ms),
        String(r.failures),
        bare ? `${fixed(r.requestsPerSecond / bare.requestsPerSecond)}x` : '-',
        bare ? `${r.p99Ms - bare.p99Ms >= 0 ? '+' : ''}${fixed(r.p99Ms - bare.p99Ms)} ms` : '-',
        fixed(r.cpuMicrosPerRequest, 0),
        bare && bare.cpuMicrosPerRequest > 0 ? `${fixed(r.cpuMicrosPerRequest / bare.cpuMicrosPerRequest)}x` : '-',
        r.storeCommandsPerRequest === null ? '-' : fixed(r.storeCommandsPerRequest),
        r.rounds.map((x) => int(x.requestsPerSecond)).join(' / '),
      ]),
    ),
    '',
    'Latencies are per request as seen by the load generator (hrtime, fractional ms); `direct` is the upstream without any proxy. ' +
      'CPU µs/req is the user+system CPU of the target\'s own process (/proc/<pid>/stat) divided by the requests it answered: the proxy ' +
      'alone for proxies, the upstream for `direct`. On a machine shared with other work it moves far less than req/s does.',
    '',
  ];
}

function featuresSection(results: BenchResults): string[] {
  const rows = results.features;
  if (!rows) return [];
  const o = results.options;
  return [
    `## Features on Redis + clientCache: POST tools/call (median of ${o.rounds} rounds, ${o.duration} s each, ${o.connections} connections)`,
    '',
    'Each feature of the other open issues is on in its own mcp-warden (the private Redis, `store.clientCache`, its own key prefix), ' +
      'measured in interleaved, rotated rounds with `bare-undici` and `warden-redis-cached` (the same store, no feature). ' +
      'The ratios are medians of the per-round ratios. Redis counts the commands a script runs as well as the script itself ' +
      '(a budget counter: one script call, 3 commands: EVALSHA, PEXPIRETIME, INCRBY).',
    '',
    table(
      ['target', 'feature', 'req/s', 'p50 ms', 'p99 ms', 'errors+non2xx', 'CPU µs/req', 'Redis cmds/req (in scripts too)', 'vs bare-undici req/s', 'vs feature-off req/s', 'req/s per round'],
      rows.map((r) => [
        r.target,
        r.feature ?? (r.store === null ? '(floor)' : 'none (feature-off)'),
        int(r.requestsPerSecond),
        fixed(r.p50Ms),
        fixed(r.p99Ms),
        String(r.failures),
        fixed(r.cpuMicrosPerRequest, 0),
        r.storeCommandsPerRequest === null ? '-' : fixed(r.storeCommandsPerRequest),
        `${fixed(r.vsFloor)}x`,
        r.store === null ? '-' : `${fixed(r.vsFeatureOff)}x`,
        r.rounds.map((x) => int(x.requestsPerSecond)).join(' / '),
      ]),
    ),
    '',
  ];
}

function firstEventSection(results: BenchResults): string[] {
  const rows = results.firstEvent;
  if (!rows) return [];
  const direct = rows.find((r) => r.target === 'direct');
  const undici = rows.find((r) => r.target === 'bare-undici');
  const paired = (r: FirstEventResult): string => {
    const ms = undici && r !== undici ? pairedOverheadMs(r, undici) : null;
    return ms === null ? '-' : `${ms >= 0 ? '+' : ''}${fixed(ms, 3)} ms`;
  };
  return [
    `## SSE first event (${results.options.sseSamples} sequential GETs per target, interleaved; request written -> first \`data:\` byte)`,
    '',
    table(
      ['target', 'median ms', 'p90 ms', 'min ms', 'median vs direct', 'vs bare-undici (median of per-round differences)', 'failures'],
      rows.map((r) => [r.target, fixed(r.medianMs, 3), fixed(r.p90Ms, 3), fixed(r.minMs, 3), direct ? `+${fixed(r.medianMs - direct.medianMs, 3)} ms` : '-', paired(r), String(r.failures)]),
    ),
    '',
    ...(results.firstEventRedisPingMs === null
      ? []
      : [
          `A Redis PING from the bench, timed once per round at the same pacing, took ${fixed(results.firstEventRedisPingMs, 3)} ms (median): what one round trip to a process that was idle costs here; warden-redis makes one more than warden-memory (a script rather than a PING, so somewhat more).`,
          '',
        ]),
  ];
}

function idleStreamsSection(results: BenchResults): string[] {
  const rows = results.idleStreams;
  if (!rows) return [];
  return [
    `## Idle GET streams (${int(results.options.streams)} requested, RSS from /proc/<pid>/status)`,
    '',
    table(
      ['target', 'streams held', 'failed', 'RSS before (MB)', 'RSS holding (MB)', 'per stream (KB)', `RSS at ${int(results.options.streams)} (MB)`, 'note'],
      rows.map((r) => [
        r.target, int(r.opened), String(r.failed), fixed(r.rssBeforeMB, 1), fixed(r.rssAfterMB, 1), fixed(r.rssPerStreamKB, 2),
        `${fixed(r.rssAtRequestedMB, 1)}${r.extrapolated ? ' (extrapolated)' : ''}`, r.cappedBy ? `capped by ${r.cappedBy}` : '',
      ]),
    ),
    '',
    "MB = 10^6 bytes. The references are floors for comparison: `direct` is the upstream alone (Node's HTTP server, one socket per stream); `bare` and `bare-undici` are proxies without auth (a client and an upstream socket per stream). They run under tsx, whose loader is part of their RSS before; per stream (KB) is the like-for-like figure.",
    '',
  ];
}

function sessionsSection(results: BenchResults): string[] {
  const out: string[] = [];
  if (results.sessionScale) {
    const bare = results.sessionReference;
    out.push(
      `## Latency vs sessions stored in Redis (one Redis and one warden-redis per level; ${SESSION_ROUNDS} interleaved rounds of ${results.options.sessionDuration} s with the bare proxy, medians; ${results.options.connections} connections)`,
      '',
      table(
        ['sessions stored', 'req/s', 'p50 ms', 'p99 ms', 'p50 per round (ms)', 'Redis µs per state script', 'Redis cmds/req (in scripts too)', 'errors+non2xx', 'rehash after fill (s, at hz 100)'],
        [
          ...results.sessionScale.map((r) => [
            int(r.storedSessions), int(r.requestsPerSecond), fixed(r.p50Ms), fixed(r.p99Ms), r.roundP50Ms.map((x) => fixed(x)).join(' / '),
            r.redisMicrosPerScript === null ? '-' : fixed(r.redisMicrosPerScript, 1), fixed(r.storeCommandsPerRequest), String(r.failures), fixed(r.rehashSeconds, 1),
          ]),
          ...(bare ? [['bare (no Redis)', '-', fixed(bare.p50Ms), '-', bare.roundP50Ms.map((x) => fixed(x)).join(' / '), '-', '-', '-', '-']] : []),
        ],
      ),
      '',
      "Redis µs per state script: Redis's own time per EVALSHA (`INFO commandstats`), the one command each request sends (Redis cmds/req also counts the commands run inside it). Each level is measured once Redis has finished the rehash its fill started (`hz` raised to 100 while waiting, then put back): a keyspace that crosses a power of two is rehashed incrementally, and for that minute or two every lookup costs about twice as much.",
      '',
    );
  }
  const memory = results.redisMemory;
  if (memory) {
    out.push(
      '## Redis memory per session',
      '',
      `${fixed(memory.bytesPerSession, 0)} bytes per session: \`used_memory\` grew by ${int(memory.usedMemoryDeltaBytes)} bytes for ${int(memory.keysAdded)} records ` +
        `(~${memory.valueBytes}-byte values with a TTL, plus each record's entry in its client's session index). \`MEMORY USAGE\` of one record: ${memory.memoryUsageOneKey ?? '?'} bytes (excludes the keyspace and expiry dict entries).`,
      '',
    );
  }
  return out;
}

/** The whole report as Markdown. */
export function renderMarkdown(results: BenchResults, goals: readonly GoalCheck[]): string {
  const m = results.machine;
  const o = results.options;
  return [
    '# mcp-warden benchmark',
    '',
    `${m.date} · ${m.cpuModel} (${m.cores} cores) · Node ${m.node} · Redis ${m.redis} · commit ${m.commit} · loopback only`,
    '',
    '## Targets from the performance issue',
    '',
    table(['target', 'measured', 'result', 'note'], goals.map((g) => [g.goal, g.measured, g.verdict, g.note ?? ''])),
    '',
    ...throughputSection(results, false),
    ...throughputSection(results, true),
    ...featuresSection(results),
    ...firstEventSection(results),
    ...idleStreamsSection(results),
    ...sessionsSection(results),
    ...(results.notes.length ? ['## Notes', '', ...results.notes.map((n) => `- ${n}`), ''] : []),
    '## Machine and options',
    '',
    table(['', ''], [
      ['date', m.date], ['CPU', `${m.cpuModel}, ${m.cores} cores`], ['memory', `${m.memoryGB} GB`], ['OS', m.os], ['Node', m.node],
      ['Redis', m.redis], ['autocannon', m.autocannon], ['http-proxy-3', m.httpProxy3], ['undici', m.undici], ['commit', m.commit], ['open-file limit', m.openFileLimit],
      ['load average (1 min)', `${fixed(m.loadAverage.start)} at start, ${fixed(m.loadAverage.end)} at end (${m.cores} cores)`],
      ['options', `--duration ${o.duration} --connections ${o.connections} --saturate ${o.saturate} --rounds ${o.rounds} --warmup ${o.warmup} --only ${o.only.join(',')} --streams ${o.streams} --sse-samples ${o.sseSamples} --session-duration ${o.sessionDuration}${o.profile ? ' --profile' : ''}`],
    ]),
    '',
  ].join('\n');
}

/** Writes latest.md and latest.json; returns their paths. */
export async function writeResults(results: BenchResults, goals: readonly GoalCheck[], markdown: string): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const md = path.join(RESULTS_DIR, 'latest.md');
  const json = path.join(RESULTS_DIR, 'latest.json');
  await writeFile(md, markdown);
  await writeFile(json, `${JSON.stringify({ ...results, goals }, null, 2)}\n`);
  return [md, json];
}
