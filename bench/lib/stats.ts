// Statistics shared by the benchmarks: every figure is a median over repeated rounds, with the
// interquartile range (q1–q3) as its spread. A ratio against a peer is computed per round (both
// measured in the same round, so drift hits both alike) and then summarised the same way.

/** A median with its spread over rounds. */
export interface Summary {
  readonly median: number;
  readonly q1: number;
  readonly q3: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
  /**
   * A 95 % confidence interval of the median (distribution-free: the order statistics at
   * n/2 ± 0.98·√n), so that a target can be judged against the uncertainty, not the median alone.
   */
  readonly ci95: readonly [number, number];
}

export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** The `q` quantile (0…1) by linear interpolation between the closest ranks. */
export function quantile(values: readonly number[], q: number): number {
  const ordered = sorted(values);
  if (ordered.length === 0) return Number.NaN;
  const position = q * (ordered.length - 1);
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const a = ordered[lower] as number;
  const b = ordered[upper] as number;
  return a + (b - a) * (position - lower);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function summarise(values: readonly number[], digits = 3): Summary {
  const ordered = sorted(values);
  const n = ordered.length;
  const halfWidth = 0.98 * Math.sqrt(n);
  const low = ordered[Math.max(0, Math.floor(n / 2 - halfWidth))] ?? Number.NaN;
  const high = ordered[Math.min(n - 1, Math.ceil(n / 2 + halfWidth))] ?? Number.NaN;
  return {
    ci95: [round(low, digits), round(high, digits)],
    median: round(quantile(ordered, 0.5), digits),
    q1: round(quantile(ordered, 0.25), digits),
    q3: round(quantile(ordered, 0.75), digits),
    min: round(ordered[0] ?? Number.NaN, digits),
    max: round(ordered[ordered.length - 1] ?? Number.NaN, digits),
    n: ordered.length,
  };
}

/** Per-round ratios `of[i] / over[i]`, summarised. */
export function ratio(of: readonly number[], over: readonly number[]): Summary {
  return summarise(
    of.map((value, i) => value / (over[i] as number)),
    4,
  );
}

/** Per-round differences `of[i] - over[i]`, summarised. */
export function difference(of: readonly number[], over: readonly number[], digits = 3): Summary {
  return summarise(
    of.map((value, i) => value - (over[i] as number)),
    digits,
  );
}

export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** `1.034 (1.02–1.05)`: a ratio's median with its interquartile range. */
export function formatRatio(s: Summary): string {
  return `${s.median.toFixed(3)} (${s.q1.toFixed(3)}–${s.q3.toFixed(3)})`;
}

/** `+3.4 % (+2.0…+5.0)`: a ratio as added percent. */
export function formatPercent(s: Summary): string {
  const pct = (r: number) => `${r >= 1 ? '+' : ''}${((r - 1) * 100).toFixed(1)} %`;
  return `${pct(s.median)} (${pct(s.q1)} … ${pct(s.q3)})`;
}

/** `12.3 (11.9–12.8)`: a median with its interquartile range. */
export function formatSummary(s: Summary, digits = 1): string {
  return `${s.median.toFixed(digits)} (${s.q1.toFixed(digits)}–${s.q3.toFixed(digits)})`;
}

/**
 * Runs `cases` for `rounds` rounds, one batch of each per round in a rotating order, so that
 * drift (GC, JIT, a busy neighbour) hits every case alike. Returns each case's per-round values.
 */
export async function interleave<K extends string>(
  cases: Readonly<Record<K, () => Promise<number>>>,
  rounds: number,
): Promise<Record<K, number[]>> {
  const names = Object.keys(cases) as K[];
  const out = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<
    K,
    number[]
  >;
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length] as K;
      out[name].push(await cases[name]());
    }
  }
  return out;
}
