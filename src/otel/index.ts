/**
 * OpenTelemetry metrics for a warden: every request sent with a token as
 * `http.client.request.duration` (OpenTelemetry's HTTP client semantic conventions), and token
 * refreshes, refresh failures, token age, 401 retries, blocked requests, revocations, tampered
 * records and anomalies as `tokenwarden.*` instruments. Records through `@opentelemetry/api`, an
 * optional peer dependency: bring the SDK and exporter of your choice. Runs in browsers and Node.
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
 * import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
 * import { createWarden } from 'tokenwarden';
 * import { instrumentWarden } from 'tokenwarden/otel';
 * const reader = new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() });
 * metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
 * const warden = createWarden();
 * instrumentWarden(warden);
 * ```
 * @packageDocumentation
 */
export {
  type InstrumentWardenOptions,
  instrumentWarden,
  type WardenInstrumentation,
} from './instrument.js';
export { METRIC_NAMES } from './names.js';
