import { readFileSync } from 'node:fs';

/**
 * mcp-warden's own version, from its package.json (src/ and dist/ both sit beside it). Read by
 * path, not from npm's environment: started through a bin link, that would be the installing
 * project's package.json ("unknown" or someone else's version).
 */
export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
