import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { AdminError } from '../admin/common.js';
import { UsageError } from './options.js';

/**
 * The admin commands' second way to work: through a running proxy's admin API (`--admin-url`)
 * instead of opening the store. With the memory store it is the only way; with Redis it needs no
 * store credentials on the operator's machine.
 */
export interface AdminApiArgs {
  readonly adminUrl?: string;
  readonly adminKeyFile?: string;
}

export function withAdminApiOptions<T>(yargs: Argv<T>) {
  return yargs
    .option('admin-url', { type: 'string', describe: 'Go through a running proxy\'s admin API (http://<admin.listen>) instead of opening the store; the only way with the memory store (env MCP_WARDEN_ADMIN_URL)', group: 'Admin API:' })
    .option('admin-key-file', { type: 'string', describe: 'File holding the admin key, for --admin-url (env MCP_WARDEN_ADMIN_KEY_FILE, or the key itself in MCP_WARDEN_ADMIN_KEY)', group: 'Admin API:' });
}

/** The admin API base URL when the command should use it. */
export function adminUrlOf(args: AdminApiArgs): string | null {
  return args.adminUrl ?? process.env.MCP_WARDEN_ADMIN_URL ?? null;
}

async function adminKey(args: AdminApiArgs): Promise<string> {
  const file = args.adminKeyFile ?? process.env.MCP_WARDEN_ADMIN_KEY_FILE;
  if (file) {
    try {
      return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new UsageError(`cannot read the admin key file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  const key = process.env.MCP_WARDEN_ADMIN_KEY;
  if (!key) throw new UsageError('--admin-url needs the admin key: --admin-key-file, MCP_WARDEN_ADMIN_KEY_FILE or MCP_WARDEN_ADMIN_KEY');
  return key;
}

/** One admin API call; a refusal becomes an AdminError carrying the API's own detail. */
export async function callAdminApi(args: AdminApiArgs, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const base = (adminUrlOf(args) ?? '').replace(/\/+$/, '');
  if (!URL.canParse(base)) throw new UsageError(`--admin-url must be a URL such as http://127.0.0.1:9090, not "${base.slice(0, 80)}"`);
  let res: Response;
  try {
    res = await fetch(`${base}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${await adminKey(args)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new AdminError('API_UNREACHABLE', `the admin API at ${base} did not answer: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  }
  const answer = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.ok) return answer;
  const detail = typeof answer.detail === 'string' ? answer.detail : `HTTP ${res.status}`;
  throw new AdminError(res.status === 404 ? 'NOT_FOUND' : res.status === 409 || res.status >= 500 ? 'CONFLICT' : 'API_REFUSED', `the admin API refused: ${detail}`);
}
