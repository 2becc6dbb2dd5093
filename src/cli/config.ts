import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { configJsonSchema, redactedConfig } from '../config/reference.js';
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

const print: CommandModule<object, ConfigArgs> = {
  command: 'print',
  describe: 'Print the effective configuration (file, environment and flags merged) as JSON, secrets redacted; durations in milliseconds',
  builder: (yargs) => withConfigOptions(yargs).example('MCP_WARDEN_PORT=9000 $0 config print --config proxy.yaml', 'What the proxy would run with'),
  handler: async (args) => {
    const result = await loadConfig({ file: args.config ?? null, env: process.env, flags: args });
    if (!result.ok) {
      printProblems(result.problems);
      process.exit(EXIT.usage);
    }
    process.stdout.write(`${JSON.stringify(redactedConfig(result.config), null, 2)}\n`);
  },
};

const jsonSchema: CommandModule = {
  command: 'schema',
  describe: 'Print the JSON Schema of the config file (also shipped as mcp-warden.schema.json), for editors',
  builder: (yargs) => yargs.example('$0 config schema > mcp-warden.schema.json', 'Then put "$schema": "./mcp-warden.schema.json" in the file'),
  handler: () => {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  },
};

/** `mcp-warden config check | print | schema`. */
export const configCommand: CommandModule = {
  command: 'config <command>',
  describe: 'Inspect the configuration',
  builder: (yargs) => yargs.command(check).command(print).command(jsonSchema).demandCommand(1).example('$0 config check --config proxy.json', 'Validate a config file'),
  handler: () => {},
};
