/**
 * The JSON config file the mcp-warden children get with `--config`: one bench client with fresh
 * secrets, and every limit raised so a limit never shapes the numbers.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The client the prepare step authenticates as. */
export interface BenchClient {
  readonly id: string;
  readonly secret: string;
}

// The schema's maxima (src/config/schema.ts): higher values are a config error (exit 2).
const UNLIMITED = { points: 1_000_000_000, duration: '1m' };
const MAX_SESSIONS = 100_000;
const MAX_STREAMS = 10_000;

/** base64url of random bytes, `length` characters long. */
function randomText(length: number): string {
  return randomBytes(Math.ceil((length * 3) / 4)).toString('base64url').slice(0, length);
}

/**
 * Writes the config into `dir` (as `name`, with `extra` merged in at the top level: a feature's
 * section) and returns its path and the client's credentials.
 */
export async function writeWardenConfig(dir: string, extra: Record<string, unknown> = {}, name = 'warden.config.json'): Promise<{ file: string; client: BenchClient }> {
  const client = { id: 'bench', secret: randomText(32) };
  const config = {
    clients: [{ id: client.id, secret: client.secret, scopes: ['mcp'], maxSessions: MAX_SESSIONS, rateLimit: UNLIMITED }],
    tokens: { secret: randomText(40) },
    sessions: { maxConcurrent: MAX_SESSIONS, maxStreams: MAX_STREAMS },
    rateLimits: {
      client: UNLIMITED,
      sessionCreate: UNLIMITED,
      // A bench never fails on purpose; a huge budget keeps a stray 404 from blocking the run.
      failedAttempts: { ...UNLIMITED, block: '1s' },
      tokenEndpoint: UNLIMITED,
    },
    ...extra,
  };
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return { file, client };
}
