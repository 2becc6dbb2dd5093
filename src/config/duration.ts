const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;

/**
 * Parses a duration such as `"90s"`, `"15m"`, `"1h"`, `"30d"` or a whole number of milliseconds.
 * Returns the milliseconds, or `null` when the value is not a duration.
 */
export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  if (/^\d{1,15}$/.test(value)) return Number(value);
  const match = DURATION.exec(value.trim());
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  // 999999999d is past 2^53: not an exact number of milliseconds.
  return Number.isSafeInteger(ms) ? ms : null;
}

/** Formats milliseconds back into the largest exact unit (`3600000` → `"1h"`), for docs and examples. */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
