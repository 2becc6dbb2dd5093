/**
 * Glob patterns of policy rules: `*` matches any run of characters (`/` included, so
 * `file:///etc/*` fences the whole tree), `?` exactly one character (a Unicode code point), and
 * `\*`, `\?`, `\\` are the literal characters. Nothing else is special: a tool name, a method or
 * a URI with brackets, dots or braces matches itself. No normalization: "é" composed and
 * decomposed are different names, as they are to the upstream.
 */

const STAR = 0;
const ONE = 1;
/** A compiled pattern: code points (strings) and wildcards. */
type Token = string | typeof STAR | typeof ONE;

/** A compiled glob. */
export interface Glob {
  readonly source: string;
  test(value: string): boolean;
}

const MAX_PATTERN = 1024;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a pattern is not a valid glob, or null when it is. */
export function globProblem(pattern: string): string | null {
  if (pattern.length === 0) return 'must be a non-empty pattern';
  if (pattern.length > MAX_PATTERN) return `must be at most ${MAX_PATTERN} characters`;
  if (LONE_SURROGATE.test(pattern)) return 'must be well-formed Unicode (no lone surrogates)';
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== '\\') continue;
    const next = pattern[i + 1];
    if (next !== '*' && next !== '?' && next !== '\\') return 'has a "\\" that escapes nothing (only \\*, \\? and \\\\ are escapes)';
    i++;
  }
  return null;
}

function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  const points = Array.from(pattern);
  for (let i = 0; i < points.length; i++) {
    const c = points[i] as string;
    if (c === '\\') tokens.push(points[++i] as string);
    else if (c === '*') {
      // Consecutive stars are one star: the match is the same, the search shorter.
      if (tokens[tokens.length - 1] !== STAR) tokens.push(STAR);
    } else tokens.push(c === '?' ? ONE : c);
  }
  return tokens;
}

/**
 * Matches code points against tokens: the classic linear scan that backtracks only to the last
 * star, so a hostile name costs O(pattern × name), never exponential time (a regular expression
 * built from `*a*a*a*` can).
 */
function matchTokens(tokens: readonly Token[], value: readonly string[]): boolean {
  let t = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    const token = tokens[t];
    if (token === STAR) {
      star = t++;
      resume = v;
    } else if (token !== undefined && (token === ONE || token === value[v])) {
      t++;
      v++;
    } else if (star >= 0) {
      t = star + 1;
      v = ++resume;
    } else return false;
  }
  while (tokens[t] === STAR) t++;
  return t === tokens.length;
}

/** Compiles a pattern already checked by {@link globProblem} (throws TypeError otherwise: a bug). */
export function compileGlob(pattern: string): Glob {
  const problem = globProblem(pattern);
  if (problem) throw new TypeError(`bad glob ${JSON.stringify(pattern)}: ${problem}`);
  const tokens = tokenize(pattern);
  if (!tokens.some((t) => t === STAR || t === ONE)) {
    const literal = tokens.join('');
    return { source: pattern, test: (value) => value === literal };
  }
  if (tokens.length === 1 && tokens[0] === STAR) return { source: pattern, test: () => true };
  // Literal text before the first and after the last wildcard: most names are told apart by these
  // alone, without splitting the name into code points (the hot path of a long rule list).
  const first = tokens.findIndex((t) => t === STAR || t === ONE);
  const last = tokens.length - 1 - [...tokens].reverse().findIndex((t) => t === STAR || t === ONE);
  const prefix = tokens.slice(0, first).join('');
  const suffix = tokens.slice(last + 1).join('');
  if (first === last && tokens[first] === STAR) {
    // One star: prefix and suffix decide, as long as they do not overlap in the name.
    return { source: pattern, test: (value) => value.length >= prefix.length + suffix.length && value.startsWith(prefix) && value.endsWith(suffix) };
  }
  return { source: pattern, test: (value) => value.startsWith(prefix) && value.endsWith(suffix) && matchTokens(tokens, Array.from(value)) };
}

/** True when any of the globs matches. */
export function anyGlob(globs: readonly Glob[], value: string): boolean {
  for (const g of globs) if (g.test(value)) return true;
  return false;
}
