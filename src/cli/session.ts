import type { CommandModule } from 'yargs';
import type { SessionEnder } from '../session/end-session.js';
import type { Config } from '../config/schema.js';
import { endSessionByHash, formatSessionRows, listSessionRows, revokeClientSessions, revokeSession } from '../session/manage.js';
import type { SessionRow } from '../session/manage.js';
import { adminUrlOf, callAdminApi, withAdminApiOptions } from './admin-api.js';
import type { AdminApiArgs } from './admin-api.js';
import { createSessionIds, sessionIdSecret } from '../session/session-id.js';
import { withStore } from '../admin/common.js';
import type { Store } from '../store/types.js';
import { configFromArgs, EXIT, withConfigOptions } from './options.js';
import type { ConfigArgs } from './options.js';

interface ListArgs extends ConfigArgs, AdminApiArgs {
  readonly client?: string;
  readonly json?: boolean;
}

interface RevokeArgs extends ConfigArgs {
  readonly client: string;
  readonly id?: string;
}

/**
 * Runs one session operation on the configured store (the admin commands' `withStore`: the memory
 * store is refused, it lives inside one proxy process); the operation returns the exit code.
 */
async function onSharedStore(args: ConfigArgs, command: string, work: (store: Store, config: Config, ender: SessionEnder) => Promise<number>): Promise<void> {
  const config = await configFromArgs(args);
  process.exitCode = await withStore(config, { persistent: true, command }, (store, ender) => work(store, config, ender));
}

const list: CommandModule<object, ListArgs> = {
  command: 'list',
  describe: 'List open sessions: short hash, client, upstream index, created, expires (never the ids)',
  builder: (yargs) =>
    withAdminApiOptions(withConfigOptions(yargs))
      .option('client', { type: 'string', describe: 'Only the sessions of this client' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON array instead of a table' })
      .example('$0 session list --config proxy.json', 'Every open session of every client')
      .example('$0 session list --client agent-1 --json --config proxy.json', 'The sessions of one client, as JSON'),
  handler: async (args) => {
    const print = (rows: readonly SessionRow[]): number => {
      if (args.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
      else process.stdout.write(rows.length ? `${formatSessionRows(rows)}\n` : 'no open sessions\n');
      return EXIT.ok;
    };
    if (adminUrlOf(args) !== null) {
      const query = args.client === undefined ? '' : `?client=${encodeURIComponent(args.client)}`;
      process.exitCode = print((await callAdminApi(args, 'GET', `/sessions${query}`)).sessions as SessionRow[]);
      return;
    }
    await onSharedStore(args, 'session list', async (store) => print(await listSessionRows(store, args.client ?? null, Date.now())));
  },
};

const end: CommandModule<object, ConfigArgs & AdminApiArgs & { session: string; client?: string }> = {
  command: 'end <session>',
  describe: 'End one session named by its listed hash (the SESSION column of `session list`, `session` in security events)',
  builder: (yargs) =>
    withAdminApiOptions(withConfigOptions(yargs))
      .positional('session', { type: 'string', demandOption: true })
      .option('client', { type: 'string', describe: 'The client, when two clients\' sessions share the hash' })
      .example('$0 session end 3hX9kQ2a --admin-url http://127.0.0.1:9090 --admin-key-file admin.key', 'Through the admin API'),
  handler: async (args) => {
    if (adminUrlOf(args) !== null) {
      const query = `?session=${encodeURIComponent(args.session)}${args.client === undefined ? '' : `&client=${encodeURIComponent(args.client)}`}`;
      const result = await callAdminApi(args, 'DELETE', `/sessions${query}`);
      process.stdout.write(`ended session ${args.session} of client ${String(result.client)}\n`);
      return;
    }
    await onSharedStore(args, 'session end', async (store, _config, ender) => {
      const result = await endSessionByHash(store, ender, args.session, args.client ?? null, Date.now());
      if (result.outcome === 'ended') {
        process.stdout.write(`ended session ${args.session} of client ${result.clientId}\n`);
        return EXIT.ok;
      }
      process.stderr.write(result.outcome === 'ambiguous' ? 'mcp-warden: several sessions have this hash; add --client\n' : `mcp-warden: no open session ${args.session}\n`);
      return EXIT.failure;
    });
  },
};

const revoke: CommandModule<object, RevokeArgs> = {
  command: 'revoke [id]',
  describe: 'End one session (given its proxy session id) or, without an id, every session of the client',
  builder: (yargs) =>
    withConfigOptions(yargs)
      .positional('id', { type: 'string', describe: 'The proxy session id (Mcp-Session-Id) to end; one that starts with "-" goes as --id=<id>' })
      .option('client', { type: 'string', demandOption: true, describe: 'The client the session belongs to' })
      .example('$0 session revoke <Mcp-Session-Id> --client agent-1 --config proxy.json', 'End one session; exit 1 if it is not an open session of agent-1')
      .example('$0 session revoke --id=-Xa9... --client agent-1 --config proxy.json', 'The same, for an id that starts with "-"')
      .example('$0 session revoke --client agent-1 --config proxy.json', 'End every session of agent-1 (its tokens stay valid)'),
  handler: async (args) => {
    // An id after "--" is not parsed as the id: ignoring it would turn "end this session" into "end them all".
    if (args._.length > 2) {
      process.stderr.write(`mcp-warden: unexpected argument ${args._.slice(2).join(' ')}; give an id that starts with "-" as --id=<id>\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    await onSharedStore(args, 'session revoke', async (store, config, ender) => {
      if (args.id === undefined) {
        const ended = await revokeClientSessions(store, ender, args.client, Date.now());
        process.stdout.write(`ended ${ended} session${ended === 1 ? '' : 's'} of client ${args.client}\n`);
        return EXIT.ok;
      }
      const sessionIds = createSessionIds(await sessionIdSecret(config, store));
      const outcome = await revokeSession(store, ender, sessionIds, args.client, args.id, Date.now());
      switch (outcome) {
        case 'ended':
          process.stdout.write(`ended 1 session of client ${args.client}\n`);
          return EXIT.ok;
        case 'unknown':
          process.stderr.write(`mcp-warden: no open session with that id for client ${args.client}\n`);
          return EXIT.failure;
        case 'invalid':
          process.stderr.write(`mcp-warden: not a proxy session id of client ${args.client}\n`);
          return EXIT.failure;
        default: {
          const never: never = outcome;
          return never;
        }
      }
    });
  },
};

/** `mcp-warden session list|revoke`: operate on the sessions in the shared store. */
export const sessionCommand: CommandModule = {
  command: 'session <command>',
  describe: 'List or end proxy sessions (shared Redis store)',
  builder: (yargs) =>
    yargs
      .command(list)
      .command(end)
      .command(revoke)
      .demandCommand(1)
      .example('$0 session list --client agent-1 --config proxy.json', 'Sessions of one client')
      .example('$0 session revoke --client agent-1 --config proxy.json', 'End all of them'),
  handler: () => {},
};
