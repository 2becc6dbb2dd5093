import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { CommandModule } from 'yargs';
import { withStore } from '../admin/common.js';
import { publicKeyOf } from '../audit/chain.js';
import { verifyTrail } from '../audit/verify.js';
import { configFromArgs, EXIT, UsageError, withConfigOptions } from './options.js';
import type { ConfigArgs } from './options.js';

interface VerifyArgs extends ConfigArgs {
  readonly files?: string[];
  readonly replica?: string[];
  readonly publicKey?: string[];
  readonly json?: boolean;
}

/** A trusted key: a JWK file, or the `publicKey` value the proxy logs at start (base64url). */
async function trustedKey(source: string): Promise<[string, KeyObject]> {
  const text = (await readFile(source, 'utf8').catch(() => source)).trim();
  const x = text.startsWith('{') ? String((JSON.parse(text) as { x?: unknown }).x ?? '') : text;
  if (!/^[A-Za-z0-9_-]{43}$/.test(x)) throw new UsageError(`--public-key ${source.slice(0, 60)}: not an Ed25519 public key (a JWK file or its base64url "x")`);
  return [createHash('sha256').update(x).digest('base64url').slice(0, 16), publicKeyOf({ kty: 'OKP', crv: 'Ed25519', x })];
}

const verify: CommandModule<object, VerifyArgs> = {
  command: 'verify [files..]',
  describe: 'Check an audit trail end to end: edited, missing, reordered or inserted records, checkpoint signatures, an unsigned tail',
  builder: (yargs) =>
    withConfigOptions(yargs)
      .positional('files', { type: 'string', array: true, describe: 'JSON Lines files, oldest first (audit.jsonl.2 audit.jsonl.1 audit.jsonl)' })
      .option('replica', { type: 'string', array: true, describe: 'Read these replicas\' trails from the Redis store instead of files' })
      .option('public-key', { type: 'string', array: true, describe: 'Trusted checkpoint keys (JWK file or the logged base64url key); without, the trail\'s own start lines are trusted' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 audit verify audit.jsonl.1 audit.jsonl --public-key audit-key.jwk', 'Files, oldest first')
      .example('$0 audit verify --replica pod-a --replica pod-b --config proxy.json', 'The replicas\' Redis Streams'),
  handler: async (args) => {
    const files = args.files ?? [];
    if (files.length === 0 && !args.replica?.length) throw new UsageError('Give trail files, or --replica with a Redis store');
    const keys = new Map(await Promise.all((args.publicKey ?? []).map(trustedKey)));
    let lines: string[] = [];
    for (const file of files) lines.push(...(await readFile(file, 'utf8')).split('\n'));
    if (args.replica?.length) {
      const config = await configFromArgs(args);
      const replicas = args.replica;
      lines = lines.concat(await withStore(config, { persistent: true, command: 'audit verify' }, async (store) => (await Promise.all(replicas.map((r) => store.auditRead(r)))).flat()));
    }
    const report = verifyTrail(lines, keys);
    if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write(`${report.records} records, ${report.checkpoints} checkpoints, replicas: ${report.replicas.join(', ') || '(none)'}${keys.size === 0 ? ' (keys: the trail\'s own; pass --public-key to trust only yours)' : ''}\n`);
      for (const p of report.problems) process.stdout.write(`line ${p.line}${p.replica ? ` (${p.replica} seq ${p.seq ?? '?'})` : ''}: ${p.problem}\n`);
      process.stdout.write(report.ok ? 'OK: the trail is whole and every checkpoint verifies\n' : `FAILED: ${report.problems.length} problem(s); the first is where trust ends\n`);
    }
    process.exitCode = report.ok ? EXIT.ok : EXIT.failure;
  },
};

/** `mcp-warden audit verify`. */
export const auditCommand: CommandModule = {
  command: 'audit <command>',
  describe: 'Check the tamper-evident audit trail',
  builder: (yargs) => yargs.command(verify).demandCommand(1),
  handler: () => {},
};
