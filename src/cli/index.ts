#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { configCommand } from './config.js';
import { doctorCommand } from './doctor.js';
import { EXIT } from './options.js';
import { serveCommand } from './serve.js';
import { sessionCommand } from './session.js';

/** Builds the CLI; exported so tests can parse argv strings with the real parser. */
export function buildCli(argv: readonly string[]) {
  return yargs([...argv])
    .scriptName('mcp-warden')
    .command(serveCommand)
    .command(configCommand)
    .command(sessionCommand)
    .command(doctorCommand)
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((message, err, y) => {
      if (err) throw err;
      process.stderr.write(`${y.help()}\n\n${message}\n`);
      process.exit(EXIT.usage);
    });
}

try {
  await buildCli(hideBin(process.argv)).parseAsync();
} catch (err) {
  process.stderr.write(`mcp-warden: ${(err as Error).message}\n`);
  process.exit(EXIT.failure);
}
