import type { SkewClock } from '../sources/types.js';

/** Options of {@link createSkewClock}. */
export interface SkewClockOptions {
  /**
   * The local clock, epoch milliseconds. Injected by tests; production code uses `Date.now`.
   * @default Date.now
   */
  now?: () => number;
  /**
   * Offsets smaller than this (in either direction) are treated as no skew at all, because a
   * `Date` header has a resolution of one second and the network adds latency on top.
   * @default 2000
   */
  minSkewMs?: number;
  /**
   * Offsets larger than this are discarded as garbage (a broken proxy, a test server with a
   * fixed date) rather than believed.
   * @default 86_400_000 (one day)
   */
  maxSkewMs?: number;
}

// An odd-sized window so the median is one real observation, and small so a corrected server
// clock is adopted after a few responses.
const WINDOW = 5;

/**
 * Creates the clock a credential uses for expiry decisions: the local clock, plus the offset
 * between a server's clock and ours learned from the `Date` headers of its responses.
 *
 * The offset is the median of the last five plausible observations, so one proxy with a wrong
 * clock cannot move it. Unparseable dates and offsets beyond `maxSkewMs` are ignored; offsets
 * within `minSkewMs` count as zero because a `Date` header only has second resolution.
 *
 * @param options - Injected clock and thresholds.
 * @returns A {@link SkewClock}.
 * @example
 * ```ts
 * const clock = createSkewClock();
 * clock.observe(response.headers.get('date'), Date.now());
 * const serverNow = clock.now() + clock.skewMs;
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-6.6.1 (the `Date` header)
 */
export function createSkewClock(options: SkewClockOptions = {}): SkewClock {
  const now = options.now ?? Date.now;
  const minSkewMs = options.minSkewMs ?? 2_000;
  const maxSkewMs = options.maxSkewMs ?? 86_400_000;
  const samples: number[] = [];
  let skewMs = 0;

  return {
    now: () => now(),
    get skewMs() {
      return skewMs;
    },
    observe(dateHeader: string | null, receivedAt: number): void {
      if (typeof dateHeader !== 'string' || dateHeader.length > 64) return;
      if (!Number.isFinite(receivedAt)) return;
      const serverMs = Date.parse(dateHeader);
      if (!Number.isFinite(serverMs)) return;
      // The header is truncated to the second: the server's clock was somewhere within the
      // following second, so its middle is the best estimate.
      const offset = serverMs + 500 - receivedAt;
      if (Math.abs(offset) > maxSkewMs) return;
      samples.push(offset);
      if (samples.length > WINDOW) samples.shift();
      const sorted = [...samples].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
      skewMs = Math.abs(median) < minSkewMs ? 0 : Math.round(median);
    },
  };
}
