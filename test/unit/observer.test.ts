// warden.observe(): every request record and event reaches each observer, in order, without a
// token; a throwing observer never breaks a request; the returned function detaches it.
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createWarden,
  customSource,
  type LogRecord,
  type RequestRecord,
  type Warden,
} from '../../src/index.js';
import { findLeaks, SENTINEL } from '../support/sentinel.js';

const API = 'https://api.example.com';

const server = setupServer(
  http.all(`${API}/*`, ({ request }) => {
    const path = new URL(request.url).pathname;
    if (path === '/missing') return new HttpResponse(null, { status: 404 });
    if (path === '/down') return HttpResponse.error();
    return HttpResponse.json({ ok: true });
  }),
);
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

let warden: Warden | undefined;
afterEach(async () => {
  await warden?.close();
  warden = undefined;
});

function setup() {
  const logs: LogRecord[] = [];
  warden = createWarden({ logger: (line) => logs.push(line) });
  const credential = warden.register('api', {
    source: customSource(async () => ({
      accessToken: SENTINEL.accessToken,
      expiresIn: 3600,
    })),
    origins: [API],
  });
  return { warden, credential, logs };
}

describe('warden.observe()', () => {
  it('passes a record of each request and every event, in order, with no token', async () => {
    const { warden, credential } = setup();
    const seen: Array<RequestRecord | { event: string; payload: unknown }> = [];
    warden.observe({
      request: (record) => seen.push(record),
      event: (event, payload) => seen.push({ event, payload }),
    });
    await credential.fetch(`${API}/items?page=2`, { method: 'POST', body: '{}' });
    await credential.fetch(`${API}/missing`);
    await expect(credential.fetch(`${API}/down`)).rejects.toThrow();
    await expect(credential.fetch('https://foreign.example.net/x')).rejects.toThrow();

    expect(seen.map((item) => ('event' in item ? item.event : item.status))).toEqual([
      'refresh',
      200,
      404,
      0,
      'blocked',
      'anomaly',
    ]);
    const first = seen[1] as RequestRecord;
    expect(first).toEqual({
      id: 'api',
      method: 'POST',
      origin: API,
      status: 200,
      durationMs: expect.any(Number),
      retried: false,
      tokenAgeMs: expect.any(Number),
    });
    expect(first.tokenAgeMs).toBeGreaterThanOrEqual(0);
    expect(first.tokenAgeMs).toBeLessThan(60_000);
    expect(JSON.stringify(seen)).not.toContain('page=2');
    expect(findLeaks(seen, Object.values(SENTINEL))).toEqual([]);
    // The observer sees what the snapshot counts.
    expect(warden.metrics().credentials.api).toMatchObject({ requests: 3, ok: 1, blocked: 1 });
  });

  it('survives a throwing observer, logs it, and stops after the returned function', async () => {
    const { warden, credential, logs } = setup();
    const calls: number[] = [];
    const stopThrowing = warden.observe({
      request() {
        throw new Error('observer bug');
      },
    });
    const stop = warden.observe({ request: ({ status }) => calls.push(status) });
    expect((await credential.fetch(`${API}/a`)).status).toBe(200);
    expect(calls).toEqual([200]);
    expect(logs.some((l) => l.level === 'error' && l.message === 'an observer threw')).toBe(true);
    stop();
    stopThrowing();
    await credential.fetch(`${API}/b`);
    expect(calls).toEqual([200]);
  });

  it('rejects a non-object observer and a closed warden with coded errors', async () => {
    const { warden } = setup();
    expect(() => warden.observe(null as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    await warden.close();
    expect(() => warden.observe({})).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });
});
