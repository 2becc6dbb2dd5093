import { compileGlob } from '../policy/glob.js';
import type { Glob } from '../policy/glob.js';

/**
 * Which redirect URIs a client that registered itself (RFC 7591) or published its own metadata
 * document may name: the operator's allow-list (`login.registration.redirectUris`), and never a
 * URI a browser would run or that could hide where it goes.
 *
 * Patterns are globs over the URI as the client wrote it; a loopback `http` URI is matched without
 * its port, since a native app picks a free port at each start (RFC 8252 §7.3). Custom schemes
 * (`vscode:`, `cursor:`) match only when a pattern names them.
 */

const LOOPBACK_PORT = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):\d{1,5}(?=[/?]|$)/;
const NEVER = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'blob:', 'about:', 'filesystem:']);
const MAX_URI = 2000;

export type RedirectPolicy = readonly Glob[];

export function compileRedirectPolicy(patterns: readonly string[]): RedirectPolicy {
  return patterns.map((p) => compileGlob(p));
}

/** Why a client may not register this redirect URI, or null when it may. */
export function redirectUriProblem(policy: RedirectPolicy, uri: string): string | null {
  if (uri.length > MAX_URI) return 'is too long';
  // No normalisation an attacker could steer: what is stored is matched byte for byte later.
  if (/[\s\\\u0000-\u001f\u007f]/.test(uri) || !URL.canParse(uri)) return 'is not an absolute URI';
  const url = new URL(uri);
  if (NEVER.has(url.protocol)) return `may not use the ${url.protocol} scheme`;
  if (uri.includes('#')) return 'may not have a fragment';
  if (url.username || url.password || /^[a-z][a-z0-9+.-]*:\/\/[^/?]*@/i.test(uri)) return 'may not carry a user name or password';
  const matched = uri.replace(LOOPBACK_PORT, 'http://$1');
  if (!policy.some((glob) => glob.test(matched))) return 'is not allowed by this server (login.registration.redirectUris)';
  return null;
}
