import type { Argv } from 'yargs';
import { forEachField } from '../config/fields.js';
import { loadConfig } from '../config/load.js';
import { schema } from '../config/schema.js';
import type { Config } from '../config/schema.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A command line that cannot run as given: printed with the command's help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Arguments every command that reads configuration accepts. */
export interface ConfigArgs {
  readonly config?: string;
  readonly [flag: string]: unknown;
}

/**
 * Adds `--config` and the flags derived from the config schema (each with its env name in the help).
 * The schema flags reach `loadConfig` through the parsed arguments; only `config` is typed here, so
 * a command's own options keep their types.
 */
export function withConfigOptions<T>(yargs: Argv<T>) {
  forEachField(schema, (path, field) => {
    if (!field.flag) return;
    const env = field.env ? ` (env ${field.env})` : '';
    yargs.option(field.flag, { type: 'string', array: path === 'upstreams', describe: `${field.doc} [${path}]${env}`, group: 'Configuration:' });
  });
  return yargs.option('config', { type: 'string', describe: 'Config file, JSON or YAML (env MCP_WARDEN_CONFIG)' });
}

/**
 * Loads the configuration for a command: flags > env > file > defaults. On problems prints every
 * one with its key path and exits 2, so no command runs on a config it cannot trust.
 */
export async function configFromArgs(args: ConfigArgs): Promise<Config> {
  const result = await loadConfig({ file: args.config ?? null, env: process.env, flags: args });
  if (result.ok) return result.config;
  printProblems(result.problems);
  process.exit(EXIT.usage);
}

/** Control characters and line separators from the file (keys, paths, JSON errors) shown escaped: one problem, one line. */
const printable = (text: string): string => text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export function printProblems(problems: readonly { path: string; message: string }[]): void {
  process.stderr.write(`mcp-warden: invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n`);
  for (const p of problems) process.stderr.write(`  ${printable(p.path)}: ${printable(p.message)}\n`);
}
