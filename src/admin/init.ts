/** `mcp-warden init`: a first config file with fresh secrets and a first token. */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { schema } from '../config/schema.js';
import { validateConfig } from '../config/validate.js';
import { hashSecret } from '../auth/secret-hash.js';
import { createMemoryStore } from '../store/memory.js';
import { AdminError, newSecret, parsed } from './common.js';
import { sign } from './tokens.js';
import type { CliToken } from './tokens.js';

export interface InitResult {
  readonly path: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly token: CliToken;
}

/**
 * Writes a new config file (mode 0600) with a fresh signing secret and one client whose secret
 * is stored only as its scrypt hash, then signs a first token with that config. An existing
 * file is refused unless `force`; the write is atomic (temporary file, then rename).
 */
export async function initConfig(input: { out: string; clientId: string; upstream: string; force: boolean }, clock: () => number = Date.now): Promise<InitResult> {
  const clientId = parsed(schema.clients.shape.id.parse, input.clientId, '--client-id');
  const upstreams = parsed(schema.upstreams.parse, [input.upstream], '--upstream');
  const clientSecret = newSecret();
  const raw = {
    listen: { host: '127.0.0.1', port: 8080 },
    publicUrl: 'http://127.0.0.1:8080',
    mcpPath: '/mcp',
    upstreams,
    store: { type: 'memory' },
    tokens: { secret: newSecret(), accessTtl: '1h', requiredScope: 'mcp' },
    clients: [{ id: clientId, secretHash: await hashSecret(clientSecret), scopes: ['mcp'] }],
  };
  const result = validateConfig(raw);
  if (!result.ok) throw new Error(`init produced an invalid config: ${JSON.stringify(result.problems)}`);
  const text = `${JSON.stringify(raw, null, 2)}\n`;
  if (input.force) {
    const temp = `${input.out}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, text, { mode: 0o600, flag: 'wx' });
    await rename(temp, input.out).catch(async (err: unknown) => {
      await rm(temp, { force: true });
      throw err;
    });
  } else {
    await writeFile(input.out, text, { mode: 0o600, flag: 'wx' }).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AdminError('FILE_EXISTS', `${input.out} exists; pass --force to replace it`);
      throw err;
    });
  }
  const store = createMemoryStore({ maxEntries: 1000, clock });
  try {
    const token = await sign(store, result.config, { clientId, scope: 'mcp' }, result.config.tokens.accessTtl, clock);
    return { path: input.out, clientId, clientSecret, token };
  } finally {
    await store.close();
  }
}
