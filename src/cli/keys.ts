import type { CommandModule } from 'yargs';
import { withStore } from '../admin/common.js';
import { rotateKeys } from '../admin/tokens.js';
import { configFromArgs, withConfigOptions } from './options.js';
import type { ConfigArgs } from './options.js';

const rotate: CommandModule<object, ConfigArgs> = {
  command: 'rotate',
  describe: 'Add a new signing key to the shared ring; older keys keep verifying',
  builder: (yargs) =>
    withConfigOptions(yargs).example('$0 keys rotate --config proxy.json', 'Print the new kid; replicas sign with it within 30 s, or at once on seeing a token with it'),
  handler: async (args) => {
    const config = await configFromArgs(args);
    const { kid, alg } = await withStore(config, { persistent: true, command: 'keys rotate' }, (store) => rotateKeys(store, config));
    process.stdout.write(`${kid}\n`);
    process.stderr.write(`new ${alg} signing key ${kid}; tokens signed with older keys stay valid until they expire\n`);
  },
};

/** `mcp-warden keys rotate`. */
export const keysCommand: CommandModule = {
  command: 'keys <command>',
  describe: 'Manage the token signing keys',
  builder: (yargs) => yargs.command(rotate).demandCommand(1).example('$0 keys rotate --config proxy.json', 'Rotate the signing key'),
  handler: () => {},
};
