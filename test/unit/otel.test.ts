import { readFileSync } from 'node:fs';
import { type Attributes, metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  customSource,
  memoryStore,
  type TokenStore,
  TokenWardenError,
  type WardenEvents,
  type WardenObserver,
} from '../../src/index.js';
import { instrumentWarden, METRIC_NAMES } from '../../src/otel/index.js';
import { VERSION } from '../../src/otel/instrument.js';
import { createWarden, type Warden } from '../../src/warden.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const API = 'https://api.example.test';
const OTHER = 'http://127.0.0.1:8443';
const FOREIGN = 'https://foreign.example.test';

const accepted = new Set<string>();

const server = setupServer(
  http.all(`${API}/*`, ({ request }) => {
    const path = new URL(request.url).pathname;
    const auth = request.headers.get('authorization')?.replace(/^Bearer /, '') ?? '';
    if (!accepted.has(auth)) {
      return new HttpResponse(null, {
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    if (path === '/redirect') return HttpResponse.redirect(`${API}/ok`, 302);
    if (path === '/missing') return new HttpResponse(null, { status: 404 });
    if (path === '/forbidden') return new HttpResponse(null, { status: 403 });
    if (path === '/boom') return new HttpResponse(null, { status: 503 });
    if (path === '/down') return HttpResponse.error();
    return HttpResponse.json({ ok: true });
  }),
  http.all(`${OTHER}/*`, () => HttpResponse.json({ ok: true })),
  http.all(`${FOREIGN}/*`, () => HttpResponse.json({ ok: true })),
);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

/** A meter provider whose reader exports, on demand, to an in-memory exporter. */
function sdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // The interval never fires during a test: collection happens through forceFlush().
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  return {
    provider,
    /** Everything exported by one flush. */
    async collect(): Promise<{ exported: ResourceMetrics[]; metrics: Map<string, MetricData> }> {
      await reader.forceFlush();
      const exported = exporter.getMetrics();
      exporter.reset();
      const byName = new Map<string, MetricData>();
      for (const resource of exported) {
        for (const scope of resource.scopeMetrics) {
          for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
        }
      }
      return { exported, metrics: byName };
    },
    shutdown: () => provider.shutdown(),
  };
}

type Points = { attributes: Attributes; value: number; histogram?: Histogram }[];

/** The data points of one instrument: counters' values, histograms' counts. */
function points(collected: Map<string, MetricData>, name: string): Points {
  const metric = collected.get(name);
  if (metric === undefined) return [];
  if (metric.dataPointType === DataPointType.HISTOGRAM) {
    return metric.dataPoints.map((point) => ({
      attributes: point.attributes,
      value: point.value.count,
      histogram: point.value,
    }));
  }
  if (metric.dataPointType === DataPointType.SUM) {
    return metric.dataPoints.map((point) => ({ attributes: point.attributes, value: point.value }));
  }
  throw new Error(`unexpected data point type of ${name}`);
}

/** Adds up the values of the points whose attributes match `where`. */
function total(list: Points, where: (attributes: Attributes) => boolean = () => true): number {
  return list.filter((point) => where(point.attributes)).reduce((sum, p) => sum + p.value, 0);
}

/** The figures of one credential's `warden.metrics()` entry, computed from the OTel data. */
function figuresFromOtel(collected: Map<string, MetricData>, id: string) {
  const own = (attributes: Attributes) => attributes['tokenwarden.credential.id'] === id;
  const requests = points(collected, METRIC_NAMES.httpClientRequestDuration);
  const status = (test: (code: number) => boolean) =>
    total(requests, (a) => {
      const code = a['http.response.status_code'];
      return own(a) && typeof code === 'number' && test(code);
    });
  const refreshes = points(collected, METRIC_NAMES.refreshes);
  const byReason = (reason: string) =>
    total(refreshes, (a) => own(a) && a['tokenwarden.refresh.reason'] === reason);
  return {
    requests: total(requests, own),
    ok: status((code) => code >= 200 && code < 300),
    redirects: status((code) => code >= 300 && code < 400),
    clientErrors: status((code) => code >= 400 && code < 500),
    serverErrors: status((code) => code >= 500 && code < 600),
    networkErrors: total(
      requests,
      (a) =>
        own(a) && a['http.response.status_code'] === undefined && a['error.type'] !== undefined,
    ),
    unauthorized: status((code) => code === 401),
    forbidden: status((code) => code === 403),
    retriedAfter401: total(points(collected, METRIC_NAMES.retriedRequests), own),
    blocked: total(points(collected, METRIC_NAMES.blockedRequests), own),
    refreshes: {
      initial: byReason('initial'),
      proactive: byReason('proactive'),
      forced: byReason('forced'),
      scheduled: byReason('scheduled'),
      shared: byReason('shared'),
      failed: total(points(collected, METRIC_NAMES.refreshFailures), own),
    },
  };
}

describe('instrumentWarden() with a real warden', () => {
  let warden: Warden;
  let otel: ReturnType<typeof sdk>;
  let minted: string[];

  beforeEach(() => {
    warden = createWarden();
    otel = sdk();
    minted = [];
    accepted.clear();
  });
  afterEach(async () => {
    await warden.close();
    await otel.shutdown();
  });

  function register(id = 'api') {
    return warden.register(id, {
      source: customSource(async () => {
        const token = `${SENTINEL.accessToken}-${minted.length + 1}`;
        minted.push(token);
        accepted.add(token);
        return { accessToken: token, expiresIn: 3600 };
      }),
      origins: [API, OTHER],
    });
  }

  /** Statuses 200, 302 followed, 302 manual, 404, 403, 503, a network error, a 401 retry. */
  async function traffic(credential: ReturnType<typeof register>): Promise<void> {
    expect((await credential.fetch(`${API}/ok`)).status).toBe(200);
    expect((await credential.fetch(`${API}/ok?page=2`, { method: 'POST' })).status).toBe(200);
    expect((await credential.fetch(`${API}/redirect`)).status).toBe(200);
    expect((await credential.fetch(`${API}/redirect`, { redirect: 'manual' })).status).toBe(302);
    expect((await credential.fetch(`${API}/missing`)).status).toBe(404);
    expect((await credential.fetch(`${API}/forbidden`)).status).toBe(403);
    expect((await credential.fetch(`${API}/boom`, { method: 'PURGE' })).status).toBe(503);
    await expect(credential.fetch(`${API}/down`)).rejects.toThrow();
    accepted.clear(); // the token is revoked at the server: 401, forced refresh, retry
    expect((await credential.fetch(`${API}/ok`)).status).toBe(200);
    expect((await credential.fetch(`${OTHER}/x`)).status).toBe(200);
    await expect(credential.fetch(`${FOREIGN}/x`)).rejects.toMatchObject({
      code: 'ERR_ORIGIN_NOT_ALLOWED',
    });
    await expect(credential.fetch(`${API}/ok?t=${minted.at(-1)}`)).rejects.toMatchObject({
      code: 'ERR_TOKEN_IN_URL',
    });
  }

  it('records every request as http.client.request.duration with semconv attributes', async () => {
    instrumentWarden(warden, { meterProvider: otel.provider });
    await traffic(register());
    const { metrics: collected } = await otel.collect();
    const requests = points(collected, METRIC_NAMES.httpClientRequestDuration);
    const metric = collected.get(METRIC_NAMES.httpClientRequestDuration);
    expect(metric?.descriptor).toMatchObject({
      unit: 's',
      description: 'Duration of HTTP client requests.',
    });

    const api = { 'server.address': 'api.example.test', 'server.port': 443, 'url.scheme': 'https' };
    const series = (extra: Attributes) => ({
      'tokenwarden.credential.id': 'api',
      'http.request.method': 'GET',
      ...api,
      ...extra,
    });
    const expected = [
      { attributes: series({ 'http.response.status_code': 200 }), value: 3 },
      {
        attributes: series({ 'http.request.method': 'POST', 'http.response.status_code': 200 }),
        value: 1,
      },
      { attributes: series({ 'http.response.status_code': 302 }), value: 1 },
      { attributes: series({ 'http.response.status_code': 404, 'error.type': '404' }), value: 1 },
      { attributes: series({ 'http.response.status_code': 403, 'error.type': '403' }), value: 1 },
      {
        attributes: series({
          'http.request.method': '_OTHER',
          'http.response.status_code': 503,
          'error.type': '503',
        }),
        value: 1,
      },
      // msw fails the fetch as browsers and undici do: with a TypeError.
      { attributes: series({ 'error.type': 'TypeError' }), value: 1 },
      {
        attributes: series({
          'server.address': '127.0.0.1',
          'server.port': 8443,
          'url.scheme': 'http',
          'http.response.status_code': 200,
        }),
        value: 1,
      },
    ];
    const actual = requests.map(({ attributes, value }) => ({ attributes, value }));
    expect(actual).toHaveLength(expected.length);
    expect(actual).toEqual(expect.arrayContaining(expected));

    for (const point of requests) {
      // No path, query or URL in any attribute; the seconds unit and semconv buckets.
      expect(
        Object.keys(point.attributes).some((key) => key.startsWith('url.') && key !== 'url.scheme'),
      ).toBe(false);
      expect(point.histogram?.buckets.boundaries).toEqual([
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
      ]);
      expect(point.histogram?.sum).toBeGreaterThanOrEqual(0);
      expect(point.histogram?.max).toBeLessThan(5); // seconds, not milliseconds
    }

    const retried = points(collected, METRIC_NAMES.retriedRequests);
    expect(retried).toEqual([
      { attributes: series({ 'http.response.status_code': 200 }), value: 1 },
    ]);
    const age = points(collected, METRIC_NAMES.tokenAge);
    expect(age.map((p) => p.attributes)).toEqual([{ 'tokenwarden.credential.id': 'api' }]);
    expect(total(age)).toBe(10);
    expect(age[0]?.histogram?.max).toBeLessThan(60);
  });

  it('mirrors warden.metrics() count for count', async () => {
    instrumentWarden(warden, { meterProvider: otel.provider });
    const anomalies: WardenEvents['anomaly'][0][] = [];
    warden.on('anomaly', (event) => anomalies.push(event));
    await traffic(register());
    const broken = warden.register('broken', {
      source: customSource(async () => {
        throw new Error('the token service is down');
      }),
      origins: [API],
    });
    await expect(broken.fetch(`${API}/ok`)).rejects.toThrow();
    await register('other').getToken();

    const { metrics: collected } = await otel.collect();
    const snapshot = warden.metrics();
    expect(Object.keys(snapshot.credentials).sort()).toEqual(['api', 'broken', 'other']);
    for (const [id, figures] of Object.entries(snapshot.credentials)) {
      const { latencyMs, tokenAgeMs, lastUsedAt, origins, ...counts } = figures;
      expect(figuresFromOtel(collected, id), id).toEqual(counts);
    }
    expect(snapshot.credentials.api).toMatchObject({
      requests: 10,
      retriedAfter401: 1,
      blocked: 2,
      refreshes: { initial: 1, forced: 1 },
    });
    expect(snapshot.credentials.broken?.refreshes.failed).toBeGreaterThanOrEqual(1);

    // Per origin, too.
    const requests = points(collected, METRIC_NAMES.httpClientRequestDuration);
    const at = (address: string) =>
      total(
        requests,
        (a) => a['tokenwarden.credential.id'] === 'api' && a['server.address'] === address,
      );
    expect(at('api.example.test')).toBe(snapshot.credentials.api?.origins[API]?.requests);
    expect(at('127.0.0.1')).toBe(snapshot.credentials.api?.origins[OTHER]?.requests);

    expect(points(collected, METRIC_NAMES.blockedRequests).map((p) => p.attributes)).toEqual(
      expect.arrayContaining([
        {
          'tokenwarden.credential.id': 'api',
          'tokenwarden.block.reason': 'origin-not-allowed',
          'tokenwarden.block.action': 'refused',
        },
        {
          'tokenwarden.credential.id': 'api',
          'tokenwarden.block.reason': 'token-in-url',
          'tokenwarden.block.action': 'refused',
        },
      ]),
    );
    const failures = points(collected, METRIC_NAMES.refreshFailures);
    expect(failures.every((p) => p.attributes['error.type'] === 'ERR_SOURCE_FAILED')).toBe(true);
    const refreshes = points(collected, METRIC_NAMES.refreshes);
    expect(refreshes).toContainEqual({
      attributes: {
        'tokenwarden.credential.id': 'api',
        'tokenwarden.refresh.reason': 'forced',
        'tokenwarden.refresh.rotated': false,
      },
      value: 1,
    });
    expect(total(points(collected, METRIC_NAMES.refreshDuration))).toBe(total(refreshes));

    // Every anomaly the warden reported (if its detectors fired) is counted once.
    expect(total(points(collected, METRIC_NAMES.anomalies))).toBe(anomalies.length);
    for (const { id, kind, severity } of anomalies) {
      expect(
        total(
          points(collected, METRIC_NAMES.anomalies),
          (a) =>
            a['tokenwarden.credential.id'] === id &&
            a['tokenwarden.anomaly.kind'] === kind &&
            a['tokenwarden.anomaly.severity'] === severity,
        ),
      ).toBeGreaterThan(0);
    }
  });

  it('tells a timeout, an abort, a network error, a redirect error and a 503 apart in error.type', async () => {
    instrumentWarden(warden, { meterProvider: otel.provider });
    // Answers long after every signal of this test has fired.
    server.use(
      http.get(`${API}/slow`, async () => {
        await delay(2_000);
        return HttpResponse.json({ ok: true });
      }),
    );
    const credential = register();
    const aborted = (reason?: unknown) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(reason), 20);
      return controller.signal;
    };

    expect((await credential.fetch(`${API}/boom`)).status).toBe(503);
    await expect(credential.fetch(`${API}/down`)).rejects.toThrow(TypeError);
    await expect(
      credential.fetch(`${API}/slow`, { signal: AbortSignal.timeout(20) }),
    ).rejects.toMatchObject({ name: 'TimeoutError' });
    await expect(credential.fetch(`${API}/slow`, { signal: aborted() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    await expect(credential.fetch(`${API}/slow`, { signal: aborted('gone') })).rejects.toBe('gone');
    await expect(credential.fetch(`${API}/redirect`, { redirect: 'error' })).rejects.toMatchObject({
      code: 'ERR_REDIRECT',
    });
    // ky enforces its timeout by aborting without a reason: the request sees an AbortError.
    await expect(credential.ky({ timeout: 20, retry: 0 }).get(`${API}/slow`)).rejects.toMatchObject(
      { name: 'TimeoutError' },
    );

    const { metrics: collected } = await otel.collect();
    const requests = points(collected, METRIC_NAMES.httpClientRequestDuration);
    const byErrorType = new Map<unknown, number>();
    for (const { attributes, value } of requests) {
      const type = attributes['error.type'];
      byErrorType.set(type, (byErrorType.get(type) ?? 0) + value);
    }
    expect(Object.fromEntries(byErrorType)).toEqual({
      '503': 1,
      TypeError: 1,
      timeout: 1,
      AbortError: 2,
      _OTHER: 1,
      ERR_REDIRECT: 1,
    });
    // Only the 503 came with a response.
    expect(
      requests
        .filter((p) => p.attributes['http.response.status_code'] !== undefined)
        .map((p) => [p.attributes['http.response.status_code'], p.attributes['error.type']]),
    ).toEqual([[503, '503']]);
    // The review's case: a timeout, a network error and a 503 are three different series.
    const distinct = new Set(['timeout', 'TypeError', '503'].filter((t) => byErrorType.has(t)));
    expect(distinct.size).toBe(3);
  });

  it('records revocations by outcome', async () => {
    instrumentWarden(warden, { meterProvider: otel.provider });
    const credential = register();
    await credential.getToken();
    const { outcome } = await credential.revoke();
    const { metrics: collected } = await otel.collect();
    expect(points(collected, METRIC_NAMES.revocations)).toEqual([
      {
        attributes: {
          'tokenwarden.credential.id': 'api',
          'tokenwarden.revocation.outcome': outcome,
        },
        value: 1,
      },
    ]);
  });

  it('never exports a token, in any form', async () => {
    instrumentWarden(warden, { meterProvider: otel.provider });
    await traffic(register());
    const { exported } = await otel.collect();
    expect(exported.length).toBeGreaterThan(0);
    const secrets = [...minted, SENTINEL.accessToken];
    expect(minted.length).toBeGreaterThanOrEqual(2);
    expect(findLeaks([exported], secrets)).toEqual([]);
    // The search itself finds a token placed in the exported data.
    const planted = structuredClone(exported);
    const first = planted[0]?.scopeMetrics[0]?.metrics[0]?.dataPoints[0];
    if (first) (first.attributes as Attributes).leak = minted[0];
    expect(findLeaks([planted], secrets)).not.toEqual([]);
  });

  it('stops recording at close(), and close() is idempotent', async () => {
    const instrumentation = instrumentWarden(warden, { meterProvider: otel.provider });
    const credential = register();
    await credential.fetch(`${API}/ok`);
    instrumentation.close();
    instrumentation.close();
    await credential.fetch(`${API}/ok`);
    await credential.getToken({ forceRefresh: true });
    await expect(credential.fetch(`${FOREIGN}/x`)).rejects.toThrow();
    const { metrics: collected } = await otel.collect();
    expect(total(points(collected, METRIC_NAMES.httpClientRequestDuration))).toBe(1);
    expect(total(points(collected, METRIC_NAMES.refreshes))).toBe(1);
    expect(total(points(collected, METRIC_NAMES.blockedRequests))).toBe(0);
    expect(warden.metrics().credentials.api?.requests).toBe(2);
  });

  it('records through the global meter provider by default, scoped "tokenwarden"', async () => {
    metrics.setGlobalMeterProvider(otel.provider);
    try {
      instrumentWarden(warden);
      await register().fetch(`${API}/ok`);
    } finally {
      metrics.disable();
    }
    const { exported } = await otel.collect();
    const scopes = exported.flatMap((resource) => resource.scopeMetrics.map((s) => s.scope));
    expect(scopes).toEqual([{ name: 'tokenwarden', version: VERSION, schemaUrl: undefined }]);
    const version = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    );
    expect(VERSION).toBe(version.version);
  });

  it('uses a given meter', async () => {
    const meter = otel.provider.getMeter('my-app');
    instrumentWarden(warden, { meter });
    await register().fetch(`${API}/ok`);
    const { exported } = await otel.collect();
    expect(exported[0]?.scopeMetrics.map((s) => s.scope.name)).toEqual(['my-app']);
  });
});

describe('instrumentWarden() attributes', () => {
  let otel: ReturnType<typeof sdk>;
  beforeEach(() => {
    otel = sdk();
  });
  afterEach(() => otel.shutdown());

  /** A stand-in warden that hands its observer to the test. */
  function fake() {
    const observers = new Set<WardenObserver>();
    return {
      observe(observer: WardenObserver) {
        observers.add(observer);
        return () => observers.delete(observer);
      },
      observers,
      request(record: Parameters<NonNullable<WardenObserver['request']>>[0]) {
        for (const observer of observers) observer.request?.(record);
      },
      event<K extends keyof WardenEvents>(name: K, payload: WardenEvents[K][0]) {
        for (const observer of observers) observer.event?.(name, payload);
      },
    };
  }

  const record = (
    origin: string,
    extra: { id?: string; method?: string; status?: number; error?: string } = {},
  ) => ({
    id: 'api',
    method: 'GET',
    origin,
    status: 200,
    durationMs: 12,
    retried: false,
    ...extra,
  });

  it('derives error.type from the status, then from what the request failed with', async () => {
    const warden = fake();
    instrumentWarden(warden, { meterProvider: otel.provider });
    const cases: [{ status?: number; error?: string }, string | undefined][] = [
      [{ status: 200 }, undefined],
      [{ status: 302 }, undefined],
      [{ status: 404 }, '404'],
      [{ status: 503 }, '503'],
      // A status of 400 or more wins: the request got its answer, then the call failed.
      [{ status: 401, error: 'ERR_REAUTH_REQUIRED' }, '401'],
      [{ status: 0, error: 'TimeoutError' }, 'timeout'],
      [{ status: 0, error: 'ERR_TIMEOUT' }, 'timeout'],
      [{ status: 0, error: 'ERR_ABORTED' }, 'ERR_ABORTED'],
      [{ status: 0, error: 'ERR_NETWORK' }, 'ERR_NETWORK'],
      [{ status: 0, error: 'ERR_REDIRECT' }, 'ERR_REDIRECT'],
      [{ status: 0, error: 'AbortError' }, 'AbortError'],
      [{ status: 0, error: 'TypeError' }, 'TypeError'],
      [{ status: 200, error: 'ERR_TOKEN_IN_URL' }, 'ERR_TOKEN_IN_URL'],
      // A thrown non-error, a name that is no identifier, no cause known at all.
      [{ status: 0, error: 'string' }, '_OTHER'],
      [{ status: 0, error: 'object' }, '_OTHER'],
      [{ status: 0, error: `Bad name ${SENTINEL.accessToken}` }, '_OTHER'],
      [{ status: 0, error: 'E'.repeat(65) }, '_OTHER'],
      [{ status: 0 }, '_OTHER'],
    ];
    for (const [index, [extra]] of cases.entries()) {
      warden.request(record(API, { ...extra, id: `case-${index}` }));
    }
    const { metrics: collected } = await otel.collect();
    const requests = points(collected, METRIC_NAMES.httpClientRequestDuration);
    for (const [index, [extra, expected]] of cases.entries()) {
      const point = requests.find(
        (p) => p.attributes['tokenwarden.credential.id'] === `case-${index}`,
      );
      expect(point?.attributes['error.type'], JSON.stringify(extra)).toBe(expected);
    }
  });

  it('records tamper, reauth-required and anomaly events with bounded labels', async () => {
    const warden = fake();
    instrumentWarden(warden, { meterProvider: otel.provider });
    warden.event('tamper', { id: 'api', store: 'redis' });
    warden.event('tamper', { id: 'api', store: `custom ${'x'.repeat(100)}` });
    warden.event('reauth-required', { id: 'api', error: 'invalid_grant' });
    warden.event('reauth-required', { id: 'api', error: SENTINEL.accessToken.repeat(3) });
    warden.event('anomaly', {
      id: 'api',
      kind: 'rate-spike',
      severity: 'warning',
      evidence: { count: 987_654_321 },
    });
    const { metrics: collected, exported } = await otel.collect();
    expect(points(collected, METRIC_NAMES.tamperedRecords).map((p) => p.attributes)).toEqual([
      { 'tokenwarden.credential.id': 'api', 'tokenwarden.store.kind': 'redis' },
      { 'tokenwarden.credential.id': 'api', 'tokenwarden.store.kind': '_OTHER' },
    ]);
    expect(points(collected, METRIC_NAMES.reauthRequired).map((p) => p.attributes)).toEqual([
      { 'tokenwarden.credential.id': 'api', 'error.type': 'invalid_grant' },
      { 'tokenwarden.credential.id': 'api', 'error.type': '_OTHER' },
    ]);
    expect(points(collected, METRIC_NAMES.anomalies)).toEqual([
      {
        attributes: {
          'tokenwarden.credential.id': 'api',
          'tokenwarden.anomaly.kind': 'rate-spike',
          'tokenwarden.anomaly.severity': 'warning',
        },
        value: 1,
      },
    ]);
    // Evidence is not recorded.
    expect(JSON.stringify(exported)).not.toContain('987654321');
    expect(findLeaks([exported], [SENTINEL.accessToken])).toEqual([]);
  });

  it('counts store errors of a real warden by store, operation and code', async () => {
    const inner = memoryStore();
    const store: TokenStore = {
      ...inner,
      kind: 'flaky',
      get: async () => {
        throw new TokenWardenError('ERR_STORE_UNAVAILABLE', 'the store did not answer');
      },
    };
    const warden = createWarden({ store });
    instrumentWarden(warden, { meterProvider: otel.provider });
    const cred = warden.register('api', {
      source: customSource(async () => ({ accessToken: SENTINEL.accessToken, expiresIn: 300 })),
      origins: [API],
    });
    await cred.getToken().catch(() => {});
    const { metrics: collected, exported } = await otel.collect();
    const errors = points(collected, METRIC_NAMES.storeErrors);
    expect(errors.map((p) => p.attributes)).toEqual([
      {
        'tokenwarden.credential.id': 'api',
        'tokenwarden.store.kind': 'flaky',
        'tokenwarden.store.operation': 'read',
        'error.type': 'ERR_STORE_UNAVAILABLE',
      },
    ]);
    expect(errors[0]?.value).toBeGreaterThanOrEqual(1);
    expect(findLeaks([exported], [SENTINEL.accessToken])).toEqual([]);
    await warden.close();
  });

  it('leaves the credential id out, or maps it', async () => {
    const omitted = fake();
    instrumentWarden(omitted, { meterProvider: otel.provider, credentialId: false });
    omitted.request(record(API, { id: 'a' }));
    omitted.request(record(API, { id: 'b' }));
    let { metrics: collected } = await otel.collect();
    let requests = points(collected, METRIC_NAMES.httpClientRequestDuration);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.value).toBe(2);
    expect(requests[0]?.attributes).not.toHaveProperty('tokenwarden.credential.id');

    const other = sdk();
    try {
      const mapped = fake();
      instrumentWarden(mapped, {
        meterProvider: other.provider,
        credentialId: (id) => (id.startsWith('user:') ? 'users' : undefined),
      });
      for (const id of ['user:1', 'user:2', 'user:3', 'service'])
        mapped.request(record(API, { id }));
      mapped.event('refresh', {
        id: 'user:9',
        reason: 'initial',
        expiresAt: Date.now() + 1_000,
        rotated: true,
        durationMs: 30,
      });
      ({ metrics: collected } = await other.collect());
      requests = points(collected, METRIC_NAMES.httpClientRequestDuration);
      expect(requests.map((p) => [p.attributes['tokenwarden.credential.id'], p.value])).toEqual([
        ['users', 3],
        [undefined, 1],
      ]);
      expect(points(collected, METRIC_NAMES.refreshes)).toEqual([
        {
          attributes: {
            'tokenwarden.credential.id': 'users',
            'tokenwarden.refresh.reason': 'initial',
            'tokenwarden.refresh.rotated': true,
          },
          value: 1,
        },
      ]);
      const duration = points(collected, METRIC_NAMES.refreshDuration)[0]?.histogram;
      expect(duration?.sum).toBeCloseTo(0.03);
    } finally {
      await other.shutdown();
    }
  });

  it('caps distinct origins, parses ports and IPv6, and normalises methods', async () => {
    const warden = fake();
    instrumentWarden(warden, { meterProvider: otel.provider, maxOrigins: 3 });
    warden.request(record('https://a.example.test'));
    warden.request(record('http://b.example.test'));
    warden.request(record('https://[::1]:9443', { method: 'get' }));
    warden.request(record('https://d.example.test', { method: 'QUERY' }));
    warden.request(record('https://e.example.test', { method: 'DELETE' }));
    warden.request(record('https://a.example.test', { method: 'PATCH' }));
    const { metrics: collected } = await otel.collect();
    const seen = points(collected, METRIC_NAMES.httpClientRequestDuration).map((p) => {
      const {
        'tokenwarden.credential.id': _,
        'http.response.status_code': __,
        ...rest
      } = p.attributes;
      return rest;
    });
    expect(seen).toEqual([
      {
        'http.request.method': 'GET',
        'server.address': 'a.example.test',
        'server.port': 443,
        'url.scheme': 'https',
      },
      {
        'http.request.method': 'GET',
        'server.address': 'b.example.test',
        'server.port': 80,
        'url.scheme': 'http',
      },
      {
        'http.request.method': '_OTHER',
        'server.address': '::1',
        'server.port': 9443,
        'url.scheme': 'https',
      },
      { 'http.request.method': '_OTHER', 'server.address': '_OTHER' },
      { 'http.request.method': 'DELETE', 'server.address': '_OTHER' },
      {
        'http.request.method': 'PATCH',
        'server.address': 'a.example.test',
        'server.port': 443,
        'url.scheme': 'https',
      },
    ]);
  });

  it('rejects bad arguments with ERR_INVALID_ARGUMENT', () => {
    const warden = fake();
    const bad: [unknown, unknown][] = [
      [null, {}],
      [{}, {}],
      [warden, null],
      [warden, { credentialId: 'yes' }],
      [warden, { maxOrigins: -1 }],
      [warden, { maxOrigins: 1.5 }],
      [warden, { meter: {} }],
      [warden, { meterProvider: null }],
    ];
    for (const [target, options] of bad) {
      expect(() => instrumentWarden(target as never, options as never)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', name: 'InvalidArgumentError' }),
      );
    }
    expect(warden.observers.size).toBe(0);
  });

  it('refuses a closed warden', async () => {
    const warden = createWarden();
    await warden.close();
    expect(() => instrumentWarden(warden, { meterProvider: otel.provider })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});
