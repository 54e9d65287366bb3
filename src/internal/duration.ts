import { invalidArgument } from '../errors.js';

/**
 * A duration in milliseconds, or a string such as `'500ms'`, `'30s'`, `'5m'`, `'2h'`, `'30d'`.
 *
 * @example
 * ```ts
 * import { createWarden, type Duration } from 'tokenwarden';
 * const timeout: Duration = '10s';
 * const defaultLifetime: Duration = 15 * 60_000; // a number is milliseconds
 * const warden = createWarden({ defaults: { timeout, defaultLifetime } });
 * ```
 */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a {@link Duration} into milliseconds, throwing a coded argument error on junk. */
export function toMs(value: Duration | string, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw invalidArgument(`${name} must be a non-negative, finite number of milliseconds.`);
    }
    return value;
  }
  const match =
    typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim()) : null;
  if (!match) {
    throw invalidArgument(`${name} must be milliseconds or a string like '30s', '5m', '30d'.`);
  }
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}
