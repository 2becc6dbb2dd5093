#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { AdminError } from '../admin/common.js';
import { clientCommand } from './client.js';
import { configCommand } from './config.js';
import { doctorCommand } from './doctor.js';
import { initCommand } from './init.js';
import { keysCommand } from './keys.js';
import { EXIT, UsageError } from './options.js';
import { policyCommand } from './policy.js';
import { serveCommand } from './serve.js';
import { sessionCommand } from './session.js';
import { addressCommand } from './address.js';
import { auditCommand } from './audit.js';
import { tokenCommand } from './token.js';
import { VERSION } from '../version.js';

/** Builds the CLI; exported so tests can parse argv strings with the real parser. */
export function buildCli(argv: readonly string[]) {
  return yargs([...argv])
    .scriptName('mcp-warden')
    .command(serveCommand)
    .command(initCommand)
    .command(clientCommand)
    .command(tokenCommand)
    .command(keysCommand)
    .command(configCommand)
    .command(policyCommand)
    .command(sessionCommand)
    .command(addressCommand)
    .command(auditCommand)
    .command(doctorCommand)
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(VERSION)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((message, err, y) => {
      // Thrown, not exited: main() prints it, and tests can parse in-process.
      if (err && !(err instanceof UsageError)) throw err;
      throw new UsageError(`${y.help()}\n\n${err?.message ?? message}`);
    });
}

/** Runs the CLI on an argv and exits with 0 / 1 (runtime failure) / 2 (usage or configuration). */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildCli(argv).parseAsync();
  } catch (err) {
    const code = err instanceof UsageError ? EXIT.usage : err instanceof AdminError ? err.exitCode : EXIT.failure;
    process.stderr.write(err instanceof UsageError ? `${err.message}\n` : `mcp-warden: ${(err as Error).message}\n`);
    process.exit(code);
  }
}

/** True when this module is the program being run (bin symlinks included), not an import (tests). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main(hideBin(process.argv));
