// Anomaly detection: each kind fires on its trigger, none on a steady workload with the defaults,
// and no anomaly event carries a token. Time is simulated by faking only `Date` (timers stay
// real), so an hour of traffic runs in seconds while the warden's own code is unchanged.
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type AnomalyEvent,
  clientCredentials,
  createWarden,
  customSource,
  type LogRecord,
  refreshToken,
  type Warden,
  type WardenOptions,
} from '../../src/index.js';
import { AnomalyDetector, anomalySettings } from '../../src/observe/anomaly.js';
import { clearDiscoveryCache } from '../../src/sources/discovery.js';
import type { RequestOutcome } from '../../src/transport/types.js';
import { mulberry32 } from '../support/random.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const ISSUER = 'https://auth.example.com';
const TOKEN = `${ISSUER}/oauth/token`;
const REVOKE = `${ISSUER}/oauth/revoke`;
const API = 'https://api.example.com';
const FOREIGN = 'https://foreign.example.net';
const SECRETS = Object.values(SENTINEL);

/** Access tokens the API accepts. */
const accepted = new Set<string>();

const server = setupServer(
  http.all(`${API}/*`, ({ request }) => {
    const path = new URL(request.url).pathname;
    const token = request.headers.get('authorization')?.replace(/^Bearer /, '') ?? '';
    if (!accepted.has(token)) {
      return new HttpResponse(null, {
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    if (path === '/forbidden') return new HttpResponse(null, { status: 403 });
    if (path === '/missing') return new HttpResponse(null, { status: 404 });
    if (path === '/boom') return new HttpResponse(null, { status: 500 });
    if (path === '/leave') return HttpResponse.redirect(`${FOREIGN}/landing`, 302);
    return HttpResponse.json({ ok: true });
  }),
  http.all(`${FOREIGN}/*`, () => HttpResponse.json({ ok: true })),
);
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  server.resetHandlers();
  clearDiscoveryCache();
  accepted.clear();
  vi.useRealTimers();
});
afterAll(() => server.close());

let warden: Warden | undefined;
afterEach(async () => {
  await warden?.close();
  warden = undefined;
});

/** A warden whose anomalies, events and logs are kept (for assertions and the leak scan). */
function newWarden(options: WardenOptions = {}) {
  const anomalies: AnomalyEvent[] = [];
  const logs: LogRecord[] = [];
  const events: unknown[] = [];
  warden = createWarden({ ...options, logger: (line) => logs.push(line) });
  warden.on('anomaly', (event) => anomalies.push(event));
  for (const name of [
    'refresh',
    'refresh-error',
    'reauth-required',
    'revoke',
    'blocked',
  ] as const) {
    warden.on(name, (event) => events.push(event));
  }
  return { warden, anomalies, logs, events };
}

/**
 * A token endpoint that issues sentinel access tokens (the API accepts them) and, for the
 * refresh grant, rotates the refresh token; `reject` makes it answer `invalid_grant`.
 */
function tokenEndpoint(lifetime = 300) {
  const state = { issued: 0, reject: false, fail: false };
  server.use(
    http.post(TOKEN, async ({ request }) => {
      const form = new URLSearchParams(await request.text());
      if (state.fail)
        return HttpResponse.json({ error: 'temporarily_unavailable' }, { status: 503 });
      if (state.reject) return HttpResponse.json({ error: 'invalid_grant' }, { status: 400 });
      state.issued++;
      const token = `${SENTINEL.accessToken}-${state.issued}`;
      accepted.add(token);
      return HttpResponse.json({
        access_token: token,
        token_type: 'Bearer',
        expires_in: lifetime,
        ...(form.get('grant_type') === 'refresh_token'
          ? { refresh_token: `${SENTINEL.refreshToken}-${state.issued}` }
          : {}),
      });
    }),
  );
  return state;
}

const oauth = { tokenEndpoint: TOKEN, revocationEndpoint: REVOKE, clientId: 'app' };

describe('the rate-spike detector (simulated clock)', () => {
  const outcome: RequestOutcome = {
    method: 'GET',
    origin: API,
    status: 200,
    durationMs: 5,
    retried: false,
    authenticated: true,
  };

  function detector(options: Parameters<typeof anomalySettings>[0] = {}) {
    let now = 1_000_000;
    const fired: AnomalyEvent[] = [];
    const settings = anomalySettings(options);
    if (!settings) throw new Error('unreachable');
    const d = new AnomalyDetector(
      settings,
      (event) => fired.push(event),
      () => now,
    );
    return {
      d,
      fired,
      /** `count` requests spread evenly over `ms`. */
      run(count: number, ms: number) {
        for (let i = 0; i < count; i++) {
          now += ms / count;
          d.request('api', outcome);
        }
      },
      advance(ms: number) {
        now += ms;
      },
    };
  }

  it('stays silent over a simulated day of noisy, diurnal traffic with the defaults', () => {
    const t = detector();
    const random = mulberry32(7);
    for (let window = 0; window < 8_640; window++) {
      // 20-120 requests per 10 s window, following a slow daily swing, ±40 % noise.
      const daily = 70 + 50 * Math.sin((window / 8_640) * 2 * Math.PI);
      t.run(Math.round(daily * (0.6 + 0.8 * random())), 10_000);
    }
    expect(t.fired).toEqual([]);
  });

  it('fires once when a window reaches factor × baseline, then learns the new level', () => {
    const t = detector();
    t.run(60 * 100, 60 * 10_000); // ten minutes at 100 per window
    expect(t.fired).toEqual([]);
    t.run(600, 5_000); // 600 in half a window: 6× the baseline
    expect(t.fired).toHaveLength(1);
    expect(t.fired[0]).toMatchObject({
      id: 'api',
      kind: 'rate-spike',
      severity: 'warning',
      evidence: { windowMs: 10_000, factor: 5, origin: API },
    });
    const evidence = (t.fired[0]?.evidence ?? {}) as Record<string, number>;
    const baseline = evidence.baseline ?? 0;
    const { requests, threshold } = evidence;
    expect(baseline).toBeGreaterThan(95);
    expect(baseline).toBeLessThan(105);
    expect(threshold).toBe(Math.ceil(5 * baseline));
    expect(requests).toBe(threshold);
    // The surge goes on: reported again after the cooldown, until the baseline has caught up.
    t.run(60 * 600, 60 * 10_000);
    const later = t.fired.length;
    expect(later).toBeGreaterThanOrEqual(1);
    t.run(60 * 600, 60 * 10_000);
    expect(t.fired.length).toBe(later);
  });

  it('learns before judging, ignores small counts, and counts idle windows in the baseline', () => {
    const t = detector();
    t.run(400, 10_000); // a burst in the very first window: nothing learned yet
    t.run(5 * 5, 5 * 10_000);
    expect(t.fired).toEqual([]);
    const quiet = detector();
    quiet.run(60 * 2, 60 * 10_000); // 2 per window
    quiet.run(45, 1_000); // over 20× the baseline, but under minRequests
    expect(quiet.fired).toEqual([]);
    quiet.advance(3_600_000); // an idle hour pulls the baseline to 0...
    quiet.run(50, 1_000); // ...so 50 at once is a spike
    expect(quiet.fired.map((e) => e.kind)).toEqual(['rate-spike']);
  });

  it('takes its thresholds from the options, and rateSpike: false turns it off', () => {
    const t = detector({ rateSpike: { window: '1s', factor: 2, minRequests: 10, warmup: 2 } });
    t.run(3 * 10, 3_000);
    t.run(25, 200);
    expect(t.fired).toHaveLength(1);
    expect(t.fired[0]?.evidence).toMatchObject({ windowMs: 1_000, factor: 2, threshold: 20 });
    const off = detector({ rateSpike: false });
    off.run(60 * 100, 60 * 10_000);
    off.run(5_000, 1_000);
    expect(off.fired).toEqual([]);
  });

  it('rates blocked plain-http requests as warnings (the transport refuses them)', () => {
    const t = detector();
    t.d.event('blocked', {
      id: 'api',
      reason: 'insecure-transport',
      url: 'http://api.example.com/x',
      action: 'refused',
    });
    expect(t.fired).toEqual([
      {
        id: 'api',
        kind: 'blocked-leak',
        severity: 'warning',
        evidence: {
          reason: 'insecure-transport',
          action: 'refused',
          url: 'http://api.example.com/x',
        },
      },
    ]);
  });

  it('rejects bad thresholds with a coded error', () => {
    for (const bad of [
      { rateSpike: { factor: 0 } },
      { rateSpike: { window: 'soon' } },
      { authFailures: { count: 1.5 } },
      { refreshFailures: { streak: -1 } },
      { cooldown: '0s' },
      { blockedLeak: 'yes' },
      { rateSpike: 'on' },
    ]) {
      expect(() => createWarden({ anomalies: bad as never }), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      );
    }
    expect(() => createWarden({ anomalies: 'none' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});

describe('anomaly events of a warden', () => {
  it('reports none for a steady half hour of traffic with refreshes, rotation and a few errors', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const endpoint = tokenEndpoint(120);
    const { warden, anomalies, events } = newWarden();
    const credential = warden.register('api', {
      source: refreshToken({ ...oauth, refreshToken: SENTINEL.refreshToken }),
      origins: [API],
    });
    const random = mulberry32(11);
    const statuses = new Map<number, number>();
    // About 4 requests a second for half an hour (7,200 requests), in bursts of varying size.
    for (let second = 0; second < 1_800; second += 2) {
      const burst = Math.round(8 * (0.5 + random()));
      for (let i = 0; i < burst; i++) {
        const roll = random();
        const path = roll < 0.01 ? 'missing' : roll < 0.012 ? 'boom' : `items/${i}`;
        const res = await credential.fetch(`${API}/${path}`);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
      vi.setSystemTime(Date.now() + 2_000);
    }
    await Promise.resolve();
    expect(anomalies).toEqual([]);
    // The workload really did refresh with rotation and saw errors.
    expect(endpoint.issued).toBeGreaterThan(10);
    expect(
      events.filter((e) => (e as { rotated?: boolean }).rotated === true).length,
    ).toBeGreaterThan(9);
    expect(statuses.get(404)).toBeGreaterThan(0);
    expect(statuses.get(500)).toBeGreaterThan(0);
    const figures = warden.metrics().credentials.api;
    expect(figures?.requests).toBeGreaterThan(7_000);
    // Then a surge: a tenth of a window (1 s) of 600 requests is far above the ~40 learned.
    for (let i = 0; i < 600; i++) await credential.fetch(`${API}/items/surge`);
    expect(anomalies.map((a) => a.kind)).toEqual(['rate-spike']);
    expect(anomalies[0]?.evidence).toMatchObject({ factor: 5, origin: API });
    // The learned baseline is the steady ~40 requests per 10 s window.
    expect(anomalies[0]?.evidence.baseline).toBeGreaterThan(30);
    expect(anomalies[0]?.evidence.baseline).toBeLessThan(50);
  }, 60_000);

  it('reports a burst of 401/403 responses once per cooldown', async () => {
    tokenEndpoint();
    const { warden, anomalies, logs } = newWarden({ anomalies: { authFailures: { count: 5 } } });
    const credential = warden.register('cc', { source: clientCredentials(oauth), origins: [API] });
    for (let i = 0; i < 3; i++)
      expect((await credential.fetch(`${API}/forbidden`)).status).toBe(403);
    // A token the server stopped accepting: 401, refresh, retry (counts as a 401 seen).
    accepted.clear();
    expect((await credential.fetch(`${API}/ok`)).status).toBe(200);
    expect(anomalies).toEqual([]);
    expect((await credential.fetch(`${API}/forbidden`)).status).toBe(403);
    expect(anomalies).toEqual([
      {
        id: 'cc',
        kind: 'auth-failures',
        severity: 'warning',
        evidence: { count: 5, windowMs: 60_000, threshold: 5, unauthorized: 1, forbidden: 4 },
      },
    ]);
    for (let i = 0; i < 10; i++) await credential.fetch(`${API}/forbidden`);
    expect(anomalies).toHaveLength(1); // within the cooldown
    expect(
      logs.some((l) => l.message === 'anomaly detected' && l.fields.kind === 'auth-failures'),
    ).toBe(true);
  });

  it('does not count 401/403 responses spread wider than the window', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    tokenEndpoint(86_400);
    const { warden, anomalies } = newWarden();
    const credential = warden.register('cc', { source: clientCredentials(oauth), origins: [API] });
    for (let i = 0; i < 30; i++) {
      await credential.fetch(`${API}/forbidden`);
      vi.setSystemTime(Date.now() + 7_000); // 9 per minute, under the default 10
    }
    expect(anomalies).toEqual([]);
  });

  it('reports every kind of blocked leak, with a severity by reason and no token', async () => {
    tokenEndpoint();
    const { warden, anomalies, events } = newWarden();
    const strict = warden.register('strict', { source: clientCredentials(oauth), origins: [API] });
    const lax = warden.register('lax', {
      source: clientCredentials(oauth),
      origins: [API],
      foreignOrigin: 'send-without-token',
    });
    await expect(strict.fetch(`${FOREIGN}/steal?x=1`)).rejects.toMatchObject({
      code: 'ERR_ORIGIN_NOT_ALLOWED',
    });
    // A redirect off the allowed origin is followed without the token.
    expect((await strict.fetch(`${API}/leave?to=x`)).status).toBe(200);
    const token = await strict.getToken();
    await expect(strict.fetch(`${API}/ok?access_token=${token.reveal()}`)).rejects.toMatchObject({
      code: 'ERR_TOKEN_IN_URL',
    });
    expect((await lax.fetch(`${FOREIGN}/open`)).status).toBe(200);
    expect(
      anomalies.map(({ id, kind, severity, evidence }) => ({ id, kind, severity, evidence })),
    ).toEqual([
      {
        id: 'strict',
        kind: 'blocked-leak',
        severity: 'warning',
        evidence: { reason: 'origin-not-allowed', action: 'refused', url: `${FOREIGN}/steal` },
      },
      {
        id: 'strict',
        kind: 'blocked-leak',
        severity: 'info',
        evidence: { reason: 'redirect', action: 'stripped', url: `${FOREIGN}/landing` },
      },
      {
        id: 'strict',
        kind: 'blocked-leak',
        severity: 'critical',
        evidence: { reason: 'token-in-url', action: 'refused', url: `${API}/ok` },
      },
      {
        id: 'lax',
        kind: 'blocked-leak',
        severity: 'info',
        evidence: { reason: 'origin-not-allowed', action: 'stripped', url: `${FOREIGN}/open` },
      },
    ]);
    // The same leak again within the cooldown is counted, not reported; after it, it is.
    await expect(strict.fetch(`${FOREIGN}/steal`)).rejects.toThrow();
    expect(anomalies).toHaveLength(4);
    expect(findLeaks([anomalies, events], SECRETS)).toEqual([]);
  });

  it('reports suppressed repeats once the cooldown has passed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    tokenEndpoint(86_400);
    const { warden, anomalies } = newWarden({ anomalies: { cooldown: '30s' } });
    const strict = warden.register('strict', { source: clientCredentials(oauth), origins: [API] });
    for (let i = 0; i < 4; i++) await expect(strict.fetch(`${FOREIGN}/x`)).rejects.toThrow();
    vi.setSystemTime(Date.now() + 31_000);
    await expect(strict.fetch(`${FOREIGN}/x`)).rejects.toThrow();
    expect(anomalies.map((a) => a.evidence.suppressed)).toEqual([undefined, 3]);
  });

  it('reports refresh-token reuse: invalid_grant on the first refresh after a rotation', async () => {
    const endpoint = tokenEndpoint();
    const { warden, anomalies, events } = newWarden();
    const credential = warden.register('rt', {
      source: refreshToken({ ...oauth, refreshToken: SENTINEL.refreshToken }),
      origins: [API],
    });
    await credential.getToken(); // redeems the configured refresh token: no rotation yet
    await credential.getToken({ forceRefresh: true }); // rotated: -1 replaced by -2
    expect(anomalies).toEqual([]);
    // A copy of the rotated token was redeemed elsewhere; the server revoked the grant.
    endpoint.reject = true;
    await expect(credential.getToken({ forceRefresh: true })).rejects.toMatchObject({
      code: 'ERR_REAUTH_REQUIRED',
    });
    expect(anomalies).toHaveLength(1);
    expect(anomalies[0]).toMatchObject({
      id: 'rt',
      kind: 'refresh-token-reuse',
      severity: 'critical',
      evidence: { error: 'invalid_grant' },
    });
    expect(anomalies[0]?.evidence.sinceRotationMs).toBeGreaterThanOrEqual(0);
    expect(findLeaks([anomalies, events], SECRETS)).toEqual([]);
  });

  it('does not call invalid_grant reuse when no rotation preceded it', async () => {
    const endpoint = tokenEndpoint();
    const { warden, anomalies } = newWarden();
    const credential = warden.register('rt', {
      source: refreshToken({ ...oauth, refreshToken: SENTINEL.refreshToken }),
      origins: [API],
    });
    endpoint.reject = true; // the configured token was already dead
    await expect(credential.getToken()).rejects.toMatchObject({ code: 'ERR_REAUTH_REQUIRED' });
    expect(anomalies).toEqual([]);
  });

  it('reports a streak of refresh failures once, critical when no valid token is left', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let calls = 0;
    const { warden, anomalies } = newWarden();
    const credential = warden.register('flaky', {
      source: customSource(async () => {
        calls++;
        throw new Error('upstream down');
      }),
      origins: [API],
    });
    for (let i = 0; i < 5; i++) {
      await expect(credential.getToken()).rejects.toThrow();
      vi.setSystemTime(Date.now() + 15 * 60_000); // past any backoff
    }
    expect(calls).toBe(5);
    expect(anomalies).toEqual([
      {
        id: 'flaky',
        kind: 'refresh-failures',
        severity: 'critical',
        evidence: {
          failures: 3,
          threshold: 3,
          code: 'ERR_SOURCE_FAILED',
          reason: 'initial',
          servingStale: false,
        },
      },
    ]);
  });

  it('reports the first use of a credential after it was revoked, once', async () => {
    tokenEndpoint();
    server.use(http.post(REVOKE, () => new HttpResponse(null, { status: 200 })));
    const { warden, anomalies } = newWarden();
    const credential = warden.register('cc', { source: clientCredentials(oauth), origins: [API] });
    expect((await credential.fetch(`${API}/ok`)).status).toBe(200);
    await credential.revoke();
    expect(anomalies).toEqual([]);
    expect((await credential.fetch(`${API}/ok`)).status).toBe(200); // fetches a new token
    expect((await credential.fetch(`${API}/ok`)).status).toBe(200);
    expect(anomalies).toHaveLength(1);
    expect(anomalies[0]).toMatchObject({ id: 'cc', kind: 'use-after-revoke', severity: 'warning' });
    expect(anomalies[0]?.evidence.sinceRevokeMs).toBeGreaterThanOrEqual(0);
    // getToken() counts as a use too.
    await credential.revoke();
    await credential.getToken();
    expect(anomalies.map((a) => a.kind)).toEqual(['use-after-revoke', 'use-after-revoke']);
  });

  it('stays silent when anomalies are turned off, all or one by one', async () => {
    tokenEndpoint();
    server.use(http.post(REVOKE, () => new HttpResponse(null, { status: 200 })));
    const all = newWarden({ anomalies: false });
    const credential = all.warden.register('cc', {
      source: clientCredentials(oauth),
      origins: [API],
    });
    await expect(credential.fetch(`${FOREIGN}/x`)).rejects.toThrow();
    await credential.revoke();
    await credential.fetch(`${API}/ok`);
    expect(all.anomalies).toEqual([]);
    await all.warden.close();
    const some = newWarden({ anomalies: { blockedLeak: false, useAfterRevoke: false } });
    const other = some.warden.register('cc', { source: clientCredentials(oauth), origins: [API] });
    await expect(other.fetch(`${FOREIGN}/x`)).rejects.toThrow();
    await other.revoke();
    await other.fetch(`${API}/ok`);
    expect(some.anomalies).toEqual([]);
  });

  it('passes anomalies to observers and counts nothing twice', async () => {
    tokenEndpoint();
    const { warden, anomalies } = newWarden();
    const seen: string[] = [];
    warden.observe({
      event: (name, payload) => name === 'anomaly' && seen.push((payload as AnomalyEvent).kind),
    });
    const credential = warden.register('cc', { source: clientCredentials(oauth), origins: [API] });
    await expect(credential.fetch(`${FOREIGN}/x`)).rejects.toThrow();
    expect(seen).toEqual(['blocked-leak']);
    expect(anomalies).toHaveLength(1);
  });
});
