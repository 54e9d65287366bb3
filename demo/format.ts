// Small formatting helpers shared by the scenario and the view. None of them ever receives a
// raw token except `fingerprint`, which only returns a short hash of it.
import type { CredentialStatus } from '../src/index.js';

/**
 * A short, non-reversible name for a secret: the first 8 hex characters of its SHA-256. Enough
 * to tell two tokens apart in a log, useless to an attacker.
 */
export async function fingerprint(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret));
  return Buffer.from(digest).toString('hex').slice(0, 8);
}

/** `1.2 s` / `340 ms`, or `-` when unknown. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (Math.abs(ms) < 1_000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  return `${(ms / 1_000).toFixed(1)} s`;
}

/** Seconds with millisecond precision, right-aligned, for line prefixes: `  1.234s`. */
export function formatElapsed(ms: number): string {
  return `${(ms / 1_000).toFixed(3)}s`.padStart(8);
}

/** A one-line rendering of `credential.status()`, times made relative to `now`. */
export function formatStatus(status: CredentialStatus, now = Date.now()): string {
  const parts = [
    `state=${status.state}`,
    `refreshing=${status.refreshing ? 'yes' : 'no'}`,
    `expiresIn=${status.expiresAt === undefined ? '-' : formatMs(status.expiresAt - now)}`,
    `refreshDueIn=${status.refreshAt === undefined ? '-' : formatMs(Math.max(0, status.refreshAt - now))}`,
    `failures=${status.failures}`,
    `requests=${status.requests}`,
    `source=${status.source.kind}/${status.source.clientId ?? '-'}`,
  ];
  if (status.lastError !== undefined) parts.push(`lastError=${status.lastError}`);
  return `${status.id} status(): ${parts.join(' ')}`;
}

/** Nearest-rank percentile of an ascending list, or `undefined` when empty. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Column alignment for {@link table}. */
export type Align = 'left' | 'right';

export interface TableOptions {
  readonly align?: readonly Align[];
  /** Least width per column, so a redrawn table keeps its shape as values change. */
  readonly minWidths?: readonly number[];
}

/**
 * A plain-text table. The rule under the header is one dash run per column, so no run gets long
 * enough to look like a token to the leak check of the demo's test.
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  { align = [], minWidths = [] }: TableOptions = {},
): string[] {
  const widths = header.map((h, i) =>
    Math.max(minWidths[i] ?? 0, h.length, ...rows.map((r) => (r[i] ?? '').length)),
  );
  const render = (cells: readonly string[]) =>
    cells
      .map((cell, i) =>
        align[i] === 'right' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(render)];
}
