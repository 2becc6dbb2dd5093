import type { CommandModule } from 'yargs';
import { withStore } from '../admin/common.js';
import { issueToken, revokeTokens } from '../admin/tokens.js';
import type { RevokeResult, RevokeTarget } from '../admin/tokens.js';
import { adminUrlOf, callAdminApi, withAdminApiOptions } from './admin-api.js';
import type { AdminApiArgs } from './admin-api.js';
import { configFromArgs, UsageError, withConfigOptions } from './options.js';

type IssueArgs = { readonly config?: string; readonly client: string; readonly scope?: string[]; readonly ttl?: string };
type RevokeArgs = AdminApiArgs & { readonly config?: string; readonly token?: string; readonly jti?: string; readonly grant?: string; readonly client?: string; readonly user?: string };

const issue: CommandModule<object, IssueArgs> = {
  command: 'issue',
  describe: 'Print an access token for a client (as the token endpoint would issue it)',
  builder: (yargs) =>
    withConfigOptions(yargs)
      .option('client', { type: 'string', demandOption: true, describe: 'Client id (config file or store)' })
      .option('scope', { type: 'string', array: true, describe: 'Scope (repeatable; a subset of the client\'s; default all of them)' })
      .option('ttl', { type: 'string', describe: 'Lifetime such as "15m" (default tokens.accessTtl)' })
      .example('$0 token issue --client agent-1 --ttl 15m --config proxy.json', 'The token alone on stdout; the proxy\'s publicUrl must match the config\'s'),
  handler: async (args) => {
    const config = await configFromArgs(args);
    const issued = await withStore(config, { persistent: false, command: 'token issue' }, (store) =>
      issueToken(store, config, { clientId: args.client, scopes: args.scope, ttl: args.ttl }),
    );
    process.stdout.write(`${issued.token}\n`);
    process.stderr.write(`client ${issued.clientId}, scope "${issued.scope}", kid ${issued.kid}, grant ${issued.grantId}, expires ${new Date(issued.expiresAt).toISOString()}\n`);
  },
};

function targetOf(args: RevokeArgs): RevokeTarget {
  if (args.token !== undefined) return { kind: 'token', token: args.token };
  if (args.user !== undefined) return { kind: 'user', user: args.user };
  const clientId = args.client ?? '';
  if (args.jti !== undefined) return { kind: 'jti', clientId, jti: args.jti };
  if (args.grant !== undefined) return { kind: 'grant', clientId, grantId: args.grant };
  return { kind: 'client', clientId };
}

/** The same revocation through the admin API: its body names the target the same way. */
async function viaApi(args: RevokeArgs): Promise<RevokeResult> {
  const target = targetOf(args);
  const body = target.kind === 'token' ? { token: target.token } : target.kind === 'user' ? { user: target.user }
    : target.kind === 'jti' ? { client: target.clientId, jti: target.jti } : target.kind === 'grant' ? { client: target.clientId, grant: target.grantId } : { client: target.clientId };
  return (await callAdminApi(args, 'POST', '/revoke', body)) as unknown as RevokeResult;
}

const revoke: CommandModule<object, RevokeArgs> = {
  command: 'revoke',
  describe: 'Revoke a token, a jti or grant of a client, or everything a client holds',
  builder: (yargs) =>
    withAdminApiOptions(withConfigOptions(yargs))
      .option('token', { type: 'string', describe: 'The access token itself (verified, then revoked until it expires)' })
      // Ids are base64url and may start with "-": yargs then needs the --jti=ID form.
      .option('jti', { type: 'string', describe: 'Token id (with --client); write --jti=ID when ID starts with "-"' })
      .option('grant', { type: 'string', describe: 'Grant id, `gid` (with --client): the grant\'s tokens and sessions; --grant=ID when ID starts with "-"' })
      .option('client', { type: 'string', describe: 'Client id; alone: all of its tokens and sessions' })
      .option('user', { type: 'string', describe: 'A signed-in person (u~<issuer tag>~<subject>, as X-MCP-User shows it): all of their tokens and sessions, in every app' })
      .conflicts('token', ['jti', 'grant', 'client', 'user'])
      .conflicts('user', ['jti', 'grant', 'client'])
      .conflicts('jti', 'grant')
      .check((args) => {
        if (args.token === undefined && args.client === undefined && args.user === undefined) throw new UsageError('Give --token, --user, or --client (with --jti or --grant, or alone)');
        return true;
      })
      .example('$0 token revoke --token "$TOKEN" --config proxy.json', 'Revoke one token')
      .example('$0 token revoke --client agent-1 --config proxy.json', 'Revoke every token and session of agent-1')
      .example('$0 token revoke --user "u~Ab3dE6~alice" --config proxy.json', 'Revoke everything a signed-in person holds')
      .example('$0 token revoke --client agent-1 --admin-url http://127.0.0.1:9090 --admin-key-file admin.key', 'Through the running proxy\'s admin API (any store)'),
  handler: async (args) => {
    const result = adminUrlOf(args) !== null ? await viaApi(args) : await (async () => {
      const config = await configFromArgs(args);
      return withStore(config, { persistent: true, command: 'token revoke' }, (store, ender) => revokeTokens(store, ender, config, targetOf(args)));
    })();
    if (result.alreadyExpired) process.stdout.write('the token has already expired; nothing to revoke\n');
    else if (result.what === 'user') process.stdout.write(`revoked everything held by ${result.clientId}; ${result.sessionsEnded} session(s) ended\n`);
    else process.stdout.write(`revoked ${result.what === 'client' ? 'everything held by' : `the ${result.what} of`} client ${result.clientId}; ${result.sessionsEnded} session(s) ended\n`);
  },
};

/** `mcp-warden token issue|revoke`. */
export const tokenCommand: CommandModule = {
  command: 'token <command>',
  describe: 'Issue or revoke access tokens',
  builder: (yargs) =>
    yargs
      .command(issue)
      .command(revoke)
      .demandCommand(1)
      .example('$0 token issue --client agent-1 --config proxy.json', 'Print a token')
      .example('$0 token revoke --client agent-1 --config proxy.json', 'Revoke all of a client\'s tokens'),
  handler: () => {},
};
