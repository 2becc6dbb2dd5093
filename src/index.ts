/**
 * The package's library entry point (package.json `main`/`types`): embedding mcp-warden in another
 * program means loading a config and starting a warden, nothing more. The CLI is dist/cli/index.js.
 */
export { createWarden } from './warden.js';
export type { Warden, WardenOptions, PolicyReload } from './warden.js';
export { loadConfig } from './config/load.js';
export type { ConfigSources } from './config/load.js';
export type { Config, ClientConfig, IssuerConfig } from './config/schema.js';
export { ERROR_CATALOG, WardenError, ConfigError } from './errors.js';
export type { WardenErrorCode } from './errors.js';
