import type { CommandModule } from 'yargs';
import { createWarden } from '../warden.js';
import type { Warden } from '../warden.js';
import { logEvent } from '../observability/events.js';
import { readPolicySection } from '../policy/file.js';
import { loadConfig } from '../config/load.js';
import { configFromArgs, EXIT, withConfigOptions } from './options.js';
import type { ConfigArgs } from './options.js';
import type { Config } from '../config/schema.js';
import { VERSION } from '../version.js';

/** `mcp-warden [serve]`: run the proxy until SIGTERM/SIGINT, then shut down gracefully. */
export const serveCommand: CommandModule<object, ConfigArgs> = {
  command: ['serve', '$0'],
  describe: 'Run the proxy (the default command)',
  builder: (yargs) =>
    withConfigOptions(yargs)
      .example('$0 --upstream http://127.0.0.1:3000/mcp', 'Protect a local MCP server on the default port 8080')
      .example('$0 serve --config proxy.json --store redis --redis-url redis://127.0.0.1:6379', 'Use a config file and share state through Redis')
      .example('MCP_WARDEN_PORT=9000 $0', 'Configure through the environment'),
  handler: async (args) => {
    const config = await configFromArgs(args);
    const file = args.config ?? process.env.MCP_WARDEN_CONFIG ?? null;
    // The admin API's reload is SIGHUP's: the warden it reloads exists once created.
    let running: Warden | null = null;
    const warden = await createWarden(config, file === null ? {} : { reload: async () => running !== null && reloadFrom(file, running) });
    running = warden;
    warden.logger.info({ version: VERSION, node: process.version, pid: process.pid, url: warden.url, mcp: warden.mcpUrl, admin: warden.adminUrl, store: config.store.type, upstreams: config.upstreams.map(withoutCredentials) }, 'mcp-warden listening');
    const nobody = await nobodyCanAuthenticate(config, warden);
    if (nobody) warden.logger.warn(nobody);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      warden.logger.info({ signal }, 'shutting down');
      warden.close().then(
        () => process.exit(EXIT.ok),
        (err: unknown) => {
          warden.logger.error({ err }, 'shutdown failed');
          process.exit(EXIT.failure);
        },
      );
    };
    // SIGHUP reloads the clients and the policy from the config file; a bad file is logged and
    // the old ones stay.
    process.on('SIGHUP', () => void reloadFrom(file, warden));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // Started through npx or `npm exec`, a SIGTERM reaches npm, which exits without passing it
    // on: the proxy would run on, orphaned. Such a proxy watches its parent and stops as if
    // signalled when it is gone. (Containers and services start `node dist/cli/index.js` directly.)
    if (process.env.npm_command !== undefined) {
      const parent = process.ppid;
      setInterval(() => {
        if (process.ppid !== parent) stop('parent exited');
      }, 500).unref();
    }
  },
};

/** An upstream URL as logged: never its user info. */
function withoutCredentials(url: string): string {
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  return parsed.href;
}

/**
 * A proxy nobody can get a token from serves nothing: say so at start, and how to add someone.
 * Null when a client (config or store), a trusted issuer or sign-in exists.
 */
export async function nobodyCanAuthenticate(config: Config, warden: Pick<Warden, 'store'>): Promise<string | null> {
  if (config.clients.length > 0 || config.tokens.trustedIssuers.length > 0 || config.login.oidc.issuer !== null) return null;
  if (config.store.type === 'redis' && (await warden.store.listClients().catch(() => [])).length > 0) return null;
  return 'nobody can authenticate: no client, trusted issuer or sign-in is configured, so every MCP request gets 401. '
    + 'Add a client (mcp-warden init --out proxy.json, then --config proxy.json; or mcp-warden client add with the Redis store), '
    + 'an identity provider whose tokens to accept (tokens.trustedIssuers), or sign-in for people (login.oidc, docs/sign-in.md)';
}

/**
 * SIGHUP: the config file's clients (validated with the whole file, env included, as at start)
 * and its policy section, handed to the running proxy. Anything invalid keeps what runs.
 */
export async function reloadFrom(file: string | null, warden: Pick<Warden, 'reloadPolicy' | 'reloadClients' | 'logger'>): Promise<boolean> {
  if (file !== null) {
    const loaded = await loadConfig({ file, env: process.env });
    if (!loaded.ok) {
      logEvent(warden.logger, 'policy.reload_failed', { reason: 'invalid', problems: loaded.problems.map((p) => `${p.path}: ${p.message}`) });
      return false;
    }
    warden.reloadClients(loaded.config.clients);
  }
  return reloadPolicyFrom(file, warden);
}

/** Reads the config file's policy section again and hands it to the running proxy. */
export async function reloadPolicyFrom(file: string | null, warden: Pick<Warden, 'reloadPolicy' | 'logger'>): Promise<boolean> {
  if (file === null) {
    logEvent(warden.logger, 'policy.reload_failed', { reason: 'file', problems: ['(file): the proxy was started without a config file'] });
    return false;
  }
  const section = await readPolicySection(file);
  if (!section.ok) {
    logEvent(warden.logger, 'policy.reload_failed', { reason: 'file', problems: section.problems.map((p) => `${p.path}: ${p.message}`) });
    return false;
  }
  return warden.reloadPolicy(section.raw).ok;
}
