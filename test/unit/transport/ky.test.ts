import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BlockedRequestError, isTokenWardenError } from '../../../src/errors.js';
import { createAuthenticatedFetch } from '../../../src/transport/fetch.js';
import { createKy } from '../../../src/transport/ky.js';
import { originOf } from '../../../src/transport/policy.js';
import { fakeHost, TOKEN_1, TOKEN_2 } from './fake-host.js';

interface Seen {
  method: string;
  url: string;
  authorization: string | null;
  headers: Record<string, string>;
  body: string;
}

const server = setupServer();
let pending: Promise<Seen>[] = [];
const seen = (): Promise<Seen[]> => Promise.all(pending);
const PREFIX = 'https://api.example.com/v1/';

beforeAll(() => {
  server.listen({ onUnhandledRequest: 'error' });
  server.events.on('request:start', ({ request }) => {
    pending.push(
      request
        .clone()
        .text()
        .then((body) => ({
          method: request.method,
          url: request.url,
          authorization: request.headers.get('authorization'),
          headers: Object.fromEntries(request.headers),
          body,
        })),
    );
  });
});
beforeEach(() => {
  pending = [];
});
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

function setup() {
  const host = fakeHost({ origins: [originOf(PREFIX)] });
  return { host, api: createKy(host, { prefix: PREFIX, retry: { limit: 2, delay: () => 0 } }) };
}

describe('createKy', () => {
  it('resolves against prefix and authenticates get().json()', async () => {
    server.use(http.get(`${PREFIX}invoices`, () => HttpResponse.json([{ id: 1 }])));
    const { api } = setup();
    expect(await api.get('invoices').json()).toEqual([{ id: 1 }]);
    expect(await api.get('/invoices').json()).toEqual([{ id: 1 }]);
    const requests = await seen();
    expect(requests.map((r) => r.authorization)).toEqual([
      `Bearer ${TOKEN_1}`,
      `Bearer ${TOKEN_1}`,
    ]);
  });

  it('sends json bodies, with the token in the header only', async () => {
    server.use(
      http.post(`${PREFIX}orders`, async ({ request }) =>
        HttpResponse.json({ got: await request.json() }, { status: 201 }),
      ),
    );
    const { api } = setup();
    expect(await api.post('orders', { json: { sku: 'a' } }).json()).toEqual({ got: { sku: 'a' } });
    const [request] = await seen();
    expect(request?.body).toBe('{"sku":"a"}');
    expect(request?.body).not.toContain(TOKEN_1);
    expect(request?.url).not.toContain(TOKEN_1);
  });

  it.each([
    ['an absolute URL string', 'https://evil.example.net/steal'],
    ['a protocol-relative URL string', '//evil.example.net/steal'],
  ])(
    'keeps %s under the prefix (ky joins it), so it cannot reach another origin',
    async (_, input) => {
      server.use(http.get(`${PREFIX}*`, () => HttpResponse.json({ stayed: true })));
      const { api } = setup();
      await api.get(input).json();
      const requests = await seen();
      expect(requests).toHaveLength(1);
      expect(new URL(requests[0]?.url ?? '').origin).toBe('https://api.example.com');
      expect(requests[0]?.url.startsWith(PREFIX)).toBe(true);
    },
  );

  it('blocks a URL object or a Request to another origin (ky does not prefix those)', async () => {
    const { host, api } = setup();
    for (const input of [
      new URL('https://evil.example.net/steal'),
      new Request('https://evil.example.net/steal'),
    ]) {
      const error = await api.get(input).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BlockedRequestError);
      expect(isTokenWardenError(error) && error.code).toBe('ERR_ORIGIN_NOT_ALLOWED');
    }
    expect(await seen()).toHaveLength(0);
    expect(host.blockedEvents.map((e) => e.reason)).toEqual([
      'origin-not-allowed',
      'origin-not-allowed',
    ]);
  });

  it('blocks an absolute URL that bypasses baseUrl', async () => {
    const host = fakeHost({ origins: ['https://api.example.com'] });
    const api = createKy(host, { baseUrl: PREFIX, retry: 0 });
    const error = await api.get('https://evil.example.net/steal').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTokenWardenError(error) && error.code).toBe('ERR_ORIGIN_NOT_ALLOWED');
    expect(await seen()).toHaveLength(0);
  });

  it("keeps ky's retry on 500 working, each attempt carrying the token", async () => {
    let calls = 0;
    server.use(
      http.get(`${PREFIX}flaky`, () =>
        ++calls < 3 ? new HttpResponse(null, { status: 500 }) : HttpResponse.json({ ok: true }),
      ),
    );
    const { host, api } = setup();
    expect(await api.get('flaky').json()).toEqual({ ok: true });
    const requests = await seen();
    expect(requests).toHaveLength(3);
    for (const request of requests) expect(request.authorization).toBe(`Bearer ${TOKEN_1}`);
    expect(host.outcomes.map((o) => o.status)).toEqual([500, 500, 200]);
  });

  it('runs hooks above the authenticated fetch, and a hook cannot replace the token', async () => {
    server.use(http.get(`${PREFIX}hooked`, () => HttpResponse.json({ ok: true })));
    const host = fakeHost({ origins: ['https://api.example.com'] });
    const log: string[] = [];
    const api = createKy(host, {
      prefix: PREFIX,
      hooks: {
        beforeRequest: [
          ({ request }) => {
            log.push('before');
            request.headers.set('x-trace', 'hook');
            request.headers.set('authorization', 'Bearer from-hook');
          },
        ],
        afterResponse: [
          ({ response }) => {
            log.push(`after ${response.status}`);
          },
        ],
      },
    });
    await api.get('hooked').json();
    expect(log).toEqual(['before', 'after 200']);
    const [request] = await seen();
    expect(request?.headers['x-trace']).toBe('hook');
    expect(request?.authorization).toBe(`Bearer ${TOKEN_1}`);
  });

  it('refreshes and retries once inside one ky attempt on 401, replaying the json body', async () => {
    let calls = 0;
    server.use(
      http.put(`${PREFIX}items/1`, () =>
        ++calls === 1
          ? new HttpResponse(null, {
              status: 401,
              headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
            })
          : HttpResponse.json({ saved: true }),
      ),
    );
    const { host, api } = setup();
    expect(await api.put('items/1', { json: { n: 1 } }).json()).toEqual({ saved: true });
    const [first, second] = await seen();
    expect(first?.body).toBe('{"n":1}');
    expect(second?.body).toBe('{"n":1}');
    expect(second?.authorization).toBe(`Bearer ${TOKEN_2}`);
    expect(host.recoverCalls).toEqual([1]);
  });

  it("keeps ky's timeout working above the authenticated fetch", async () => {
    server.use(
      http.get(`${PREFIX}slow`, async () => {
        await delay(1_000);
        return HttpResponse.json({});
      }),
    );
    const host = fakeHost({ origins: ['https://api.example.com'] });
    const api = createKy(host, { prefix: PREFIX, timeout: 50, retry: 0 });
    const error = await api.get('slow').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).name).toBe('TimeoutError');
  });

  it('accepts an authenticated fetch instead of a host', async () => {
    server.use(http.get(`${PREFIX}ping`, () => HttpResponse.json({ pong: true })));
    const host = fakeHost({ origins: ['https://api.example.com'] });
    const api = createKy(createAuthenticatedFetch(host), { prefix: PREFIX });
    expect(await api.get('ping').json()).toEqual({ pong: true });
  });

  it('refuses a custom fetch with ERR_INVALID_ARGUMENT', () => {
    const host = fakeHost();
    try {
      createKy(host, { fetch: globalThis.fetch } as never);
      expect.unreachable();
    } catch (error) {
      expect(isTokenWardenError(error) && error.code).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});
