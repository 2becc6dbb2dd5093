/**
 * Memory of a proxy holding many idle GET event streams: open them over raw sockets, let the
 * process settle, read VmRSS from /proc. A proxy spends two file descriptors per stream (client
 * and upstream socket), so the count is capped by what the processes' open-file limits allow;
 * below the requested count the RSS is also extrapolated linearly, and the report says so.
 */
import { readdir, readFile } from 'node:fs/promises';
import type net from 'node:net';
import { openEventStream } from './event-stream.js';
import { say } from './progress.js';
import type { Target, TargetName } from './targets.js';
import { sessionHeaders } from './workload.js';
import type { Credentials } from './workload.js';

export interface IdleStreamsResult {
  readonly target: TargetName;
  readonly requested: number;
  readonly opened: number;
  readonly failed: number;
  /** Why fewer than requested were attempted (an open-file limit), or null. */
  readonly cappedBy: string | null;
  readonly rssBeforeMB: number;
  readonly rssAfterMB: number;
  readonly rssPerStreamKB: number;
  /** RSS at `requested` streams: measured, or extrapolated from `opened` when capped. */
  readonly rssAtRequestedMB: number;
  readonly extrapolated: boolean;
  readonly openSeconds: number;
}

const BATCH = 250;
// Descriptors left for everything else a process opens (listeners, Redis, stdio, epoll...).
const FD_RESERVE = 64;
const SETTLE_MS = 1_000;

/** VmRSS of a process in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

async function openFiles(pid: number): Promise<{ open: number; limit: number }> {
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1] ?? 'unlimited';
  const open = (await readdir(`/proc/${pid}/fd`)).length;
  return { open, limit: soft === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(soft) };
}

/** How many streams each process can still take, and which one is the tightest. */
async function capacity(holders: { name: string; pid: number; perStream: number }[]): Promise<{ streams: number; by: string }> {
  let best = { streams: Number.MAX_SAFE_INTEGER, by: '' };
  for (const holder of holders) {
    const { open, limit } = await openFiles(holder.pid);
    const streams = Math.floor((limit - open - FD_RESERVE) / holder.perStream);
    if (streams < best.streams) best = { streams, by: `${holder.name}: open-file limit ${limit}, ${holder.perStream} per stream` };
  }
  return best;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const MB = 1_000_000;

/**
 * Opens up to `requested` idle streams through `target` (its upstream is `upstreamPid`; null when
 * the target is the upstream itself, which then holds one socket per stream instead of two),
 * reads the target's RSS, then closes them all and waits until the target has let go of the sockets.
 */
export async function measureIdleStreams(target: Target, upstreamPid: number | null, credentials: Credentials | null, requested: number): Promise<IdleStreamsResult> {
  const room = await capacity([
    { name: target.name, pid: target.child.pid, perStream: upstreamPid === null ? 1 : 2 },
    ...(upstreamPid === null ? [] : [{ name: 'upstream', pid: upstreamPid, perStream: 1 }]),
    { name: 'bench client', pid: process.pid, perStream: 1 },
  ]);
  const attempt = Math.min(requested, room.streams);
  const cappedBy = attempt < requested ? room.by : null;
  if (cappedBy) say(`idle streams ${target.name}: capped at ${attempt} (${cappedBy})`);

  const url = new URL(target.mcpUrl);
  // A proxy that does not flush the response head (http-proxy-3 alone waits for the first body
  // byte) would leave an idle stream unconfirmed; one event per stream makes every target
  // answer and then go idle.
  const headers = { ...sessionHeaders(credentials), 'x-bench-first-event': '1' };
  const sockets: net.Socket[] = [];
  let failed = 0;
  const fdsBefore = (await openFiles(target.child.pid)).open;
  const upstreamFdsBefore = upstreamPid === null ? 0 : (await openFiles(upstreamPid)).open;
  const rssBefore = await rssBytes(target.child.pid);
  const started = Date.now();
  try {
    // Batches keep the connects within the listen backlog: a dropped SYN costs a 1 s retry.
    for (let done = 0; done < attempt; done += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, attempt - done) }, () => openEventStream(url, headers, 15_000));
      for (const outcome of await Promise.allSettled(batch)) {
        if (outcome.status === 'fulfilled') sockets.push(outcome.value.socket);
        else failed++;
      }
    }
    const openSeconds = (Date.now() - started) / 1000;
    await sleep(SETTLE_MS);
    const rssAfter = await rssBytes(target.child.pid);
    const perStream = sockets.length ? (rssAfter - rssBefore) / sockets.length : 0;
    const result: IdleStreamsResult = {
      target: target.name,
      requested,
      opened: sockets.length,
      failed,
      cappedBy,
      rssBeforeMB: rssBefore / MB,
      rssAfterMB: rssAfter / MB,
      rssPerStreamKB: perStream / 1000,
      rssAtRequestedMB: (rssBefore + perStream * requested) / MB,
      extrapolated: sockets.length < requested,
      openSeconds,
    };
    say(`idle streams ${target.name}: ${sockets.length} open (${failed} failed) in ${openSeconds.toFixed(1)} s, RSS ${result.rssBeforeMB.toFixed(1)} -> ${result.rssAfterMB.toFixed(1)} MB`);
    return result;
  } finally {
    for (const socket of sockets) socket.destroy();
    // The upstream too: a proxy may let go of its upstream sockets later than of the clients',
    // and the next target's capacity is counted from what the upstream holds then.
    await drained(target.child.pid, fdsBefore);
    if (upstreamPid !== null) await drained(upstreamPid, upstreamFdsBefore);
  }
}

/** Waits (up to 10 s) until the target is back near its descriptor count from before the streams. */
async function drained(pid: number, fdsBefore: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await openFiles(pid)).open > fdsBefore + 16) await sleep(100);
}
