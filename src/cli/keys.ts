import type { CommandModule } from 'yargs';
import { withStore } from '../admin/common.js';
import { retireKeyInStore, rotateKeys } from '../admin/tokens.js';
import { adminUrlOf, callAdminApi, withAdminApiOptions } from './admin-api.js';
import type { AdminApiArgs } from './admin-api.js';
import { configFromArgs, withConfigOptions } from './options.js';
import type { ConfigArgs } from './options.js';

type KeyArgs = ConfigArgs & AdminApiArgs;

const rotate: CommandModule<object, KeyArgs> = {
  command: 'rotate',
  describe: 'Add a new signing key to the shared ring; older keys keep verifying',
  builder: (yargs) =>
    withAdminApiOptions(withConfigOptions(yargs)).example('$0 keys rotate --config proxy.json', 'Print the new kid; replicas sign with it within 30 s, or at once on seeing a token with it'),
  handler: async (args) => {
    const { kid, alg } = adminUrlOf(args) !== null
      ? ((await callAdminApi(args, 'POST', '/keys/rotate')) as { kid: string; alg: string })
      : await (async () => {
          const config = await configFromArgs(args);
          return withStore(config, { persistent: true, command: 'keys rotate' }, (store) => rotateKeys(store, config));
        })();
    process.stdout.write(`${kid}\n`);
    process.stderr.write(`new ${alg} signing key ${kid}; tokens signed with older keys stay valid until they expire\n`);
  },
};

const retire: CommandModule<object, KeyArgs & { kid: string }> = {
  command: 'retire <kid>',
  describe: 'Remove a key that no longer signs: tokens it signed stop verifying',
  builder: (yargs) =>
    withAdminApiOptions(withConfigOptions(yargs))
      .positional('kid', { type: 'string', demandOption: true, describe: 'The key id (a token\'s `kid`)' })
      .example('$0 keys rotate --config proxy.json && $0 keys retire <old kid> --config proxy.json', 'Rotate, wait for the old key\'s tokens to expire, then retire it'),
  handler: async (args) => {
    if (adminUrlOf(args) !== null) await callAdminApi(args, 'POST', '/keys/retire', { kid: args.kid });
    else {
      const config = await configFromArgs(args);
      await withStore(config, { persistent: true, command: 'keys retire' }, (store) => retireKeyInStore(store, config, args.kid));
    }
    process.stdout.write(`retired key ${args.kid}\n`);
  },
};

/** `mcp-warden keys rotate|retire`. */
export const keysCommand: CommandModule = {
  command: 'keys <command>',
  describe: 'Manage the token signing keys',
  builder: (yargs) => yargs.command(rotate).command(retire).demandCommand(1).example('$0 keys rotate --config proxy.json', 'Rotate the signing key'),
  handler: () => {},
};
