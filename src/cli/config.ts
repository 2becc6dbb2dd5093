import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { EXIT, printProblems, withConfigOptions } from './options.js';
import type { ConfigArgs } from './options.js';

const check: CommandModule<object, ConfigArgs> = {
  command: 'check',
  describe: 'Validate the configuration and list every problem',
  builder: (yargs) =>
    withConfigOptions(yargs)
      .example('$0 config check --config proxy.json', 'Exit 0 when valid; otherwise print each problem with its key path and exit 2'),
  handler: async (args) => {
    const result = await loadConfig({ file: args.config ?? null, env: process.env, flags: args });
    if (!result.ok) {
      printProblems(result.problems);
      process.exit(EXIT.usage);
    }
    process.stdout.write(`configuration is valid (store: ${result.config.store.type}, upstreams: ${result.config.upstreams.join(', ')})\n`);
  },
};

/** `mcp-warden config check`. */
export const configCommand: CommandModule = {
  command: 'config <command>',
  describe: 'Inspect the configuration',
  builder: (yargs) => yargs.command(check).demandCommand(1).example('$0 config check --config proxy.json', 'Validate a config file'),
  handler: () => {},
};
