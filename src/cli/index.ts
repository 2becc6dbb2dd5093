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
import { closest } from '../config/suggest.js';
import { policyCommand } from './policy.js';
import { serveCommand } from './serve.js';
import { sessionCommand } from './session.js';
import { addressCommand } from './address.js';
import { auditCommand } from './audit.js';
import { tokenCommand } from './token.js';
import { VERSION } from '../version.js';

/** Builds the CLI; exported so tests can parse argv strings with the real parser. */
export function buildCli(argv: readonly string[]) {
  const cli = yargs([...argv]);
  return cli
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
    .fail((message, err) => {
      // Thrown, not exited: main() prints it, and tests can parse in-process. The error comes
      // first and alone (with a guess at what was meant), not after a page of help.
      if (err && !(err instanceof UsageError)) throw err;
      const text = err?.message ?? message;
      // getOptions is public at run time but missing from @types/yargs.
      const flags = Object.keys((cli as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
      throw new UsageError(`mcp-warden: ${explain(text, flags)}\nSee "mcp-warden --help", or "mcp-warden <command> --help".`);
    });
}

const COMMANDS = ['serve', 'init', 'client', 'token', 'keys', 'config', 'policy', 'session', 'address', 'audit', 'doctor'];

/** yargs' message, and for "Unknown argument: prot" the flag or command probably meant. */
function explain(message: string, flags: readonly string[]): string {
  const unknown = /^Unknown arguments?: (.+)$/.exec(message)?.[1];
  if (!unknown) return message;
  const names = unknown.split(', ');
  // yargs names an unknown --some-flag twice: as typed and camel-cased.
  const typed = names.filter((n) => !/[A-Z]/.test(n) || !names.includes(n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)));
  const hints = typed.flatMap((name) => {
    const command = closest(name, COMMANDS);
    const flag = closest(name, flags.filter((f) => f.length > 1 && f !== '$0' && !/[A-Z]/.test(f)));
    const near = command ?? (flag === null ? null : `--${flag}`);
    return near === null ? [] : [`"${name}": did you mean ${near}?`];
  });
  return [`unknown argument${typed.length > 1 ? 's' : ''}: ${typed.join(', ')}`, ...hints].join('\n');
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
