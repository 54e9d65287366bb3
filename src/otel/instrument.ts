import {
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  ValueType,
} from '@opentelemetry/api';
import { invalidArgument } from '../errors.js';
import type { WardenEvents } from '../events.js';
import type { RequestRecord, WardenObserver } from '../observe/observer.js';
import { METRIC_NAMES } from './names.js';

/** The instrumentation scope name. */
const SCOPE = 'tokenwarden';
/** The package version, reported as the instrumentation scope version (a test keeps it in step). */
export const VERSION = '0.1.0';

/** OpenTelemetry's fallback value of `http.request.method`, `error.type` and of ours. */
const OTHER = '_OTHER';

/** The methods HTTP semantic conventions know; any other is recorded as `_OTHER`. */
const KNOWN_METHODS = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
]);

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/** Bucket boundaries the HTTP semantic conventions advise for `http.client.request.duration`. */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** Token age, seconds: one second to a year, denser where access tokens usually live. */
const TOKEN_AGE_BUCKETS = [
  1, 10, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 14_400, 28_800, 43_200, 86_400, 172_800,
  604_800, 2_592_000, 7_776_000, 31_536_000,
];

/** A label from an event that is not ours to bound (a custom store kind, an OAuth error). */
const LABEL = /^[A-Za-z0-9._:-]{1,64}$/;

function label(value: unknown): string {
  return typeof value === 'string' && LABEL.test(value) ? value : OTHER;
}

/** What `RequestRecord.error` holds when something other than an object was thrown. */
const TYPEOF_NAMES = new Set([
  'bigint',
  'boolean',
  'function',
  'number',
  'object',
  'string',
  'symbol',
  'undefined',
]);

/**
 * The `error.type` of a request, as the HTTP semantic conventions define it: the status code for
 * a final status of 400 or more; `timeout` for a timeout (`AbortSignal.timeout()` fired, or
 * `ERR_TIMEOUT`); the code of a tokenwarden error (`ERR_REDIRECT`, `ERR_ABORTED`, ...); the name
 * of any other error (`AbortError`, `TypeError` for a network failure); `_OTHER` when something
 * else was thrown or nothing is known. `undefined` for a success.
 */
function requestErrorType(status: number, error: string | undefined): string | undefined {
  if (status >= 400) return String(status);
  if (error === undefined) return status === 0 ? OTHER : undefined;
  if (error === 'TimeoutError' || error === 'ERR_TIMEOUT') return 'timeout';
  return TYPEOF_NAMES.has(error) ? OTHER : label(error);
}

/**
 * Options of {@link instrumentWarden}.
 *
 * @example
 * ```ts
 * import { instrumentWarden, type InstrumentWardenOptions } from 'tokenwarden/otel';
 * const options: InstrumentWardenOptions = {
 *   meterProvider,
 *   // One series per tenant rather than per user: ids look like "tenant-a:user-123".
 *   credentialId: (id) => id.split(':')[0],
 * };
 * const instrumentation = instrumentWarden(warden, options);
 * ```
 */
export interface InstrumentWardenOptions {
  /**
   * The meter provider to get the `tokenwarden` meter from. Ignored when `meter` is given.
   * @default the global provider, `metrics.getMeterProvider()` (a no-op until an SDK registers one)
   */
  readonly meterProvider?: MeterProvider;
  /**
   * The meter to create the instruments on, when you want a scope of your own.
   * @default `meterProvider.getMeter('tokenwarden', <the tokenwarden version>)`
   */
  readonly meter?: Meter;
  /**
   * How the credential id is recorded, as the `tokenwarden.credential.id` attribute of every
   * instrument: `true` records it as is; `false` leaves it out (figures of all credentials add
   * up); a function maps an id to the value to record, or to `undefined` to leave it out — use
   * it to group many per-user credentials into a few series.
   * @default true
   */
  readonly credentialId?: boolean | ((id: string) => string | undefined);
  /**
   * Distinct destination origins recorded with their own `server.address`, `server.port` and
   * `url.scheme`. Requests to origins seen after this many are recorded with `server.address`
   * `"_OTHER"` and no port or scheme.
   * @default 100
   */
  readonly maxOrigins?: number;
}

/**
 * What {@link instrumentWarden} returns: stop recording with `close()`.
 *
 * @example
 * ```ts
 * import { instrumentWarden, type WardenInstrumentation } from 'tokenwarden/otel';
 * const instrumentation: WardenInstrumentation = instrumentWarden(warden);
 * process.on('SIGTERM', () => instrumentation.close());
 * ```
 */
export interface WardenInstrumentation {
  /**
   * Stops recording: removes the observer from the warden. Data already recorded stays with
   * the SDK (flush it through your reader). Calling it again does nothing.
   * @throws Never.
   */
  close(): void;
}

/** The `server.*` and `url.scheme` attributes of one origin. */
type OriginAttributes = Readonly<Attributes>;

function originAttributes(origin: string): OriginAttributes {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return { 'server.address': OTHER };
  }
  // IPv6 literals come bracketed from URL; the conventions record the bare address.
  const address = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? DEFAULT_PORTS[url.protocol] : Number(url.port);
  return {
    'server.address': address === '' ? OTHER : address,
    ...(port === undefined ? {} : { 'server.port': port }),
    'url.scheme': url.protocol.slice(0, -1),
  };
}

/**
 * Records a warden's requests, refreshes and security events as OpenTelemetry metrics through
 * `@opentelemetry/api` (an optional peer dependency): the same figures as `warden.metrics()`,
 * as counters and histograms an OpenTelemetry SDK aggregates and exports.
 *
 * Requests sent with a token are recorded in `http.client.request.duration`, following
 * OpenTelemetry's HTTP client semantic conventions: seconds, the advised bucket boundaries,
 * `http.request.method` (`_OTHER` for a method the conventions do not list), `server.address`,
 * `server.port`, `url.scheme`, `http.response.status_code` when a response came, and, for a
 * failed request, `error.type`:
 *
 * | `error.type` | when |
 * |---|---|
 * | the status code (`"404"`, `"503"`) | the final status was 400 or more |
 * | `timeout` | the caller's `AbortSignal.timeout()` signal fired (a `TimeoutError`), or `ERR_TIMEOUT` |
 * | the `ERR_*` code (`ERR_REDIRECT`, `ERR_TOKEN_IN_URL`, ...) | a tokenwarden error was thrown after the request was sent (a request the policy refused before sending is not recorded here but in `tokenwarden.blocked_requests`) |
 * | the error's `name` (`AbortError`, `TypeError`) | any other error: `AbortError` for the caller's abort, `TypeError` for a network failure in `fetch` |
 * | `_OTHER` | a value that is not an error was thrown, or its name is not a short identifier |
 *
 * A timeout that ky enforces (its `timeout` option) aborts the request without a reason: it is
 * recorded as `AbortError`. The snapshot's `requests`, `ok`, `clientErrors`,
 * `unauthorized` and so on are this histogram's counts by status code. Every other figure has
 * an instrument of its own; {@link METRIC_NAMES} lists them with their attributes.
 *
 * Cardinality stays bounded: attributes are the credential id, the destination origin (at most
 * `maxOrigins` distinct ones) and small enumerations (method, status code, reason, outcome,
 * code) — never a path, query, URL of a blocked request, or anything of a token.
 *
 * The warden calls the adapter synchronously; each call records a few measurements and
 * allocates one attribute object. Until an SDK is registered, the global meter provider is a
 * no-op and so is recording.
 *
 * @param warden - The warden to observe (or anything with a warden's `observe` method).
 * @param options - The meter provider or meter, and how to record credential ids.
 * @returns A handle whose `close()` stops recording.
 * @throws {@link index!InvalidArgumentError} `ERR_INVALID_ARGUMENT` for bad options, or when the
 * warden is closed.
 * @see https://opentelemetry.io/docs/specs/semconv/http/http-metrics/#metric-httpclientrequestduration
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
 * import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
 * import { createWarden } from 'tokenwarden';
 * import { instrumentWarden } from 'tokenwarden/otel';
 *
 * const reader = new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() });
 * metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
 *
 * const warden = createWarden();
 * const instrumentation = instrumentWarden(warden);
 * // ... later
 * instrumentation.close();
 * ```
 */
export function instrumentWarden(
  warden: { observe(observer: WardenObserver): () => void },
  options: InstrumentWardenOptions = {},
): WardenInstrumentation {
  if (warden === null || typeof warden !== 'object' || typeof warden.observe !== 'function') {
    throw invalidArgument('instrumentWarden(warden): pass a warden from createWarden().');
  }
  if (options === null || typeof options !== 'object') {
    throw invalidArgument('instrumentWarden(warden, options): options must be an object.');
  }
  const { credentialId = true, maxOrigins = 100 } = options;
  if (typeof credentialId !== 'boolean' && typeof credentialId !== 'function') {
    throw invalidArgument('credentialId must be a boolean or a function mapping an id.');
  }
  if (!Number.isSafeInteger(maxOrigins) || maxOrigins < 0) {
    throw invalidArgument('maxOrigins must be a non-negative integer.');
  }
  if (options.meter !== undefined && typeof options.meter?.createHistogram !== 'function') {
    throw invalidArgument('meter must be an OpenTelemetry Meter.');
  }
  if (
    options.meterProvider !== undefined &&
    typeof options.meterProvider?.getMeter !== 'function'
  ) {
    throw invalidArgument('meterProvider must be an OpenTelemetry MeterProvider.');
  }
  const meter =
    options.meter ?? (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE, VERSION);

  const count = (name: string, unit: string, description: string): Counter =>
    meter.createCounter(name, { unit, description, valueType: ValueType.INT });
  const seconds = (name: string, description: string, buckets: number[]): Histogram =>
    meter.createHistogram(name, {
      unit: 's',
      description,
      valueType: ValueType.DOUBLE,
      advice: { explicitBucketBoundaries: buckets },
    });

  const duration = seconds(
    METRIC_NAMES.httpClientRequestDuration,
    'Duration of HTTP client requests.',
    DURATION_BUCKETS,
  );
  const retried = count(
    METRIC_NAMES.retriedRequests,
    '{request}',
    'Requests retried with a new token after a 401.',
  );
  const tokenAge = seconds(
    METRIC_NAMES.tokenAge,
    'Age of the access token when a request used it.',
    TOKEN_AGE_BUCKETS,
  );
  const refreshes = count(METRIC_NAMES.refreshes, '{refresh}', 'Token sets put in use.');
  const refreshDuration = seconds(
    METRIC_NAMES.refreshDuration,
    'Duration of successful token requests.',
    DURATION_BUCKETS,
  );
  const refreshFailures = count(
    METRIC_NAMES.refreshFailures,
    '{failure}',
    'Failed token refresh attempts.',
  );
  const reauthRequired = count(
    METRIC_NAMES.reauthRequired,
    '{event}',
    'Grants the authorization server rejected: the credential needs new credentials.',
  );
  const blocked = count(
    METRIC_NAMES.blockedRequests,
    '{request}',
    'Requests the policy refused, or sent without the token.',
  );
  const revocations = count(
    METRIC_NAMES.revocations,
    '{revocation}',
    'Revocations of a credential, by outcome at the server.',
  );
  const tampered = count(
    METRIC_NAMES.tamperedRecords,
    '{record}',
    'Stored token records that failed their integrity check.',
  );
  const storeErrors = count(
    METRIC_NAMES.storeErrors,
    '{error}',
    'Failed reads, writes and deletes of the token store.',
  );
  const anomalies = count(METRIC_NAMES.anomalies, '{anomaly}', 'Anomalies detected.');

  const credential = (id: string): Attributes => {
    const value =
      credentialId === true ? id : credentialId === false ? undefined : credentialId(id);
    return typeof value === 'string' ? { 'tokenwarden.credential.id': value } : {};
  };

  const origins = new Map<string, OriginAttributes>();
  const overflow: OriginAttributes = { 'server.address': OTHER };
  const origin = (key: string): OriginAttributes => {
    let attributes = origins.get(key);
    if (attributes === undefined) {
      if (origins.size >= maxOrigins) return overflow;
      attributes = originAttributes(key);
      origins.set(key, attributes);
    }
    return attributes;
  };

  const request = (record: RequestRecord): void => {
    const { status } = record;
    const attributes: Attributes = {
      ...credential(record.id),
      'http.request.method': KNOWN_METHODS.has(record.method) ? record.method : OTHER,
      ...origin(record.origin),
    };
    if (status !== 0) attributes['http.response.status_code'] = status;
    const errorType = requestErrorType(status, record.error);
    if (errorType !== undefined) attributes['error.type'] = errorType;
    duration.record(Math.max(0, record.durationMs) / 1_000, attributes);
    if (record.retried) retried.add(1, attributes);
    if (record.tokenAgeMs !== undefined) {
      tokenAge.record(Math.max(0, record.tokenAgeMs) / 1_000, credential(record.id));
    }
  };

  const event = <K extends keyof WardenEvents>(name: K, payload: WardenEvents[K][0]): void => {
    switch (name) {
      case 'refresh': {
        const { id, reason, rotated, durationMs } = payload as WardenEvents['refresh'][0];
        const attributes = { ...credential(id), 'tokenwarden.refresh.reason': reason };
        refreshes.add(1, { ...attributes, 'tokenwarden.refresh.rotated': rotated });
        refreshDuration.record(Math.max(0, durationMs) / 1_000, attributes);
        break;
      }
      case 'refresh-error': {
        const { id, reason, code } = payload as WardenEvents['refresh-error'][0];
        refreshFailures.add(1, {
          ...credential(id),
          'tokenwarden.refresh.reason': reason,
          'error.type': label(code),
        });
        break;
      }
      case 'reauth-required': {
        const { id, error } = payload as WardenEvents['reauth-required'][0];
        reauthRequired.add(1, { ...credential(id), 'error.type': label(error) });
        break;
      }
      case 'blocked': {
        // The blocked URL is left out: it names a foreign origin any caller can vary.
        const { id, reason, action } = payload as WardenEvents['blocked'][0];
        blocked.add(1, {
          ...credential(id),
          'tokenwarden.block.reason': reason,
          'tokenwarden.block.action': action,
        });
        break;
      }
      case 'revoke': {
        const { id, outcome } = payload as WardenEvents['revoke'][0];
        revocations.add(1, { ...credential(id), 'tokenwarden.revocation.outcome': outcome });
        break;
      }
      case 'tamper': {
        const { id, store } = payload as WardenEvents['tamper'][0];
        tampered.add(1, { ...credential(id), 'tokenwarden.store.kind': label(store) });
        break;
      }
      case 'store-error': {
        const { id, store, operation, code } = payload as WardenEvents['store-error'][0];
        storeErrors.add(1, {
          ...credential(id),
          'tokenwarden.store.kind': label(store),
          'tokenwarden.store.operation': label(operation),
          'error.type': label(code),
        });
        break;
      }
      case 'anomaly': {
        const { id, kind, severity } = payload as WardenEvents['anomaly'][0];
        anomalies.add(1, {
          ...credential(id),
          'tokenwarden.anomaly.kind': label(kind),
          'tokenwarden.anomaly.severity': label(severity),
        });
        break;
      }
    }
  };

  const observer: WardenObserver = { request, event };
  let stop: (() => void) | undefined = warden.observe(observer);
  return {
    close() {
      stop?.();
      stop = undefined;
      origins.clear();
    },
  };
}
