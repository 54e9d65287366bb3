// warden.metrics() against a real HTTP server on 127.0.0.1 (issue 5): the counts match the
// requests made, class by class (2xx, 404, 500, a refused connection, a 401 recovered by one
// retry), and p50/p95/p99 lie within the histogram's documented bucket error of the true
// quantiles.
//
// The SDK measures each call from inside credential.fetch, so its figure for a call is bounded
// below by the delay the server held the answer (the server re-arms its timer until that much
// time has passed on the clock the SDK reads) and above by the time this test measured around the
// call. Order statistics keep those bounds, so the true nearest-rank quantile of the recorded
// durations lies between the quantiles of the lower and of the upper bounds; the estimate is
// within a factor 2^(1/16) of it. No fixed time limit is asserted, so a loaded machine only
// widens the upper bounds the test compares against.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWarden, customSource, type LatencySummary, type Warden } from '../../src/index.js';
import { mulberry32 } from '../support/random.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

/** Relative error of a percentile, as documented on LatencySummary: half a bucket of 2^(1/8). */
const BUCKET = 2 ** (1 / 16);
/** The snapshot rounds figures to 3 decimals. */
const ROUNDING = 0.001;

function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

/** What the test asks of one request: the path (its status) and how long the server holds it. */
interface Plan {
  readonly path: '/ok' | '/missing' | '/boom' | '/refused' | '/revoked';
  readonly delayMs: number;
}

/** One call as the test saw it. */
interface Call {
  readonly plan: Plan;
  readonly status: number;
  /** The server's delay: a lower bound of the SDK's figure. */
  readonly lowerMs: number;
  /** Measured around `await credential.fetch()`: an upper bound of the SDK's figure. */
  readonly upperMs: number;
}

/**
 * 400 requests: 340 held 5 ms, 48 held 20 ms, 12 held 80 ms, shuffled with a fixed seed. Among
 * them 6 answer 404 and 4 answer 500 (after their delay), 3 go to a closed port, and one finds
 * its token revoked (401, a refresh, and the retry held 20 ms).
 */
function plans(): Plan[] {
  const delays = [
    ...Array<number>(340).fill(5),
    ...Array<number>(48).fill(20),
    ...Array<number>(12).fill(80),
  ];
  const random = mulberry32(20261129);
  for (let i = delays.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [delays[i], delays[j]] = [delays[j] as number, delays[i] as number];
  }
  const special = new Map<number, Plan['path']>([
    [17, '/missing'],
    [45, '/boom'],
    [61, '/refused'],
    [88, '/missing'],
    [120, '/revoked'],
    [150, '/boom'],
    [199, '/missing'],
    [233, '/refused'],
    [260, '/missing'],
    [301, '/boom'],
    [333, '/missing'],
    [360, '/refused'],
    [377, '/boom'],
    [391, '/missing'],
  ]);
  return delays.map((delayMs, i) => {
    const path = special.get(i) ?? '/ok';
    // A refused connection is never held; the revoked one is held on its retry.
    return { path, delayMs: path === '/refused' ? 0 : path === '/revoked' ? 20 : delayMs };
  });
}

describe('warden.metrics() against a loopback server', () => {
  let server: Server;
  let origin: string;
  /** An origin on 127.0.0.1 where nothing listens. */
  let closedOrigin: string;
  /** Tokens the server accepts; the credential's source adds each token it mints. */
  const accepted = new Set<string>();
  const minted: string[] = [];
  let warden: Warden | undefined;

  /** Answers after `?delay=` ms, measured on the clock the SDK reads (timers may fire early). */
  function handle(request: IncomingMessage, response: ServerResponse): void {
    const received = performance.now();
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const token = request.headers.authorization?.replace(/^Bearer /, '') ?? '';
    if (!accepted.has(token)) {
      response.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      return;
    }
    const delayMs = Number(url.searchParams.get('delay') ?? 0);
    const answer = () => {
      const left = delayMs - (performance.now() - received);
      if (left > 0) {
        setTimeout(answer, Math.ceil(left));
        return;
      }
      const status = url.pathname === '/missing' ? 404 : url.pathname === '/boom' ? 500 : 200;
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ status }));
    };
    answer();
  }

  beforeAll(async () => {
    server = createServer(handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Listen on a free port, then close it: connections to it are refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedOrigin = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  afterEach(async () => {
    await warden?.close();
    warden = undefined;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Asserts that a summary's percentiles lie within the bucket error of the bounds' quantiles. */
  function expectWithinBounds(summary: LatencySummary | undefined, calls: readonly Call[]): void {
    expect(summary?.count).toBe(calls.length);
    const seen: string[] = [];
    const lower = calls.map((c) => c.lowerMs);
    const upper = calls.map((c) => c.upperMs);
    for (const [q, key] of [
      [0.5, 'p50'],
      [0.95, 'p95'],
      [0.99, 'p99'],
    ] as const) {
      const estimate = summary?.[key] ?? Number.NaN;
      const low = nearestRank(lower, q);
      const high = nearestRank(upper, q);
      const context = `${key}: estimate ${estimate}, true quantile in [${low}, ${high.toFixed(3)}]`;
      seen.push(context);
      expect(estimate, context).toBeGreaterThanOrEqual(low / BUCKET - ROUNDING);
      expect(estimate, context).toBeLessThanOrEqual(high * BUCKET + ROUNDING);
    }
    // The maximum is exact, so it lies between the bounds themselves.
    expect(summary?.max).toBeGreaterThanOrEqual(Math.max(...lower) - ROUNDING);
    expect(summary?.max).toBeLessThanOrEqual(Math.max(...upper) + ROUNDING);
    console.info(`${calls.length} calls: ${seen.join('; ')}; max ${summary?.max}`);
  }

  it('counts 400 requests by class and keeps p50/p95/p99 within the bucket error', async () => {
    warden = createWarden();
    const credential = warden.register('api', {
      source: customSource(async () => {
        const token = `${SENTINEL.accessToken}-${minted.length + 1}`;
        minted.push(token);
        accepted.add(token);
        return { accessToken: token, expiresIn: 3600 };
      }),
      // Plain http is allowed to loopback hosts without any opt-out.
      origins: [origin, closedOrigin],
    });

    const calls: Call[] = [];
    const all = plans();
    for (const [i, plan] of all.entries()) {
      if (plan.path === '/revoked') accepted.clear(); // revoked at the server: 401, refresh, retry
      const target =
        plan.path === '/refused'
          ? `${closedOrigin}/ok?i=${i}`
          : `${origin}${plan.path === '/revoked' ? '/ok' : plan.path}?delay=${plan.delayMs}&i=${i}`;
      const started = performance.now();
      let status: number;
      try {
        const response = await credential.fetch(target);
        status = response.status;
        const ended = performance.now();
        await response.arrayBuffer();
        calls.push({ plan, status, lowerMs: plan.delayMs, upperMs: ended - started });
      } catch (error) {
        const ended = performance.now();
        expect(plan.path, String(error)).toBe('/refused');
        expect(error).toBeInstanceOf(TypeError);
        calls.push({ plan, status: 0, lowerMs: 0, upperMs: ended - started });
      }
    }

    const count = (path: Plan['path']) => all.filter((p) => p.path === path).length;
    expect(calls.filter((c) => c.status === 200)).toHaveLength(400 - 6 - 4 - 3);
    expect(calls.filter((c) => c.status === 404)).toHaveLength(count('/missing'));
    expect(calls.filter((c) => c.status === 500)).toHaveLength(count('/boom'));
    expect(calls.filter((c) => c.status === 0)).toHaveLength(count('/refused'));

    const snapshot = warden.metrics();
    const api = snapshot.credentials.api;
    expect(api).toMatchObject({
      requests: 400,
      ok: 387,
      redirects: 0,
      clientErrors: 6,
      serverErrors: 4,
      networkErrors: 3,
      unauthorized: 0,
      forbidden: 0,
      retriedAfter401: 1,
      blocked: 0,
      refreshes: { initial: 1, proactive: 0, forced: 1, scheduled: 0, shared: 0, failed: 0 },
    });
    expect(minted).toHaveLength(2);
    expect(Object.keys(api?.origins ?? {}).sort()).toEqual([origin, closedOrigin].sort());
    expect(api?.origins[origin]).toMatchObject({
      requests: 397,
      ok: 387,
      clientErrors: 6,
      serverErrors: 4,
      networkErrors: 0,
    });
    expect(api?.origins[closedOrigin]).toMatchObject({
      requests: 3,
      ok: 0,
      clientErrors: 0,
      serverErrors: 0,
      networkErrors: 3,
    });

    // The distribution the server set: p50 5 ms, p95 20 ms, p99 80 ms.
    const lower = calls.map((c) => c.lowerMs);
    expect([0.5, 0.95, 0.99].map((q) => nearestRank(lower, q))).toEqual([5, 20, 80]);
    expectWithinBounds(api?.latencyMs, calls);
    expectWithinBounds(
      api?.origins[origin]?.latencyMs,
      calls.filter((c) => c.plan.path !== '/refused'),
    );
    expectWithinBounds(
      api?.origins[closedOrigin]?.latencyMs,
      calls.filter((c) => c.plan.path === '/refused'),
    );

    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
    expect(findLeaks([snapshot], minted)).toEqual([]);
    expect(JSON.stringify(snapshot)).not.toMatch(/delay=|\/ok|\/missing|\/boom/);
  }, 60_000);
});
