import type { CommandModule } from 'yargs';
import { runDoctor } from '../doctor.js';
import { EXIT } from './options.js';

interface DoctorArgs {
  readonly url: string;
  readonly client: string;
  readonly secret?: string;
}

/** `mcp-warden doctor`: end-to-end self-test of a live deployment. */
export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor',
  describe: 'Walk discovery, token, initialize, tools/list and DELETE against a live deployment',
  builder: (yargs) =>
    yargs
      .option('url', { type: 'string', demandOption: true, describe: 'Public MCP URL of the deployment' })
      .option('client', { type: 'string', demandOption: true, describe: 'Client id' })
      .option('secret', { type: 'string', describe: 'Client secret (or MCP_WARDEN_DOCTOR_SECRET)' })
      .example('$0 doctor --url https://mcp.example/mcp --client agent-1 --secret s3cret', 'Check a deployment end to end')
      .example('MCP_WARDEN_DOCTOR_SECRET=s3cret $0 doctor --url http://127.0.0.1:8080/mcp --client agent-1', 'Keep the secret out of the shell history'),
  handler: async (args) => {
    const secret = args.secret ?? process.env.MCP_WARDEN_DOCTOR_SECRET;
    if (!secret) {
      process.stderr.write('mcp-warden doctor: give --secret or MCP_WARDEN_DOCTOR_SECRET\n');
      process.exit(EXIT.usage);
    }
    const results = await runDoctor({ url: args.url, clientId: args.client, clientSecret: secret });
    for (const r of results) {
      process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.step}\n     ${r.ok ? r.detail : `expected: ${r.expected}\n     got:      ${r.got}`}\n`);
    }
    process.exit(results.every((r) => r.ok) ? EXIT.ok : EXIT.failure);
  },
};
