/** Runs one load measurement in a fresh load-generator process (bench/load.ts). */
import { startScript } from './processes.js';
import type { LoadResult, LoadSpec } from './load.js';

export type { LoadResult, LoadSpec } from './load.js';

/** Spawns the load generator for `spec` and returns what it measured; throws if it fails. */
export async function measureLoad(spec: LoadSpec): Promise<LoadResult> {
  const child = startScript('load', 'load.ts', [JSON.stringify(spec)], { collectStdout: true });
  const code = await child.exited;
  const line = child.stdout().trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`load generator failed (exit ${code}):\n${child.output()}`);
  return JSON.parse(line) as LoadResult;
}
