/**
 * The names of the instruments `instrumentWarden()` creates, for views, dashboards and alerts.
 * `httpClientRequestDuration` is OpenTelemetry's stable HTTP client metric; the others are
 * tokenwarden's own, under the `tokenwarden.` namespace.
 *
 * | key | instrument | kind, unit | attributes (besides `tokenwarden.credential.id`) |
 * |---|---|---|---|
 * | `httpClientRequestDuration` | `http.client.request.duration` | histogram, `s` | `http.request.method`, `server.address`, `server.port`, `url.scheme`, `http.response.status_code`, `error.type` (the status code, `timeout`, the `ERR_*` code or the error's name: see `instrumentWarden`) |
 * | `retriedRequests` | `tokenwarden.retried_requests` | counter, `{request}` | as `http.client.request.duration` |
 * | `tokenAge` | `tokenwarden.token.age` | histogram, `s` | — |
 * | `refreshes` | `tokenwarden.token.refreshes` | counter, `{refresh}` | `tokenwarden.refresh.reason`, `tokenwarden.refresh.rotated` |
 * | `refreshDuration` | `tokenwarden.token.refresh.duration` | histogram, `s` | `tokenwarden.refresh.reason` |
 * | `refreshFailures` | `tokenwarden.token.refresh.failures` | counter, `{failure}` | `tokenwarden.refresh.reason`, `error.type` (the `ERR_*` code) |
 * | `reauthRequired` | `tokenwarden.reauth_required` | counter, `{event}` | `error.type` (the OAuth error) |
 * | `blockedRequests` | `tokenwarden.blocked_requests` | counter, `{request}` | `tokenwarden.block.reason`, `tokenwarden.block.action` |
 * | `revocations` | `tokenwarden.revocations` | counter, `{revocation}` | `tokenwarden.revocation.outcome` |
 * | `tamperedRecords` | `tokenwarden.store.tampered_records` | counter, `{record}` | `tokenwarden.store.kind` |
 * | `storeErrors` | `tokenwarden.store.errors` | counter, `{error}` | `tokenwarden.store.kind`, `tokenwarden.store.operation`, `error.type` (the `ERR_*` code) |
 * | `anomalies` | `tokenwarden.anomalies` | counter, `{anomaly}` | `tokenwarden.anomaly.kind`, `tokenwarden.anomaly.severity` |
 *
 * @example
 * ```ts
 * import { AggregationType, MeterProvider } from '@opentelemetry/sdk-metrics';
 * import { METRIC_NAMES } from 'tokenwarden/otel';
 * // Coarser token-age buckets: one hour, one day, one week.
 * const provider = new MeterProvider({
 *   views: [
 *     {
 *       instrumentName: METRIC_NAMES.tokenAge,
 *       aggregation: {
 *         type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM,
 *         options: { boundaries: [3_600, 86_400, 604_800] },
 *       },
 *     },
 *   ],
 * });
 * ```
 */
export const METRIC_NAMES = {
  /** Histogram, seconds: requests sent with a token, by method, origin and status. */
  httpClientRequestDuration: 'http.client.request.duration',
  /** Counter: requests retried with a new token after a 401. */
  retriedRequests: 'tokenwarden.retried_requests',
  /** Histogram, seconds: age of the access token when a request used it. */
  tokenAge: 'tokenwarden.token.age',
  /** Counter: token sets put in use, by reason and whether the refresh token rotated. */
  refreshes: 'tokenwarden.token.refreshes',
  /** Histogram, seconds: duration of successful token requests, by reason. */
  refreshDuration: 'tokenwarden.token.refresh.duration',
  /** Counter: failed refresh attempts, by reason and error code. */
  refreshFailures: 'tokenwarden.token.refresh.failures',
  /** Counter: grants rejected by the authorization server, by OAuth error. */
  reauthRequired: 'tokenwarden.reauth_required',
  /** Counter: requests the policy refused or stripped, by reason and action. */
  blockedRequests: 'tokenwarden.blocked_requests',
  /** Counter: revocations, by outcome at the server. */
  revocations: 'tokenwarden.revocations',
  /** Counter: stored records that failed their integrity check, by store kind. */
  tamperedRecords: 'tokenwarden.store.tampered_records',
  /** Counter: failed reads, writes and deletes of the token store, by store kind, operation and code. */
  storeErrors: 'tokenwarden.store.errors',
  /** Counter: anomalies, by kind and severity. */
  anomalies: 'tokenwarden.anomalies',
} as const;
