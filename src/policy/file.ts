import { readFile } from 'node:fs/promises';
import type { Problem } from '../config/fields.js';

/**
 * The raw `policy` section of a config file, for a reload (SIGHUP): null when the file has none.
 * Only the policy is read again; the other keys keep the values the proxy started with.
 */
export async function readPolicySection(file: string): Promise<{ readonly ok: true; readonly raw: unknown } | { readonly ok: false; readonly problems: readonly Problem[] }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    return { ok: false, problems: [{ path: '(file)', message: err instanceof SyntaxError ? `not valid JSON: ${err.message}` : (err as NodeJS.ErrnoException).code ?? 'unreadable' }] };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, problems: [{ path: '(file)', message: 'must hold a JSON object' }] };
  return { ok: true, raw: Object.hasOwn(parsed, 'policy') ? (parsed as Record<string, unknown>).policy : null };
}
