import type { Problem } from '../config/fields.js';
import { readConfigFile } from '../config/load.js';

/**
 * The raw `policy` section of a config file (JSON or YAML), for a reload (SIGHUP): null when the
 * file has none. Only the policy is read again; the other keys keep the values the proxy started with.
 */
export async function readPolicySection(file: string): Promise<{ readonly ok: true; readonly raw: unknown } | { readonly ok: false; readonly problems: readonly Problem[] }> {
  const problems: Problem[] = [];
  const parsed = await readConfigFile(file, problems);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, raw: Object.hasOwn(parsed, 'policy') ? parsed.policy : null };
}
