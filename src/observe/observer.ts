import type { WardenEvents } from '../events.js';

/**
 * One request a credential sent with its token, as {@link WardenObserver | observers} see it.
 * Plain data with no token, header, path or query in it.
 *
 * @example
 * ```ts
 * import type { RequestRecord } from 'tokenwarden';
 * const slow = (record: RequestRecord) => record.durationMs > 1_000 && record.status !== 0;
 * ```
 */
export interface RequestRecord {
  /** The credential id. */
  readonly id: string;
  /** The method as the request was first sent (`GET`, `POST`, ...). */
  readonly method: string;
  /** The destination origin (`scheme://host:port`), never a path or query. */
  readonly origin: string;
  /**
   * The final status: after redirects were followed and after the one retry following a 401;
   * `0` when no response came (network failure, timeout, abort).
   */
  readonly status: number;
  /** Wall time of the call, milliseconds, including token waits, redirects and the retry. */
  readonly durationMs: number;
  /** Whether the request was retried with a new token after a 401. */
  readonly retried: boolean;
  /** How old the token was when the request completed, milliseconds, when known. */
  readonly tokenAgeMs?: number;
  /**
   * What the call failed with, when it threw instead of returning a response: the `code` of a
   * tokenwarden error (`ERR_REDIRECT`, `ERR_TOKEN_IN_URL`, ...), else the
   * thrown error's `name` — `TimeoutError` when an `AbortSignal.timeout()` signal fired,
   * `AbortError` for another abort, `TypeError` for a network failure in `fetch` — else the
   * `typeof` of the thrown value. Never a message. Absent when a response was returned.
   */
  readonly error?: string;
}

/**
 * Receives every request record and every event of a warden, synchronously and in order. This
 * is the extension point the metrics snapshot, the anomaly detector and the OpenTelemetry
 * adapter (`tokenwarden/otel`) are built on. A method that throws is ignored (a request never
 * fails because of an observer). Keep both methods cheap: `request` runs once per request.
 *
 * @example
 * ```ts
 * import { createWarden, type WardenObserver } from 'tokenwarden';
 * const errorsByOrigin = new Map<string, number>();
 * const observer: WardenObserver = {
 *   request({ origin, status }) {
 *     if (status === 0 || status >= 500) errorsByOrigin.set(origin, (errorsByOrigin.get(origin) ?? 0) + 1);
 *   },
 *   event(name, payload) {
 *     if (name === 'anomaly') console.warn(payload);
 *   },
 * };
 * const warden = createWarden();
 * const stop = warden.observe(observer);
 * // ... later
 * stop();
 * ```
 */
export interface WardenObserver {
  /**
   * A request sent with a credential's token completed (or got no response).
   * @param record - What happened, without token, path or query.
   */
  request?(record: RequestRecord): void;
  /**
   * An event was emitted (the same payloads as `warden.on`).
   * @param name - The event name.
   * @param payload - The event payload.
   */
  event?<K extends keyof WardenEvents>(name: K, payload: WardenEvents[K][0]): void;
}
