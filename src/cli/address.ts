import type { CommandModule } from 'yargs';
import { AdminError, withStore } from '../admin/common.js';
import { createLimiters } from '../store/limiters.js';
import { adminUrlOf, callAdminApi, withAdminApiOptions } from './admin-api.js';
import type { AdminApiArgs } from './admin-api.js';
import { configFromArgs, withConfigOptions } from './options.js';
import type { ConfigArgs } from './options.js';

type AddressArgs = ConfigArgs & AdminApiArgs;

const list: CommandModule<object, AddressArgs & { json?: boolean }> = {
  command: 'list',
  describe: 'Addresses blocked for failed attempts (IPv4 /32, IPv6 /64) and for how much longer',
  builder: (yargs) => withAdminApiOptions(withConfigOptions(yargs)).option('json', { type: 'boolean', default: false, describe: 'One JSON array' }),
  handler: async (args) => {
    const blocks = adminUrlOf(args) !== null
      ? ((await callAdminApi(args, 'GET', '/blocks')).blocks as { address: string; remainingMs: number }[])
      : await (async () => {
          const config = await configFromArgs(args);
          return withStore(config, { persistent: true, command: 'address list' }, (store) => createLimiters(store, config.rateLimits).blocked());
        })();
    if (args.json) process.stdout.write(`${JSON.stringify(blocks)}\n`);
    else process.stdout.write(blocks.length ? `${blocks.map((b) => `${b.address}  ${Math.ceil(b.remainingMs / 1000)} s`).join('\n')}\n` : 'no blocked addresses\n');
  },
};

const unblock: CommandModule<object, AddressArgs & { address: string }> = {
  command: 'unblock <address>',
  describe: 'Lift an address\'s block (an address, or a prefix as listed)',
  builder: (yargs) => withAdminApiOptions(withConfigOptions(yargs)).positional('address', { type: 'string', demandOption: true }),
  handler: async (args) => {
    if (adminUrlOf(args) !== null) await callAdminApi(args, 'DELETE', `/blocks?address=${encodeURIComponent(args.address)}`);
    else {
      const config = await configFromArgs(args);
      const lifted = await withStore(config, { persistent: true, command: 'address unblock' }, (store) => createLimiters(store, config.rateLimits).unblock(args.address));
      if (!lifted) throw new AdminError('NOT_FOUND', `${args.address} is not blocked`);
    }
    process.stdout.write(`unblocked ${args.address}\n`);
  },
};

/** `mcp-warden address list|unblock`: the failed-attempt blocks. */
export const addressCommand: CommandModule = {
  command: 'address <command>',
  describe: 'List or lift address blocks (failed attempts)',
  builder: (yargs) => yargs.command(list).command(unblock).demandCommand(1).example('$0 address list --admin-url http://127.0.0.1:9090 --admin-key-file admin.key', 'Through the admin API'),
  handler: () => {},
};
