import type { CommandModule } from 'yargs';
import { compilePolicy } from '../policy/decide.js';
import { explainMessage, formatExplained } from '../policy/explain.js';
import { configFromArgs, EXIT, UsageError, withConfigOptions } from './options.js';
import type { ConfigArgs } from './options.js';

interface TestArgs extends ConfigArgs {
  readonly message: string;
  readonly client: string;
  readonly user?: string;
  readonly issuer: string;
  readonly group?: readonly string[];
  readonly scope?: readonly string[];
  readonly claims?: string;
}

function parseClaims(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let claims: unknown;
  try {
    claims = JSON.parse(text);
  } catch {
    throw new UsageError('--claims must be a JSON object');
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new UsageError('--claims must be a JSON object');
  return claims as Record<string, unknown>;
}

const test: CommandModule<object, TestArgs> = {
  command: 'test',
  describe: 'Print the decision (and the rule that made it) for a caller and a JSON-RPC message',
  builder: (yargs) =>
    withConfigOptions(yargs)
      .option('message', { type: 'string', demandOption: true, describe: 'The JSON-RPC message or batch, as the client would POST it' })
      .option('client', { type: 'string', demandOption: true, describe: 'Client id (or the sub of an external token)' })
      .option('user', { type: 'string', describe: 'Signed-in person (issuer~sub); absent for a machine client' })
      .option('issuer', { type: 'string', default: 'self', describe: '"self" for our own tokens, else the issuer URL' })
      .option('group', { type: 'string', array: true, describe: 'A group of the caller (repeatable)' })
      .option('scope', { type: 'string', array: true, describe: 'A scope of the token (repeatable)' })
      .option('claims', { type: 'string', describe: 'Token claims as a JSON object' })
      .example(`$0 policy test --config proxy.json --client agent-1 --scope mcp --message '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_ticket"}}'`, 'deny tools/call "delete_ticket" (rule no-deletes)'),
  handler: async (args) => {
    const config = await configFromArgs(args);
    if (config.policy === null) {
      process.stdout.write('no policy configured: every message is allowed\n');
      return;
    }
    const principal = { clientId: args.client, user: args.user ?? null, issuer: args.issuer, groups: args.group ?? [], scopes: args.scope ?? [], claims: parseClaims(args.claims) };
    const explained = explainMessage(compilePolicy(config.policy), principal, args.message);
    if (!explained.ok) throw new UsageError(`--message: ${explained.reason}`);
    for (const e of explained.results) process.stdout.write(`${formatExplained(e)}\n`);
    // Exit 1 when anything would be refused, so a deployment check can gate on it.
    if (explained.results.some((e) => !e.decision.allowed)) process.exitCode = EXIT.failure;
  },
};

/** `mcp-warden policy test`. */
export const policyCommand: CommandModule = {
  command: 'policy <command>',
  describe: 'Check the per-tool policy',
  builder: (yargs) => yargs.command(test).demandCommand(1),
  handler: () => {},
};
