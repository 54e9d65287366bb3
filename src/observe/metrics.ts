import type { DpopKeyInfo } from '../dpop/key.js';
import type { WardenEvents } from '../events.js';
import type { RequestOutcome } from '../transport/types.js';

/**
 * A latency distribution: how many requests completed, and the 50th, 95th and 99th percentiles
 * and the maximum of their wall time, in milliseconds (all `0` while `count` is `0`).
 *
 * Percentiles come from a fixed histogram of 137 log-spaced buckets, 8 per doubling, from 0.5 ms
 * to about 60 s. Each percentile is the geometric middle of the bucket that holds the true
 * (nearest-rank) percentile, clamped to the smallest and largest values seen, so for latencies
 * between 0.5 ms and 60 s it is within 4.5 % of the true value (`2^(1/16) - 1`). Below 0.5 ms
 * the error is at most 0.5 ms; above 60 s the percentile reports `max`. `max` is exact.
 *
 * @example
 * ```ts
 * import type { LatencySummary } from 'tokenwarden';
 * const { latencyMs }: { latencyMs: LatencySummary } = warden.metrics().credentials.billing;
 * if (latencyMs.count > 0 && latencyMs.p99 > 2_000) console.warn('billing is slow', latencyMs);
 * ```
 */
export interface LatencySummary {
  /** Requests measured. */
  readonly count: number;
  /** Median, milliseconds. */
  readonly p50: number;
  /** 95th percentile, milliseconds. */
  readonly p95: number;
  /** 99th percentile, milliseconds. */
  readonly p99: number;
  /** Largest value seen, milliseconds (exact). */
  readonly max: number;
}

/**
 * How old the credential's token was when requests used it (`now - issuedAt` when the request
 * completed), in milliseconds; `0` before the first request. The median comes from a histogram
 * with 4 buckets per doubling from 1 s to about 400 days: within 9.1 % of the true median above
 * 1 s, at most 1 s off below. `max` is exact.
 *
 * @example
 * ```ts
 * import type { TokenAgeSummary } from 'tokenwarden';
 * const age: TokenAgeSummary = warden.metrics().credentials.billing.tokenAgeMs;
 * if (age.max > 24 * 3_600_000) console.warn('billing used a token older than a day');
 * ```
 */
export interface TokenAgeSummary {
  /** Median age at use, milliseconds. */
  readonly p50: number;
  /** Largest age at use, milliseconds (exact). */
  readonly max: number;
}

/**
 * Token refreshes of one credential, counted from its `refresh` events by
 * {@link RefreshReason | reason}, and `failed` from its `refresh-error` events.
 *
 * @example
 * ```ts
 * import type { RefreshCounts } from 'tokenwarden';
 * const refreshes: RefreshCounts = warden.metrics().credentials.billing.refreshes;
 * const total = refreshes.initial + refreshes.proactive + refreshes.forced + refreshes.scheduled;
 * console.log(`${total} token requests, ${refreshes.shared} taken over, ${refreshes.failed} failed`);
 * ```
 */
export interface RefreshCounts {
  /** A request waited for a first (or replacement of an expired) token. */
  readonly initial: number;
  /** Refreshed inside the refresh window while requests went on with the old token. */
  readonly proactive: number;
  /** Refreshed after a 401 or `getToken({ forceRefresh: true })`. */
  readonly forced: number;
  /** Refreshed by the `keepFresh` timer. */
  readonly scheduled: number;
  /** Taken over from another tab, process or instance sharing the store (no token request). */
  readonly shared: number;
  /** Failed refresh attempts (each `refresh-error` event). */
  readonly failed: number;
}

/**
 * The requests one credential sent to one destination origin. Counted like the credential's
 * totals (see {@link CredentialMetrics}).
 *
 * @example
 * ```ts
 * import type { OriginMetrics } from 'tokenwarden';
 * const origins = warden.metrics().credentials.billing.origins;
 * for (const [origin, figures] of Object.entries(origins) as [string, OriginMetrics][]) {
 *   console.log(origin, figures.requests, figures.serverErrors, figures.latencyMs.p95);
 * }
 * ```
 */
export interface OriginMetrics {
  /** Requests sent with the token to this origin. */
  readonly requests: number;
  /** Final status 2xx. */
  readonly ok: number;
  /** Final status 4xx. */
  readonly clientErrors: number;
  /** Final status 5xx. */
  readonly serverErrors: number;
  /** No response: network failure, timeout or abort. */
  readonly networkErrors: number;
  /** Wall time of these requests. */
  readonly latencyMs: LatencySummary;
}

/**
 * Usage figures of one credential since it was registered with the warden.
 *
 * Counting rules:
 * - `requests` counts the calls of the credential's `fetch` (and `ky`) that were sent with its
 *   token. A request refused by the policy is not sent and counts only in `blocked`. A request
 *   to a foreign origin in `send-without-token` mode goes out without the token: it counts in
 *   `blocked` (as a stripped request), not in `requests`.
 * - Status classes use the final status of each call: after redirects are followed and after
 *   the one retry following a 401. A 302 followed to a 200 counts in `ok`; a 401 recovered by a
 *   retry counts in `retriedAfter401` and in the class of the retry's status. `networkErrors`
 *   counts calls that got no response (network failure, timeout, abort).
 * - `blocked` counts every `blocked` event: refused requests, and requests or redirects sent
 *   without the token.
 * - Figures are cumulative. A credential closed on its own keeps its figures in the snapshot
 *   (registering the same id again continues them) until `warden.close()`, which drops all.
 *
 * @example
 * ```ts
 * import type { CredentialMetrics } from 'tokenwarden';
 * const billing: CredentialMetrics = warden.metrics().credentials.billing;
 * const errorRate = (billing.serverErrors + billing.networkErrors) / Math.max(1, billing.requests);
 * console.log(`billing: ${billing.requests} requests, ${(errorRate * 100).toFixed(1)} % failed`);
 * ```
 */
export interface CredentialMetrics {
  /** Requests sent with the credential's token. */
  readonly requests: number;
  /** Final status 2xx. */
  readonly ok: number;
  /** Final status 3xx (redirects not followed: `redirect: 'manual'`, or 304). */
  readonly redirects: number;
  /** Final status 4xx. */
  readonly clientErrors: number;
  /** Final status 5xx. */
  readonly serverErrors: number;
  /** No response: network failure, timeout or abort. */
  readonly networkErrors: number;
  /** Final status 401. */
  readonly unauthorized: number;
  /** Final status 403. */
  readonly forbidden: number;
  /** Requests retried with a new token after a 401. */
  readonly retriedAfter401: number;
  /** Requests refused, or sent without the token, by the policy (`blocked` events). */
  readonly blocked: number;
  /** Token refreshes by reason, and failures. */
  readonly refreshes: RefreshCounts;
  /** Wall time of the requests, including token waits, redirects and the retry. */
  readonly latencyMs: LatencySummary;
  /** Age of the token at use. */
  readonly tokenAgeMs: TokenAgeSummary;
  /** When the last request completed, epoch milliseconds; absent before the first one. */
  readonly lastUsedAt?: number;
  /** The DPoP key the credential's tokens are bound to; absent for bearer credentials. */
  readonly dpop?: DpopKeyInfo;
  /**
   * The same figures per destination origin (`scheme://host:port`, never a path or query).
   * At most 100 origins are kept per credential; requests to further origins are added up
   * under the key `"(other)"`.
   */
  readonly origins: Readonly<Record<string, OriginMetrics>>;
}

/**
 * The JSON snapshot returned by `warden.metrics()`: plain data (numbers, strings and objects
 * only), safe to serialise, free of any token. Memory does not grow with the number of URLs or
 * requests: series exist only per credential and per origin (at most 101 per credential).
 *
 * @example
 * ```ts
 * import type { MetricsSnapshot } from 'tokenwarden';
 * setInterval(() => {
 *   const snapshot: MetricsSnapshot = warden.metrics();
 *   console.log(JSON.stringify(snapshot));
 * }, 60_000).unref();
 * ```
 */
export interface MetricsSnapshot {
  /** When the snapshot was taken, epoch milliseconds. */
  readonly at: number;
  /** Figures per credential id, for every credential registered since the warden was created. */
  readonly credentials: Readonly<Record<string, CredentialMetrics>>;
}

/** The key under which origins beyond the cap are added up. */
export const OTHER_ORIGINS = '(other)';
/** Distinct origins kept per credential. */
export const MAX_ORIGINS = 100;

/** Bucket layout of a log-spaced histogram. @internal */
interface Layout {
  /** Upper bound of bucket 0, which holds `[0, base]`. */
  readonly base: number;
  /** Buckets per doubling. */
  readonly perOctave: number;
  /** Log-spaced buckets 1..n; bucket n + 1 holds everything above. */
  readonly n: number;
}

function layout(base: number, perOctave: number, top: number): Layout {
  return { base, perOctave, n: Math.ceil(Math.log2(top / base) * perOctave) };
}

/** Latency: 0.5 ms to 60 s, 8 buckets per doubling (137 buckets in all). */
export const LATENCY_LAYOUT: Layout = layout(0.5, 8, 60_000);
/** Token age: 1 s to 400 days, 4 buckets per doubling. */
export const TOKEN_AGE_LAYOUT: Layout = layout(1_000, 4, 400 * 86_400_000);

/**
 * A fixed-size log-spaced histogram: constant memory, no allocation per value. @internal
 */
export class Histogram {
  readonly #layout: Layout;
  readonly #counts: Float64Array;
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;

  constructor(buckets: Layout) {
    this.#layout = buckets;
    this.#counts = new Float64Array(buckets.n + 2);
  }

  record(value: number): void {
    const v = Number.isNaN(value) ? 0 : Math.max(value, 0);
    const { base, perOctave, n } = this.#layout;
    let index = 0;
    if (v > base) {
      index = Math.ceil(Math.log2(v / base) * perOctave);
      if (index < 1) index = 1;
      else if (index > n + 1) index = n + 1;
    }
    this.#counts[index] = (this.#counts[index] as number) + 1;
    this.count++;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The nearest-rank `q`-quantile, estimated as described on {@link LatencySummary}. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    const { base, perOctave, n } = this.#layout;
    let seen = 0;
    let index = 0;
    for (; index < this.#counts.length; index++) {
      seen += this.#counts[index] as number;
      if (seen >= rank) break;
    }
    let estimate: number;
    if (index === 0) estimate = base / 2;
    else if (index > n) estimate = this.max;
    else estimate = base * 2 ** ((index - 0.5) / perOctave);
    return Math.min(this.max, Math.max(this.min, estimate));
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function summary(histogram: Histogram): LatencySummary {
  return {
    count: histogram.count,
    p50: round(histogram.quantile(0.5)),
    p95: round(histogram.quantile(0.95)),
    p99: round(histogram.quantile(0.99)),
    max: round(histogram.max),
  };
}

/** Counters shared by a credential and each of its origins. */
class Series {
  requests = 0;
  ok = 0;
  redirects = 0;
  clientErrors = 0;
  serverErrors = 0;
  networkErrors = 0;
  readonly latency = new Histogram(LATENCY_LAYOUT);

  add(status: number, durationMs: number): void {
    this.requests++;
    if (status === 0) this.networkErrors++;
    else if (status < 300) {
      if (status >= 200) this.ok++;
    } else if (status < 400) this.redirects++;
    else if (status < 500) this.clientErrors++;
    else if (status < 600) this.serverErrors++;
    this.latency.record(durationMs);
  }

  origin(): OriginMetrics {
    return {
      requests: this.requests,
      ok: this.ok,
      clientErrors: this.clientErrors,
      serverErrors: this.serverErrors,
      networkErrors: this.networkErrors,
      latencyMs: summary(this.latency),
    };
  }
}

class CredentialSeries extends Series {
  unauthorized = 0;
  forbidden = 0;
  retriedAfter401 = 0;
  blocked = 0;
  readonly refreshes = { initial: 0, proactive: 0, forced: 0, scheduled: 0, shared: 0, failed: 0 };
  readonly tokenAge = new Histogram(TOKEN_AGE_LAYOUT);
  lastUsedAt: number | undefined;
  readonly origins = new Map<string, Series>();
}

function define<T>(target: Record<string, T>, key: string, value: T): void {
  // defineProperty, so that an id such as "__proto__" is an ordinary own key.
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/**
 * Records the usage figures of one warden's credentials: fed by the credential runtime once
 * per authenticated request and once per refresh, refresh-error and blocked event; read by
 * `warden.metrics()`. Per request it does two map lookups, a handful of increments and two
 * histogram updates, without allocating. @internal
 */
export class MetricsRecorder {
  readonly #credentials = new Map<string, CredentialSeries>();
  readonly #maxOrigins: number;

  constructor(options: { maxOrigins?: number } = {}) {
    this.#maxOrigins = options.maxOrigins ?? MAX_ORIGINS;
  }

  /** Makes a credential appear in snapshots (with zero figures) from its registration on. */
  track(id: string): void {
    this.#series(id);
  }

  /** One authenticated request completed (or failed without a response); returns its time. */
  observe(id: string, outcome: RequestOutcome, tokenIssuedAt: number | undefined): number {
    const series = this.#series(id);
    const { status, durationMs } = outcome;
    series.add(status, durationMs);
    if (status === 401) series.unauthorized++;
    else if (status === 403) series.forbidden++;
    if (outcome.retried) series.retriedAfter401++;
    const now = Date.now();
    series.lastUsedAt = now;
    if (tokenIssuedAt !== undefined) series.tokenAge.record(now - tokenIssuedAt);
    let origin = series.origins.get(outcome.origin);
    if (origin === undefined) {
      const key = series.origins.size < this.#maxOrigins ? outcome.origin : OTHER_ORIGINS;
      origin = series.origins.get(key);
      if (origin === undefined) {
        origin = new Series();
        series.origins.set(key, origin);
      }
    }
    origin.add(status, durationMs);
    return now;
  }

  /** An event the runtime emits: refreshes and blocked requests are counted from these. */
  event<K extends keyof WardenEvents>(name: K, payload: WardenEvents[K][0]): void {
    if (name === 'refresh') {
      const { id, reason } = payload as WardenEvents['refresh'][0];
      const refreshes = this.#series(id).refreshes;
      if (reason in refreshes) refreshes[reason]++;
    } else if (name === 'refresh-error') {
      this.#series((payload as WardenEvents['refresh-error'][0]).id).refreshes.failed++;
    } else if (name === 'blocked') {
      this.#series((payload as WardenEvents['blocked'][0]).id).blocked++;
    }
  }

  /** The JSON snapshot. */
  snapshot(dpopOf: (id: string) => DpopKeyInfo | undefined = () => undefined): MetricsSnapshot {
    const credentials: Record<string, CredentialMetrics> = {};
    for (const [id, series] of this.#credentials) {
      const origins: Record<string, OriginMetrics> = {};
      for (const [origin, figures] of series.origins) define(origins, origin, figures.origin());
      const figures: CredentialMetrics = {
        requests: series.requests,
        ok: series.ok,
        redirects: series.redirects,
        clientErrors: series.clientErrors,
        serverErrors: series.serverErrors,
        networkErrors: series.networkErrors,
        unauthorized: series.unauthorized,
        forbidden: series.forbidden,
        retriedAfter401: series.retriedAfter401,
        blocked: series.blocked,
        refreshes: { ...series.refreshes },
        latencyMs: summary(series.latency),
        tokenAgeMs: {
          p50: Math.round(series.tokenAge.quantile(0.5)),
          max: Math.round(series.tokenAge.max),
        },
        ...(series.lastUsedAt === undefined ? {} : { lastUsedAt: series.lastUsedAt }),
        ...dpopField(dpopOf(id)),
        origins,
      };
      define(credentials, id, figures);
    }
    return { at: Date.now(), credentials };
  }

  /** Drops every figure (at `warden.close()`). */
  clear(): void {
    this.#credentials.clear();
  }

  /** How many series the recorder holds, for tests of its memory bound. */
  size(): { credentials: number; origins: number } {
    let origins = 0;
    for (const series of this.#credentials.values()) origins += series.origins.size;
    return { credentials: this.#credentials.size, origins };
  }

  #series(id: string): CredentialSeries {
    let series = this.#credentials.get(id);
    if (series === undefined) {
      series = new CredentialSeries();
      this.#credentials.set(id, series);
    }
    return series;
  }
}

function dpopField(info: DpopKeyInfo | undefined): { dpop?: DpopKeyInfo } {
  return info === undefined
    ? {}
    : { dpop: { algorithm: info.algorithm, thumbprint: info.thumbprint } };
}
