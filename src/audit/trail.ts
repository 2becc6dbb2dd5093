import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { createWriteStream, existsSync, renameSync, statSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { AuditStore } from '../store/types.js';
import { canonical, checkpointMessage } from './chain.js';

/**
 * The tamper-evident audit trail's writer: one hash chain per replica, signed checkpoints every
 * `checkpointEvery` records or `checkpointIntervalMs`, written to its sinks off the request path.
 * A record is chained at once (so its place is fixed) and queued; a flush after the current turn
 * of the event loop writes the queue to every sink. A full queue or a failing sink loses records
 * (counted and logged), or, with `failClosed`, makes `accepting()` false so requests are refused.
 */
export interface AuditSink {
  readonly name: 'file' | 'stdout' | 'redis';
  write(lines: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export interface AuditTrail {
  /** Chains and queues one record; never waits. */
  append(fields: Record<string, unknown>): void;
  /** False while the trail cannot keep up or a sink fails (failClosed refuses requests then). */
  accepting(): boolean;
  /** The replica's public key, as the `start` line publishes it. */
  readonly publicKey: { kty: 'OKP'; crv: 'Ed25519'; x: string };
  readonly kid: string;
  /** Writes a final checkpoint, flushes and closes the sinks. */
  close(): Promise<void>;
}

export interface AuditTrailOptions {
  readonly replica: string;
  readonly sinks: readonly AuditSink[];
  readonly clock: () => number;
  readonly checkpointEvery: number;
  readonly checkpointIntervalMs: number;
  readonly maxQueue: number;
  /** Records lost (a full queue, a failed write): metric and event. */
  readonly onLoss: (count: number, reason: 'queue_full' | 'sink_failed', sink: string | null) => void;
}

const FLUSH_MS = 20;
const FLUSH_LINES = 512;

export function createAuditTrail(options: AuditTrailOptions): AuditTrail {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as { kty: 'OKP'; crv: 'Ed25519'; x: string };
  const kid = createHash('sha256').update(jwk.x).digest('base64url').slice(0, 16);
  let seq = 0;
  let prev = '';
  let sinceCheckpoint = 0;
  let queue: string[] = [];
  let flushing: Promise<void> | null = null;
  let failing = false;

  function chain(type: string, fields: Record<string, unknown>): void {
    // Serialised once: the canonical text is both what is hashed and (with the hash added last) the line.
    const body = canonical({ v: 1, type, seq, time: new Date(options.clock()).toISOString(), replica: options.replica, prev, ...fields });
    const hash = createHash('sha256').update(body).digest('base64url');
    prev = hash;
    seq++;
    if (queue.length >= options.maxQueue) {
      options.onLoss(1, 'queue_full', null);
      failing = true;
      return;
    }
    queue.push(`${body.slice(0, -1)},"hash":"${hash}"}\n`);
    schedule();
  }

  function checkpoint(reason: 'count' | 'interval' | 'stop'): void {
    const sig = sign(null, checkpointMessage(options.replica, seq, prev), privateKey).toString('base64url');
    chain('checkpoint', { kid, sig, reason });
    sinceCheckpoint = 0;
  }

  // Lines are written in batches, every FLUSH_MS or FLUSH_LINES: one system call for many
  // records (per-record writes cost more CPU than all the hashing).
  function schedule(): void {
    flushing ??= new Promise<void>((resolve) => setTimeout(resolve, queue.length >= FLUSH_LINES ? 0 : FLUSH_MS)).then(flush).finally(() => {
      flushing = null;
      if (queue.length > 0) schedule();
    });
  }

  async function flush(): Promise<void> {
    const lines = queue;
    queue = [];
    let ok = true;
    await Promise.all(options.sinks.map(async (sink) => {
      try {
        await sink.write(lines);
      } catch {
        ok = false;
        options.onLoss(lines.length, 'sink_failed', sink.name);
      }
    }));
    failing = !ok;
  }

  chain('start', { kid, jwk });
  const timer = setInterval(() => {
    if (sinceCheckpoint > 0) checkpoint('interval');
  }, options.checkpointIntervalMs).unref();

  return {
    append(fields) {
      chain('record', fields);
      if (++sinceCheckpoint >= options.checkpointEvery) checkpoint('count');
    },
    accepting: () => !failing && queue.length < options.maxQueue,
    publicKey: jwk,
    kid,
    async close() {
      clearInterval(timer);
      checkpoint('stop');
      while (flushing) await flushing;
      if (queue.length > 0) await flush();
      await Promise.all(options.sinks.map((s) => s.close()));
    },
  };
}

/** JSON Lines to stdout (a log shipper picks it up). */
export function stdoutSink(): AuditSink {
  return {
    name: 'stdout',
    write: (lines) => new Promise<void>((resolve, reject) => process.stdout.write(lines.join(''), (err) => (err ? reject(err) : resolve()))),
    close: async () => {},
  };
}

/** One Redis Stream per replica (`<prefix>audit:<replica>`), shared by the replicas' verifier. */
export function redisSink(store: Pick<AuditStore, 'auditAppend'>, replica: string): AuditSink {
  return { name: 'redis', write: (lines) => store.auditAppend(replica, lines.map((l) => l.trimEnd())), close: async () => {} };
}

/** A JSON Lines file, rotated at `rotateBytes` to file.1 ... file.<keep> (oldest last). */
export function fileSink(path: string, rotateBytes: number, keep: number): AuditSink {
  // A stream's errors reach the write callbacks (and so the loss count); unhandled they would crash.
  const open = (): WriteStream => createWriteStream(path, { flags: 'a', mode: 0o600 }).on('error', () => {});
  let stream = open();
  let size = existsSync(path) ? statSync(path).size : 0;

  async function rotate(): Promise<void> {
    await new Promise<void>((resolve) => stream.end(resolve));
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    renameSync(path, `${path}.1`);
    stream = open();
    size = 0;
  }

  return {
    name: 'file',
    async write(lines) {
      const text = lines.join('');
      if (stream.destroyed) stream = open();
      await new Promise<void>((resolve, reject) => stream.write(text, (err) => (err ? reject(err) : resolve())));
      size += Buffer.byteLength(text);
      if (size >= rotateBytes) await rotate();
    },
    close: () => new Promise<void>((resolve) => stream.end(resolve)),
  };
}
