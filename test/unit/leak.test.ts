import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apiKey,
  clientCredentials,
  createWarden,
  type LogRecord,
  refreshToken,
} from '../../src/index.js';
import { encodings, findLeaks, SENTINEL } from '../support/sentinel.js';

const AUTH = 'https://auth.example.test';
const API = 'https://api.example.test';
const EVIL = 'https://evil.example.test';

/** Everything a foreign server received, in full. */
const foreign: { url: string; headers: [string, string][]; body: string }[] = [];
/** Every request the allowed API received. */
const api: { url: string; headers: Headers; body: string }[] = [];
let issued = 0;

const server = setupServer(
  http.post(`${AUTH}/token`, async ({ request }) => {
    const form = new URLSearchParams(await request.text());
    if (form.get('grant_type') === 'refresh_token') {
      return HttpResponse.json(
        { error: 'invalid_grant', error_description: 'refresh token reused' },
        { status: 400 },
      );
    }
    issued++;
    return HttpResponse.json({
      access_token: `${SENTINEL.accessToken}${issued}`,
      token_type: 'Bearer',
      expires_in: 3600,
    });
  }),
  http.all(`${API}/*`, async ({ request }) => {
    const url = new URL(request.url);
    api.push({ url: request.url, headers: request.headers, body: await request.text() });
    if (url.pathname === '/expire' && request.headers.get('authorization')?.endsWith('1')) {
      return new HttpResponse(null, {
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      });
    }
    if (url.pathname === '/to-evil') {
      return new HttpResponse(null, { status: 302, headers: { location: `${EVIL}/collect` } });
    }
    return HttpResponse.json({ ok: true });
  }),
  http.all(`${EVIL}/*`, async ({ request }) => {
    foreign.push({
      url: request.url,
      headers: [...request.headers.entries()],
      body: await request.text(),
    });
    return HttpResponse.json({ stolen: false });
  }),
);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

describe('sentinel leak scan', () => {
  it('the scanner itself finds secrets in every encoding', () => {
    const secret = SENTINEL.clientSecret;
    const basic = `Basic ${btoa(`id:${encodeURIComponent(secret)}`)}`;
    expect(findLeaks([new Error(`x ${secret}`)], [secret])).not.toHaveLength(0);
    expect(
      findLeaks([{ url: `https://x/?t=${encodeURIComponent(secret)}` }], [secret]),
    ).not.toHaveLength(0);
    expect(findLeaks([Buffer.from(secret).toString('base64url')], [secret])).not.toHaveLength(0);
    expect(findLeaks([basic], [encodeURIComponent(secret)])).not.toHaveLength(0);
    expect(
      findLeaks([new Error('outer', { cause: { nested: secret } })], [secret]),
    ).not.toHaveLength(0);
    expect(encodings(secret).length).toBeGreaterThan(4);
  });

  it('no token or secret reaches a foreign server, an event, a log line or an error', async () => {
    const logs: LogRecord[] = [];
    const events: unknown[] = [];
    const errors: unknown[] = [];
    const warden = createWarden({ logger: (record) => logs.push(record) });
    for (const event of ['refresh', 'refresh-error', 'reauth-required', 'blocked'] as const) {
      warden.on(event, (payload) => events.push(payload));
    }
    const service = warden.register('service', {
      source: clientCredentials({
        tokenEndpoint: `${AUTH}/token`,
        clientId: 'svc',
        clientSecret: SENTINEL.clientSecret,
      }),
      origins: [API],
    });
    const user = warden.register('user', {
      source: refreshToken({
        tokenEndpoint: `${AUTH}/token`,
        clientId: 'spa',
        refreshToken: SENTINEL.refreshToken,
      }),
      origins: [API],
    });
    const keyed = warden.register('keyed', {
      source: apiKey({ key: SENTINEL.apiKey, header: 'X-API-Key' }),
      origins: [API],
    });
    const capture = (promise: Promise<unknown>) =>
      promise.then(
        (value) => value,
        (error: unknown) => {
          errors.push(error);
        },
      );

    await capture(service.fetch(`${API}/ok`, { method: 'POST', body: 'hello' }));
    await capture(service.fetch(`${API}/expire`));
    await capture(service.fetch(`${EVIL}/direct`));
    await capture(service.fetch('//evil.example.test/protocol-relative'));
    await capture(service.ky({ prefix: `${API}/` }).get(`${EVIL}/absolute`));
    await capture(service.fetch(`${API}/to-evil`));
    const token = (await service.getToken()).reveal();
    await capture(service.fetch(`${API}/search?q=${encodeURIComponent(token)}`));
    await capture(service.fetch(`${API}/path/${token}`));
    await capture(service.fetch(`http://api.example.test/plain`));
    await capture(user.fetch(`${API}/me`));
    await capture(user.getToken());
    await capture(keyed.fetch(`${API}/keyed`));
    await capture(keyed.fetch(`${API}/to-evil`));
    await capture(keyed.fetch(`${EVIL}/keyed`));

    const secrets = [
      SENTINEL.clientSecret,
      SENTINEL.refreshToken,
      SENTINEL.apiKey,
      // Every access token issued during the test.
      ...Array.from({ length: issued }, (_, i) => `${SENTINEL.accessToken}${i + 1}`),
    ];

    // The scenario must actually have exercised the paths it claims to scan.
    expect(issued).toBeGreaterThanOrEqual(2);
    expect(events.some((e) => (e as { reason?: string }).reason === 'origin-not-allowed')).toBe(
      true,
    );
    expect(events.some((e) => (e as { reason?: string }).reason === 'token-in-url')).toBe(true);
    expect(events.some((e) => (e as { reason?: string }).reason === 'redirect')).toBe(true);
    expect(errors.length).toBeGreaterThanOrEqual(5);
    expect(logs.length).toBeGreaterThan(0);
    expect(foreign.map((r) => new URL(r.url).pathname)).toEqual(['/collect', '/collect']);

    expect(findLeaks(foreign, secrets)).toEqual([]);
    expect(findLeaks(events, secrets)).toEqual([]);
    expect(findLeaks(logs, secrets)).toEqual([]);
    expect(findLeaks(errors, secrets)).toEqual([]);
    expect(findLeaks([warden, service, user, keyed], secrets)).toEqual([]);
    // The allowed API saw tokens only in their header: never in a URL or a body.
    expect(
      findLeaks(
        api.map((r) => ({ url: r.url, body: r.body })),
        secrets,
      ),
    ).toEqual([]);
    await warden.close();
  });
});
