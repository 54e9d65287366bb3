// What the demo counts per credential, from the outside, as an application would: the closing
// checks compare these counts with tokenwarden's own metrics snapshot.
import type { Credential, RefreshReason } from '../src/index.js';
import { percentile } from './format.js';

/** Counters of one credential, written by the event listeners and the request loop. */
export interface CredentialStats {
  readonly credential: Credential;
  /** How the demo describes its source, e.g. `client_credentials (basic)`. */
  readonly label: string;
  readonly refreshes: Record<RefreshReason, number>;
  /** Refreshes that replaced the refresh token (rotation). */
  rotations: number;
  refreshErrors: number;
  /** Requests of the steady loop that succeeded / failed. */
  ok: number;
  failed: number;
  /** Latency of each successful loop request, milliseconds, in arrival order. */
  readonly latencies: number[];
  /** `blocked` events. */
  blocked: number;
  /** `anomaly` events. */
  anomalies: number;
}

export function createStats(credential: Credential, label: string): CredentialStats {
  return {
    credential,
    label,
    refreshes: { initial: 0, proactive: 0, scheduled: 0, forced: 0, shared: 0 },
    rotations: 0,
    refreshErrors: 0,
    ok: 0,
    failed: 0,
    latencies: [],
    blocked: 0,
    anomalies: 0,
  };
}

/** Refreshes that happened ahead of expiry, without a request waiting for them. */
export function backgroundRefreshes(stats: CredentialStats): number {
  return stats.refreshes.proactive + stats.refreshes.scheduled;
}

export function totalRefreshes(stats: CredentialStats): number {
  const r = stats.refreshes;
  return r.initial + r.proactive + r.scheduled + r.forced;
}

/** One credential's numbers at one instant, as the view shows them. */
export interface CredentialRow {
  readonly id: string;
  readonly label: string;
  readonly state: string;
  /** Milliseconds until the current token expires, if there is one. */
  readonly expiresInMs: number | undefined;
  readonly refreshes: number;
  readonly background: number;
  readonly forced: number;
  readonly rotations: number;
  readonly ok: number;
  readonly failed: number;
  readonly p50: number | undefined;
  readonly p95: number | undefined;
  readonly blocked: number;
  readonly anomalies: number;
}

export function row(stats: CredentialStats, now = Date.now()): CredentialRow {
  const status = stats.credential.status();
  // Sorting a copy on every frame is fine at demo volumes (a few thousand samples at most).
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  return {
    id: stats.credential.id,
    label: stats.label,
    state: status.refreshing ? `${status.state}*` : status.state,
    expiresInMs: status.expiresAt === undefined ? undefined : status.expiresAt - now,
    refreshes: totalRefreshes(stats),
    background: backgroundRefreshes(stats),
    forced: stats.refreshes.forced,
    rotations: stats.rotations,
    ok: stats.ok,
    failed: stats.failed,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    blocked: stats.blocked,
    anomalies: stats.anomalies,
  };
}
