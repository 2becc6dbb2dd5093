import type { Argv, CommandModule } from 'yargs';
import { addClient, hashClientSecret, listClients, removeClient, rotateClientSecret } from '../admin/clients.js';
import { withStore } from '../admin/common.js';
import { configFromArgs, withConfigOptions } from './options.js';

type IdArgs = { readonly config?: string; readonly id: string };
type AddArgs = IdArgs & { readonly scope?: string[]; readonly 'max-sessions'?: string };
type ListArgs = { readonly config?: string; readonly json?: boolean };
type RotateArgs = IdArgs & { readonly 'revoke-tokens'?: boolean };
type HashArgs = { readonly secret?: string };

const ONCE = 'Store the secret now: it is not shown again (only its scrypt hash is kept).\n';

function withId(yargs: Argv) {
  return withConfigOptions(yargs).option('id', { type: 'string', demandOption: true, describe: 'Client id' });
}

/** Reads all of stdin (a piped secret); one trailing newline is dropped. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const add: CommandModule<object, AddArgs> = {
  command: 'add',
  describe: 'Create a client in the store with a generated secret (printed once)',
  builder: (yargs) =>
    withId(yargs)
      .option('scope', { type: 'string', array: true, describe: 'Scope the client may request (repeatable; default mcp)' })
      .option('max-sessions', { type: 'string', describe: 'Override of sessions.maxConcurrent for this client' })
      .example('$0 client add --id agent-2 --scope mcp --config proxy.json', 'Add a client; its secret is printed once'),
  handler: async (args) => {
    const config = await configFromArgs(args);
    const { id, secret } = await withStore(config, { persistent: true, command: 'client add' }, (store) =>
      addClient(store, config, { id: args.id, scopes: args.scope, maxSessions: args['max-sessions'] }),
    );
    process.stdout.write(`client_id: ${id}\nclient_secret: ${secret}\n`);
    process.stderr.write(ONCE);
  },
};

const list: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'List clients from the config file and the store (never secrets)',
  builder: (yargs) =>
    withConfigOptions(yargs)
      .option('json', { type: 'boolean', describe: 'One JSON array instead of a table' })
      .example('$0 client list --config proxy.json', 'Ids, scopes, where each is defined, when it was created'),
  handler: async (args) => {
    const config = await configFromArgs(args);
    const clients = await withStore(config, { persistent: false, command: 'client list' }, (store) => listClients(store, config));
    if (args.json) {
      process.stdout.write(`${JSON.stringify(clients)}\n`);
      return;
    }
    const rows = clients.map((c) => [c.id, c.source, c.scopes.join(' '), c.createdAt === null ? '-' : new Date(c.createdAt).toISOString()]);
    const table = [['ID', 'SOURCE', 'SCOPES', 'CREATED'], ...rows];
    const widths = table[0]?.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length))) ?? [];
    for (const row of table) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`);
  },
};

const remove: CommandModule<object, IdArgs> = {
  command: 'remove',
  describe: 'Delete a store client and revoke its tokens and sessions',
  builder: (yargs) => withId(yargs).example('$0 client remove --id agent-2 --config proxy.json', 'Its tokens stop working on every replica at once'),
  handler: async (args) => {
    const config = await configFromArgs(args);
    const { sessionsEnded } = await withStore(config, { persistent: true, command: 'client remove' }, (store, ender) => removeClient(store, ender, config, args.id));
    process.stdout.write(`removed client ${args.id}; its tokens are revoked and ${sessionsEnded} session(s) ended\n`);
  },
};

const rotate: CommandModule<object, RotateArgs> = {
  command: 'rotate-secret',
  describe: 'Give a store client a new secret (printed once)',
  builder: (yargs) =>
    withId(yargs)
      .option('revoke-tokens', { type: 'boolean', describe: 'Also revoke every token and session the client holds' })
      .example('$0 client rotate-secret --id agent-2 --config proxy.json', 'The old secret stops working at once')
      .example('$0 client rotate-secret --id agent-2 --revoke-tokens --config proxy.json', 'After a leak: new secret and no old token left'),
  handler: async (args) => {
    const config = await configFromArgs(args);
    const { secret } = await withStore(config, { persistent: true, command: 'client rotate-secret' }, (store, ender) =>
      rotateClientSecret(store, ender, config, args.id, { revokeTokens: args['revoke-tokens'] === true }),
    );
    process.stdout.write(`client_id: ${args.id}\nclient_secret: ${secret}\n`);
    process.stderr.write(ONCE + (args['revoke-tokens'] ? '' : 'Tokens issued before stay valid until they expire (add --revoke-tokens to end them).\n'));
  },
};

const hash: CommandModule<object, HashArgs> = {
  command: 'hash-secret',
  describe: 'Print the scrypt hash of a secret, for clients[].secretHash in the config file',
  builder: (yargs) =>
    yargs
      .option('secret', { type: 'string', describe: 'The secret (prefer stdin: arguments end up in shell history)' })
      .example('printf %s "$SECRET" | $0 client hash-secret', 'Hash a secret read from stdin'),
  handler: async (args) => {
    const secret = args.secret ?? (await readStdin());
    process.stdout.write(`${await hashClientSecret(secret)}\n`);
  },
};

/** `mcp-warden client add|list|remove|rotate-secret|hash-secret`. */
export const clientCommand: CommandModule = {
  command: 'client <command>',
  describe: 'Manage clients (machine principals)',
  builder: (yargs) =>
    yargs
      .command(add)
      .command(list)
      .command(remove)
      .command(rotate)
      .command(hash)
      .demandCommand(1)
      .example('$0 client add --id agent-2 --config proxy.json', 'Create a client in the shared store')
      .example('$0 client list --config proxy.json', 'List clients'),
  handler: () => {},
};
