import type { CommandModule } from 'yargs';
import { initConfig } from '../admin/init.js';

interface InitArgs {
  readonly out: string;
  readonly 'client-id': string;
  readonly upstream: string;
  readonly force?: boolean;
}

/** `mcp-warden init`: a config file with fresh secrets, the client's secret and a first token. */
export const initCommand: CommandModule<object, InitArgs> = {
  command: 'init',
  describe: 'Write a config file with fresh secrets and print a first access token',
  builder: (yargs) =>
    yargs
      .option('out', { type: 'string', default: 'proxy.json', describe: 'Config file to write (mode 0600)' })
      .option('client-id', { type: 'string', default: 'agent-1', describe: 'Id of the client to create' })
      .option('upstream', { type: 'string', default: 'http://127.0.0.1:3000/mcp', describe: 'Upstream MCP URL' })
      .option('force', { type: 'boolean', describe: 'Replace an existing file' })
      .example('$0 init --out proxy.json --upstream http://127.0.0.1:3000/mcp', 'Then: $0 --config proxy.json'),
  handler: async (args) => {
    const result = await initConfig({ out: args.out, clientId: args['client-id'], upstream: args.upstream, force: args.force === true });
    process.stdout.write(
      [
        `wrote ${result.path} (mode 0600): signing secret, client "${result.clientId}" (secret stored as a scrypt hash)`,
        `client_id: ${result.clientId}`,
        `client_secret: ${result.clientSecret}`,
        `access_token: ${result.token.token}`,
        `(expires ${new Date(result.token.expiresAt).toISOString()}; the secret is not shown again)`,
        `start the proxy: mcp-warden --config ${result.path}`,
        '',
      ].join('\n'),
    );
  },
};
