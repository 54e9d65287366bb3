import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { customFetch, customSource, type MetricsSnapshot } from '../../src/index.js';
import {
  Histogram,
  LATENCY_LAYOUT,
  MAX_ORIGINS,
  MetricsRecorder,
  OTHER_ORIGINS,
} from '../../src/observe/metrics.js';
import type { RequestOutcome } from '../../src/transport/types.js';
import { createWarden, type Warden } from '../../src/warden.js';
import { mulberry32 } from '../support/random.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const API = 'https://api.example.test';
const OTHER = 'https://other.example.test';
const FOREIGN = 'https://foreign.example.test';

/** Relative error bound of the latency histogram: half a bucket of 2^(1/8), geometrically. */
const BUCKET_ERROR = 2 ** (1 / 16) - 1;

/** Tokens the API accepts. */
const accepted = new Set<string>();

const server = setupServer(
  http.all(`${API}/*`, async ({ request }) => {
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
    if (path === '/boom') return new HttpResponse(null, { status: 500 });
    if (path === '/down') return HttpResponse.error();
    if (path === '/slow') await delay(80);
    return HttpResponse.json({ ok: true });
  }),
  http.all(`${OTHER}/*`, () => HttpResponse.json({ ok: true })),
  http.all(`${FOREIGN}/*`, () => HttpResponse.json({ ok: true })),
);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

function nearestRank(sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

function outcome(origin: string, status: number, durationMs = 1, retried = false): RequestOutcome {
  return { method: 'GET', origin, status, durationMs, retried, authenticated: true };
}

describe('latency histogram', () => {
  it('keeps p50/p95/p99 within the bucket error of a known distribution, max exact', () => {
    const random = mulberry32(42);
    const histogram = new Histogram(LATENCY_LAYOUT);
    const values: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      // Log-uniform between 1 ms and 5 s, plus a slow tail between 5 s and 30 s.
      const value = i % 50 === 0 ? 5_000 + random() * 25_000 : 2 ** (random() * Math.log2(5_000));
      values.push(value);
      histogram.record(value);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.95, 0.99, 0.999]) {
      const truth = nearestRank(values, q);
      const estimate = histogram.quantile(q);
      expect(Math.abs(estimate / truth - 1)).toBeLessThanOrEqual(BUCKET_ERROR);
    }
    expect(histogram.max).toBe(values.at(-1));
    expect(histogram.count).toBe(20_000);
  });

  it('is exact for a constant, bounded below 0.5 ms, and reports max above 60 s', () => {
    const constant = new Histogram(LATENCY_LAYOUT);
    for (let i = 0; i < 100; i++) constant.record(42);
    expect(constant.quantile(0.5)).toBe(42);
    expect(constant.quantile(0.99)).toBe(42);

    const tiny = new Histogram(LATENCY_LAYOUT);
    for (const value of [0, 0.1, 0.2, 0.3]) tiny.record(value);
    expect(Math.abs(tiny.quantile(0.5) - 0.1)).toBeLessThanOrEqual(0.5);

    const huge = new Histogram(LATENCY_LAYOUT);
    for (const value of [90_000, 120_000, 150_000]) huge.record(value);
    expect(huge.quantile(0.99)).toBe(150_000);
    expect(huge.quantile(0.5)).toBe(150_000);
  });

  it('has a fixed number of buckets between 0.5 ms and 60 s', () => {
    expect(LATENCY_LAYOUT.base).toBe(0.5);
    expect(
      LATENCY_LAYOUT.base * 2 ** (LATENCY_LAYOUT.n / LATENCY_LAYOUT.perOctave),
    ).toBeGreaterThan(60_000);
    expect(LATENCY_LAYOUT.n + 2).toBe(137);
  });
});

describe('metrics recorder', () => {
  it('summarises the snapshot latency and token age within the bucket error', () => {
    const recorder = new MetricsRecorder();
    const issuedAt = Date.now() - 3_600_000;
    for (let i = 1; i <= 1_000; i++) recorder.observe('a', outcome(API, 200, i), issuedAt);
    const a = recorder.snapshot().credentials.a;
    expect(a?.latencyMs.count).toBe(1_000);
    expect(Math.abs((a?.latencyMs.p50 ?? 0) / 500 - 1)).toBeLessThanOrEqual(BUCKET_ERROR + 1e-3);
    expect(Math.abs((a?.latencyMs.p95 ?? 0) / 950 - 1)).toBeLessThanOrEqual(BUCKET_ERROR + 1e-3);
    expect(Math.abs((a?.latencyMs.p99 ?? 0) / 990 - 1)).toBeLessThanOrEqual(BUCKET_ERROR + 1e-3);
    expect(a?.latencyMs.max).toBe(1_000);
    expect(Math.abs((a?.tokenAgeMs.p50 ?? 0) / 3_600_000 - 1)).toBeLessThan(2 ** (1 / 8) - 1);
    expect(a?.tokenAgeMs.max).toBeGreaterThanOrEqual(3_600_000);
  });

  it('caps origins per credential and adds the rest up under "(other)"', () => {
    const recorder = new MetricsRecorder();
    for (let i = 0; i < 1_000; i++) {
      for (let j = 0; j < 10; j++) {
        recorder.observe('a', outcome(`https://h${i}.example.test`, 200, 5), undefined);
      }
    }
    expect(recorder.size()).toEqual({ credentials: 1, origins: MAX_ORIGINS + 1 });
    const a = recorder.snapshot().credentials.a;
    expect(Object.keys(a?.origins ?? {})).toHaveLength(MAX_ORIGINS + 1);
    expect(a?.origins['https://h0.example.test']?.requests).toBe(10);
    expect(a?.origins[OTHER_ORIGINS]?.requests).toBe((1_000 - MAX_ORIGINS) * 10);
    expect(a?.requests).toBe(10_000);
    // Known origins keep their own series after the cap is reached.
    recorder.observe('a', outcome('https://h1.example.test', 500, 5), undefined);
    expect(
      recorder.snapshot().credentials.a?.origins['https://h1.example.test']?.serverErrors,
    ).toBe(1);
    expect(JSON.stringify(recorder.snapshot()).length).toBeLessThan(50_000);
  });

  it('treats an id such as __proto__ as an ordinary key', () => {
    const recorder = new MetricsRecorder();
    recorder.observe('__proto__', outcome(API, 200), undefined);
    const snapshot = recorder.snapshot();
    expect(Object.keys(snapshot.credentials)).toEqual(['__proto__']);
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
  });
});

describe('warden.metrics()', () => {
  let warden: Warden;
  let minted: string[];
  beforeEach(() => {
    warden = createWarden();
    minted = [];
    accepted.clear();
  });
  afterEach(() => warden.close());

  function register(id = 'api', extra: { foreignOrigin?: 'block' | 'send-without-token' } = {}) {
    return warden.register(id, {
      source: customSource(async () => {
        const token = `${SENTINEL.accessToken}-${minted.length + 1}`;
        minted.push(token);
        accepted.add(token);
        return { accessToken: token, expiresIn: 3600 };
      }),
      origins: [API, OTHER],
      ...extra,
    });
  }

  it('counts every outcome, by status class, 401 retry, blocked and origin', async () => {
    const credential = register();
    expect(warden.metrics().credentials.api?.requests).toBe(0);

    expect((await credential.fetch(`${API}/ok`)).status).toBe(200);
    expect((await credential.fetch(`${API}/ok?page=2`)).status).toBe(200);
    expect((await credential.fetch(`${API}/redirect`)).status).toBe(200);
    const manual = await credential.fetch(`${API}/redirect`, { redirect: 'manual' });
    expect(manual.status).toBe(302);
    expect((await credential.fetch(`${API}/missing`)).status).toBe(404);
    expect((await credential.fetch(`${API}/forbidden`)).status).toBe(403);
    expect((await credential.fetch(`${API}/boom`)).status).toBe(500);
    await expect(credential.fetch(`${API}/down`)).rejects.toThrow();
    accepted.clear(); // the token is revoked server-side: 401, forced refresh, retry
    expect((await credential.fetch(`${API}/ok`)).status).toBe(200);
    expect((await credential.fetch(`${OTHER}/x`)).status).toBe(200);
    await expect(credential.fetch(`${FOREIGN}/x`)).rejects.toMatchObject({
      code: 'ERR_ORIGIN_NOT_ALLOWED',
    });
    await expect(credential.fetch(`${API}/ok?t=${minted.at(-1)}`)).rejects.toMatchObject({
      code: 'ERR_TOKEN_IN_URL',
    });

    const snapshot = warden.metrics();
    const api = snapshot.credentials.api;
    expect(api).toMatchObject({
      requests: 10,
      ok: 5,
      redirects: 1,
      clientErrors: 2,
      serverErrors: 1,
      networkErrors: 1,
      unauthorized: 0,
      forbidden: 1,
      retriedAfter401: 1,
      blocked: 2,
      refreshes: { initial: 1, proactive: 0, forced: 1, scheduled: 0, shared: 0, failed: 0 },
    });
    expect(api?.latencyMs.count).toBe(10);
    expect(api?.lastUsedAt).toBeGreaterThan(0);
    expect(Object.keys(api?.origins ?? {}).sort()).toEqual([API, OTHER]);
    expect(api?.origins[API]).toMatchObject({
      requests: 9,
      ok: 4,
      clientErrors: 2,
      serverErrors: 1,
      networkErrors: 1,
    });
    expect(api?.origins[API]?.latencyMs.count).toBe(9);
    expect(api?.origins[OTHER]).toMatchObject({ requests: 1, ok: 1 });
    expect(snapshot.at).toBeGreaterThan(0);
  });

  it('counts a final 401 and a request sent without the token', async () => {
    const credential = register('api', { foreignOrigin: 'send-without-token' });
    await credential.getToken();
    // Every token is refused: the retry gets a 401 as well.
    server.use(
      http.all(
        `${API}/*`,
        () =>
          new HttpResponse(null, {
            status: 401,
            headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
          }),
        { once: false },
      ),
    );
    try {
      expect((await credential.fetch(`${API}/ok`)).status).toBe(401);
    } finally {
      server.resetHandlers();
    }
    expect((await credential.fetch(`${FOREIGN}/x`)).status).toBe(200);
    const api = warden.metrics().credentials.api;
    expect(api).toMatchObject({ requests: 1, unauthorized: 1, clientErrors: 1, blocked: 1 });
    expect(api?.refreshes).toMatchObject({ initial: 1, forced: 1 });
    expect(Object.keys(api?.origins ?? {})).toEqual([API]);
  });

  it('counts forced and failed refreshes', async () => {
    const credential = register();
    await credential.getToken();
    await credential.getToken({ forceRefresh: true });
    const broken = warden.register('broken', {
      source: customSource(async () => {
        throw new Error('the token service is down');
      }),
      origins: [API],
    });
    await expect(broken.fetch(`${API}/ok`)).rejects.toThrow();
    const { credentials } = warden.metrics();
    expect(credentials.api?.refreshes).toEqual({
      initial: 1,
      proactive: 0,
      forced: 1,
      scheduled: 0,
      shared: 0,
      failed: 0,
    });
    expect(credentials.broken?.refreshes.failed).toBeGreaterThanOrEqual(1);
    expect(credentials.broken?.requests).toBe(0);
  });

  it('measures latency through the network within the bucket error (msw delay)', async () => {
    const credential = register();
    await credential.getToken();
    for (let i = 0; i < 4; i++) await credential.fetch(`${API}/slow`);
    const { latencyMs } = warden.metrics().credentials.api ?? {};
    expect(latencyMs?.count).toBe(4);
    // Each request waited at least 80 ms at the server.
    expect(latencyMs?.p50).toBeGreaterThanOrEqual(80 / (1 + BUCKET_ERROR));
    expect(latencyMs?.max).toBeGreaterThanOrEqual(80);
    expect(latencyMs?.p99).toBeLessThanOrEqual(latencyMs?.max ?? 0);
    expect(latencyMs?.max).toBeLessThan(2_000);
  });

  it('is plain JSON and holds no token', async () => {
    const credential = register();
    await credential.fetch(`${API}/ok`);
    await credential.fetch(`${API}/ok?access_token=nothing-secret`);
    const snapshot: MetricsSnapshot = warden.metrics();
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
    expect(findLeaks([snapshot], [...minted, SENTINEL.accessToken])).toEqual([]);
    expect(JSON.stringify(snapshot)).not.toContain('?');
  });

  it('keeps a closed credential until warden.close(), which drops everything', async () => {
    const credential = register();
    await credential.fetch(`${API}/ok`);
    await credential.close();
    expect(warden.credentials()).toHaveLength(0);
    expect(warden.metrics().credentials.api?.requests).toBe(1);
    const again = register();
    await again.fetch(`${API}/ok`);
    expect(warden.metrics().credentials.api?.requests).toBe(2);
    await warden.close();
    expect(warden.metrics().credentials).toEqual({});
  });

  it('stays bounded with 100,000 distinct URLs on one origin', async () => {
    const bounded = createWarden({
      [customFetch]: async () => new Response(null, { status: 204 }),
    });
    try {
      const credential = bounded.register('bulk', {
        source: customSource(async () => ({ accessToken: SENTINEL.accessToken, expiresIn: 3600 })),
        origins: [API],
      });
      const before = JSON.stringify(bounded.metrics()).length;
      for (let i = 0; i < 100_000; i++) {
        await credential.fetch(`${API}/items/${i}?q=${i}`);
      }
      const snapshot = bounded.metrics();
      const bulk = snapshot.credentials.bulk;
      expect(bulk?.requests).toBe(100_000);
      expect(bulk?.ok).toBe(100_000);
      expect(Object.keys(bulk?.origins ?? {})).toEqual([API]);
      // Only the digits of the counters grow.
      expect(JSON.stringify(snapshot).length).toBeLessThan(before + 1_000);
      expect(JSON.stringify(snapshot)).not.toContain('/items/');
    } finally {
      await bounded.close();
    }
  }, 60_000);
});
