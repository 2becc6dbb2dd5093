/** RFC 6901 JSON pointers, for conditions on `tools/call` arguments and on token claims. */

/** A parsed pointer: its reference tokens, unescaped. */
export type Pointer = readonly string[];

/** Parses `""` or `/a/b~1c`; null when it is not an RFC 6901 pointer. */
export function parsePointer(text: string): Pointer | null {
  if (text === '') return [];
  if (!text.startsWith('/')) return null;
  const tokens = text.slice(1).split('/');
  // "~" must be followed by 0 or 1 (RFC 6901 §3).
  if (tokens.some((t) => /~(?![01])/.test(t))) return null;
  return tokens.map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const INDEX = /^(0|[1-9][0-9]{0,8})$/;

/**
 * The value at a pointer, or undefined when there is none. Only own members are followed: a
 * pointer such as `/__proto__/x` or `/constructor` finds nothing on a parsed JSON value.
 */
export function resolvePointer(root: unknown, pointer: Pointer): unknown {
  let value = root;
  for (const token of pointer) {
    if (Array.isArray(value)) {
      if (!INDEX.test(token)) return undefined;
      value = value[Number(token)];
    } else if (typeof value === 'object' && value !== null && Object.hasOwn(value, token)) {
      value = (value as Record<string, unknown>)[token];
    } else return undefined;
  }
  return value;
}
