import { invalidArgument } from '../errors.js';
import type { AnomalyEvent, AnomalyKind, WardenEvents } from '../events.js';
import { type Duration, toMs } from '../internal/duration.js';
import type { RequestOutcome } from '../transport/types.js';

/**
 * Thresholds of the request-rate spike detector. Requests are counted in fixed windows of
 * `window`; the baseline is an exponentially weighted moving average of the counts of past
 * windows (each window weighs `1/8`, so the baseline remembers about the last 8 windows, idle
 * ones included). Once `warmup` windows have passed since a credential's first request, a
 * window whose count reaches `factor` times the baseline, and at least `minRequests`, is a
 * spike, reported as soon as the request that crosses the line is made.
 *
 * @example
 * ```ts
 * import { createWarden, type RateSpikeOptions } from 'tokenwarden';
 * const rateSpike: RateSpikeOptions = { window: '10s', factor: 4, minRequests: 100, warmup: 6 };
 * const warden = createWarden({ anomalies: { rateSpike } });
 * ```
 */
export interface RateSpikeOptions {
  /**
   * Length of one counting window.
   * @default '10s'
   */
  readonly window?: Duration;
  /**
   * How many times the baseline a window must reach.
   * @default 5
   */
  readonly factor?: number;
  /**
   * The smallest window count that can be a spike (keeps quiet credentials quiet).
   * @default 50
   */
  readonly minRequests?: number;
  /**
   * Windows to learn from before any spike is reported.
   * @default 6
   */
  readonly warmup?: number;
}

/**
 * Threshold of the 401/403 burst detector: `count` responses with status 401 or 403 (a 401
 * recovered by the retry included) within `window`.
 *
 * @example
 * ```ts
 * import { createWarden, type AuthFailureOptions } from 'tokenwarden';
 * const authFailures: AuthFailureOptions = { count: 5, window: '30s' };
 * const warden = createWarden({ anomalies: { authFailures } });
 * ```
 */
export interface AuthFailureOptions {
  /**
   * Responses with status 401 or 403 that make a burst.
   * @default 10
   */
  readonly count?: number;
  /**
   * The sliding window they must fall in.
   * @default '1m'
   */
  readonly window?: Duration;
}

/**
 * Threshold of the refresh-failure streak detector: `streak` consecutive failed refreshes of a
 * credential (reported once per streak; a successful refresh ends it).
 *
 * @example
 * ```ts
 * import { createWarden, type RefreshFailureOptions } from 'tokenwarden';
 * const refreshFailures: RefreshFailureOptions = { streak: 5 };
 * const warden = createWarden({ anomalies: { refreshFailures } });
 * ```
 */
export interface RefreshFailureOptions {
  /**
   * Consecutive failures that make a streak.
   * @default 3
   */
  readonly streak?: number;
}

/**
 * Options of anomaly detection (`createWarden({ anomalies })`). Each detector takes its
 * thresholds, or `false` to turn it off; `anomalies: false` turns them all off. Detectors:
 *
 * | kind | fires when | severity |
 * |---|---|---|
 * | `rate-spike` | a window's request count reaches `factor` × the learned baseline (see {@link RateSpikeOptions}) | `warning` |
 * | `auth-failures` | `count` 401/403 responses within `window` | `warning` |
 * | `blocked-leak` | the policy refused or stripped a request: foreign origin, plain HTTP, token in the URL, unsafe redirect | `critical` for a token in a URL, `warning` when refused, `info` when stripped |
 * | `refresh-token-reuse` | the first refresh after a rotation of the refresh token is answered `invalid_grant`: another party most likely redeemed a copy, and the server revoked the grant | `critical` |
 * | `refresh-failures` | `streak` consecutive failed refreshes | `warning`, `critical` when no valid token is left |
 * | `use-after-revoke` | a request or `getToken()` on a credential after `revoke()` (once per revocation) | `warning` |
 * | `store-conflict` | a refreshed token set could not be stored because another writer kept winning | `warning` |
 *
 * The same anomaly (credential, kind and, for blocked leaks, reason and origin) is reported at
 * most once per `cooldown`; the next report says how many were suppressed meanwhile.
 *
 * @example
 * ```ts
 * import { createWarden, type AnomalyOptions } from 'tokenwarden';
 * const anomalies: AnomalyOptions = {
 *   rateSpike: { factor: 8, minRequests: 200 },
 *   authFailures: { count: 20, window: '1m' },
 *   blockedLeak: false,
 *   cooldown: '5m',
 * };
 * const warden = createWarden({ anomalies });
 * warden.on('anomaly', ({ id, kind, severity, evidence }) => console.warn(id, kind, severity, evidence));
 * ```
 */
export interface AnomalyOptions {
  /** @default {} (the defaults of {@link RateSpikeOptions}) */
  readonly rateSpike?: RateSpikeOptions | false;
  /** @default {} (the defaults of {@link AuthFailureOptions}) */
  readonly authFailures?: AuthFailureOptions | false;
  /** @default {} (the defaults of {@link RefreshFailureOptions}) */
  readonly refreshFailures?: RefreshFailureOptions | false;
  /**
   * Report requests the policy blocked.
   * @default true
   */
  readonly blockedLeak?: boolean;
  /**
   * Report `invalid_grant` on the first refresh after a rotation.
   * @default true
   */
  readonly refreshTokenReuse?: boolean;
  /**
   * Report the use of a credential after it was revoked.
   * @default true
   */
  readonly useAfterRevoke?: boolean;
  /**
   * The shortest time between two reports of the same anomaly.
   * @default '1m'
   */
  readonly cooldown?: Duration;
}

/** Thresholds with every default applied. @internal */
interface Settings {
  readonly rateSpike:
    | { window: number; factor: number; minRequests: number; warmup: number }
    | undefined;
  readonly authFailures: { count: number; window: number } | undefined;
  readonly refreshFailures: { streak: number } | undefined;
  readonly blockedLeak: boolean;
  readonly refreshTokenReuse: boolean;
  readonly useAfterRevoke: boolean;
  readonly cooldown: number;
}

/** Weight of the newest window in the baseline's moving average. */
const ALPHA = 1 / 8;
/** Idle windows folded into the baseline at most (older idleness adds nothing). */
const MAX_IDLE_WINDOWS = 64;

function positive(value: unknown, name: string, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    (integer && !Number.isInteger(value))
  ) {
    throw invalidArgument(
      `anomalies.${name} must be a positive ${integer ? 'integer' : 'number'}.`,
    );
  }
  return value;
}

function duration(value: Duration | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = toMs(value, `anomalies.${name}`);
  if (ms <= 0) throw invalidArgument(`anomalies.${name} must be longer than 0.`);
  return ms;
}

function section<T extends object>(value: T | false | undefined, name: string): T | undefined {
  if (value === false) return undefined;
  if (value === undefined) return {} as T;
  if (value === null || typeof value !== 'object') {
    throw invalidArgument(`anomalies.${name} must be an object of thresholds, or false.`);
  }
  return value;
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'boolean') throw invalidArgument(`anomalies.${name} must be a boolean.`);
  return value;
}

/** Validates the options and applies the defaults. @internal */
export function anomalySettings(options: AnomalyOptions | false | undefined): Settings | undefined {
  if (options === false) return undefined;
  const given = options ?? {};
  if (given === null || typeof given !== 'object') {
    throw invalidArgument('anomalies must be an object of detector options, or false.');
  }
  const spike = section(given.rateSpike, 'rateSpike');
  const auth = section(given.authFailures, 'authFailures');
  const failures = section(given.refreshFailures, 'refreshFailures');
  return {
    rateSpike: spike && {
      window: duration(spike.window, 'rateSpike.window', 10_000),
      factor: positive(spike.factor, 'rateSpike.factor', 5),
      minRequests: positive(spike.minRequests, 'rateSpike.minRequests', 50, true),
      warmup: positive(spike.warmup, 'rateSpike.warmup', 6, true),
    },
    authFailures: auth && {
      count: positive(auth.count, 'authFailures.count', 10, true),
      window: duration(auth.window, 'authFailures.window', 60_000),
    },
    refreshFailures: failures && {
      streak: positive(failures.streak, 'refreshFailures.streak', 3, true),
    },
    blockedLeak: flag(given.blockedLeak, 'blockedLeak'),
    refreshTokenReuse: flag(given.refreshTokenReuse, 'refreshTokenReuse'),
    useAfterRevoke: flag(given.useAfterRevoke, 'useAfterRevoke'),
    cooldown: duration(given.cooldown, 'cooldown', 60_000),
  };
}

/** What the detector remembers about one credential. */
class Watch {
  /** Start of the current rate window, or -1 before the first request. */
  windowStart = -1;
  /** Requests in the current window. */
  count = 0;
  /** Moving average of past window counts. */
  baseline = 0;
  /** Windows completed since the first request. */
  windows = 0;
  /** Times of the latest 401/403 responses (at most `authFailures.count`). */
  readonly authFailures: number[] = [];
  unauthorized = 0;
  forbidden = 0;
  /** When the refresh token was last rotated, if the refresh after it has not happened yet. */
  rotatedAt: number | undefined;
  /** When the credential was revoked, until its next use. */
  revokedAt: number | undefined;
  /** Consecutive refresh failures already reported. */
  streakReported = false;
  /** Last report time per anomaly key, and reports suppressed since. */
  readonly reported = new Map<string, { at: number; suppressed: number }>();
}

/**
 * Watches one warden's requests and events and reports anomalies through `report`. Never
 * holds a token: it sees outcomes (origin, status, timing) and event payloads only. Memory is
 * bounded per credential (the 401/403 ring holds at most `authFailures.count` times; cooldown
 * keys are per kind, and per reason and origin for blocked leaks, at most 64 per credential).
 * @internal
 */
export class AnomalyDetector {
  readonly #settings: Settings;
  readonly #report: (event: AnomalyEvent) => void;
  readonly #now: () => number;
  readonly #watches = new Map<string, Watch>();

  constructor(settings: Settings, report: (event: AnomalyEvent) => void, now = Date.now) {
    this.#settings = settings;
    this.#report = report;
    this.#now = now;
  }

  /** A credential was registered (again): a fresh start, except the learned baseline. */
  track(id: string): void {
    const watch = this.#watches.get(id);
    if (watch) watch.revokedAt = undefined;
  }

  /** A request was made or a token asked for: reports a use after revocation. */
  attempt(id: string): void {
    const watch = this.#watches.get(id);
    if (watch?.revokedAt === undefined) return;
    const revokedAt = watch.revokedAt;
    watch.revokedAt = undefined;
    if (!this.#settings.useAfterRevoke) return;
    this.#fire(
      watch,
      id,
      'use-after-revoke',
      'warning',
      { revokedAt, sinceRevokeMs: Math.max(0, this.#now() - revokedAt) },
      // Each revocation is its own anomaly: no cooldown across revocations.
      `use-after-revoke ${revokedAt}`,
    );
  }

  /** One request completed (or got no response). */
  request(id: string, outcome: RequestOutcome): void {
    const watch = this.#watch(id);
    const now = this.#now();
    this.#rate(watch, id, now, outcome.origin);
    const status = outcome.status;
    if (status === 401 || status === 403 || outcome.retried) {
      this.#authFailure(watch, id, now, status === 403 ? 'forbidden' : 'unauthorized');
    }
  }

  /** An event of the warden. */
  event<K extends keyof WardenEvents>(name: K, payload: WardenEvents[K][0]): void {
    switch (name) {
      case 'refresh': {
        const { id, rotated } = payload as WardenEvents['refresh'][0];
        const watch = this.#watch(id);
        watch.rotatedAt = rotated ? this.#now() : undefined;
        watch.streakReported = false;
        break;
      }
      case 'refresh-error': {
        const { id, failures, code, reason, servingStale } =
          payload as WardenEvents['refresh-error'][0];
        const limit = this.#settings.refreshFailures;
        const watch = this.#watch(id);
        if (!limit || failures < limit.streak || watch.streakReported) break;
        watch.streakReported = true;
        this.#fire(watch, id, 'refresh-failures', servingStale ? 'warning' : 'critical', {
          failures,
          threshold: limit.streak,
          code,
          reason,
          servingStale,
        });
        break;
      }
      case 'reauth-required': {
        const { id, error } = payload as WardenEvents['reauth-required'][0];
        const watch = this.#watch(id);
        const rotatedAt = watch.rotatedAt;
        watch.rotatedAt = undefined;
        if (error !== 'invalid_grant' || rotatedAt === undefined) break;
        if (!this.#settings.refreshTokenReuse) break;
        this.#fire(watch, id, 'refresh-token-reuse', 'critical', {
          error,
          rotatedAt,
          sinceRotationMs: Math.max(0, this.#now() - rotatedAt),
        });
        break;
      }
      case 'revoke': {
        const { id } = payload as WardenEvents['revoke'][0];
        const watch = this.#watch(id);
        watch.revokedAt = this.#now();
        watch.rotatedAt = undefined;
        break;
      }
      case 'blocked': {
        if (!this.#settings.blockedLeak) break;
        const { id, reason, url, action } = payload as WardenEvents['blocked'][0];
        const severity =
          reason === 'token-in-url' ? 'critical' : action === 'refused' ? 'warning' : 'info';
        const origin = originOf(url);
        this.#fire(
          this.#watch(id),
          id,
          'blocked-leak',
          severity,
          { reason, action, url },
          `${reason} ${action} ${origin}`,
        );
        break;
      }
      default:
        break;
    }
  }

  /** Forgets every credential (at `warden.close()`). */
  clear(): void {
    this.#watches.clear();
  }

  #watch(id: string): Watch {
    let watch = this.#watches.get(id);
    if (watch === undefined) {
      watch = new Watch();
      this.#watches.set(id, watch);
    }
    return watch;
  }

  #rate(watch: Watch, id: string, now: number, origin: string): void {
    const spike = this.#settings.rateSpike;
    if (!spike) return;
    if (watch.windowStart < 0) watch.windowStart = now;
    const elapsed = Math.floor((now - watch.windowStart) / spike.window);
    if (elapsed > 0) {
      // Close the current window, then any idle ones (count 0) up to now.
      let count = watch.count;
      const folded = Math.min(elapsed, MAX_IDLE_WINDOWS);
      for (let i = 0; i < folded; i++) {
        watch.baseline =
          watch.windows === 0 ? count : watch.baseline + ALPHA * (count - watch.baseline);
        watch.windows++;
        count = 0;
      }
      watch.windows += elapsed - folded;
      watch.windowStart += elapsed * spike.window;
      watch.count = 0;
    }
    watch.count++;
    if (watch.windows < spike.warmup) return;
    const threshold = Math.max(spike.minRequests, Math.ceil(spike.factor * watch.baseline));
    if (watch.count !== threshold) return;
    this.#fire(watch, id, 'rate-spike', 'warning', {
      requests: watch.count,
      windowMs: spike.window,
      baseline: Math.round(watch.baseline * 100) / 100,
      factor: spike.factor,
      threshold,
      origin,
    });
  }

  #authFailure(watch: Watch, id: string, now: number, kind: 'unauthorized' | 'forbidden'): void {
    const limit = this.#settings.authFailures;
    if (!limit) return;
    const times = watch.authFailures;
    // Drop the ones that left the window, together with their share of the counts.
    while (times.length > 0 && now - (times[0] as number) > limit.window) times.shift();
    if (times.length === 0) {
      watch.unauthorized = 0;
      watch.forbidden = 0;
    }
    times.push(now);
    watch[kind]++;
    if (times.length > limit.count) times.shift();
    if (times.length < limit.count) return;
    this.#fire(watch, id, 'auth-failures', 'warning', {
      count: times.length,
      windowMs: limit.window,
      threshold: limit.count,
      unauthorized: watch.unauthorized,
      forbidden: watch.forbidden,
    });
    times.length = 0;
    watch.unauthorized = 0;
    watch.forbidden = 0;
  }

  #fire(
    watch: Watch,
    id: string,
    kind: AnomalyKind,
    severity: AnomalyEvent['severity'],
    evidence: Record<string, unknown>,
    key: string = kind,
  ): void {
    const now = this.#now();
    const last = watch.reported.get(key);
    if (last !== undefined && now - last.at < this.#settings.cooldown) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    if (last === undefined && watch.reported.size >= 64) {
      // Keep the map bounded: drop the oldest key.
      const oldest = watch.reported.keys().next().value;
      if (oldest !== undefined) watch.reported.delete(oldest);
    }
    watch.reported.delete(key);
    watch.reported.set(key, { at: now, suppressed: 0 });
    this.#report({
      id,
      kind,
      severity,
      evidence: suppressed > 0 ? { ...evidence, suppressed } : evidence,
    });
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'unknown';
  }
}
