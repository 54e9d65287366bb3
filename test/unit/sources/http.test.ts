import { HttpResponse, http } from 'msw';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TokenWardenError } from '../../../src/errors.js';
import { createSkewClock } from '../../../src/internal/clock.js';
import {
  FORM_CONTENT_TYPE,
  type HttpContext,
  httpRequest,
  parseJsonObject,
} from '../../../src/internal/http.js';
import { rejection, useMsw } from './support.js';

const server = useMsw();
const URL_A = new URL('https://auth.example.com/token');

function context(overrides: Partial<HttpContext> = {}): HttpContext {
  return {
    fetch: (input, init) => globalThis.fetch(input, init),
    timeoutMs: 5_000,
    maxResponseBytes: 1_024,
    ...overrides,
  };
}

function lazyStream(chunkBytes: number, maxChunks: number) {
  const state = { pulled: 0, cancelled: false };
  const chunk = new Uint8Array(chunkBytes).fill(0x61);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        state.pulled += 1;
        if (state.pulled > maxChunks) controller.close();
        else controller.enqueue(chunk);
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('httpRequest', () => {
  it('POSTs a UTF-8 form with Accept: application/json and never follows redirects', async () => {
    let seen: Request | undefined;
    let body = '';
    server.use(
      http.post(URL_A.href, async ({ request }) => {
        seen = request;
        body = await request.text();
        return HttpResponse.json({ ok: true });
      }),
    );
    const result = await httpRequest(
      { url: URL_A, form: new URLSearchParams({ a: 'b c', é: '%' }), headers: { 'x-extra': '1' } },
      context(),
    );
    expect(result.status).toBe(200);
    expect(parseJsonObject(result.body)).toEqual({ ok: true });
    expect(seen?.method).toBe('POST');
    expect(seen?.headers.get('content-type')).toBe(FORM_CONTENT_TYPE);
    expect(FORM_CONTENT_TYPE).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    expect(seen?.headers.get('accept')).toBe('application/json');
    expect(seen?.headers.get('x-extra')).toBe('1');
    expect(seen?.redirect).toBe('manual');
    expect(body).toBe('a=b+c&%C3%A9=%25');
  });

  it('GETs without a body when there is no form', async () => {
    server.use(http.get(URL_A.href, ({ request }) => HttpResponse.text(request.method)));
    expect((await httpRequest({ url: URL_A }, context())).body).toBe('GET');
  });

  it.each([301, 302, 303, 307, 308])(
    'a %i is ERR_REDIRECT and the target is never asked',
    async (status) => {
      let followed = false;
      server.use(
        http.post(
          URL_A.href,
          () =>
            new HttpResponse(null, {
              status,
              headers: { location: 'https://evil.example.net/steal' },
            }),
        ),
        http.all('https://evil.example.net/*', () => {
          followed = true;
          return HttpResponse.json({});
        }),
      );
      const error = (await rejection(
        httpRequest({ url: URL_A, form: new URLSearchParams({ client_secret: 's' }) }, context()),
      )) as TokenWardenError;
      expect(error.code).toBe('ERR_REDIRECT');
      expect(error.status).toBe(status);
      expect(followed).toBe(false);
    },
  );

  it('a browser-style opaque redirect is ERR_REDIRECT', async () => {
    const opaque = { type: 'opaqueredirect', status: 0, headers: new Headers(), body: null };
    const fetch = async () => opaque as unknown as Response;
    const error = (await rejection(
      httpRequest({ url: URL_A }, context({ fetch })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_REDIRECT');
  });

  it('refuses a declared Content-Length over the cap before reading', async () => {
    const { stream, state } = lazyStream(512, 1_000);
    const fetch = async () =>
      new Response(stream, { headers: { 'content-length': String(100 * 1024 * 1024) } });
    const error = (await rejection(
      httpRequest({ url: URL_A }, context({ fetch })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_RESPONSE_TOO_LARGE');
    expect(state.pulled).toBe(0);
    expect(state.cancelled).toBe(true);
  });

  it('cancels a 100 MB stream as soon as it passes the cap, memory bounded', async () => {
    const { stream, state } = lazyStream(64 * 1024, 1_600);
    const fetch = async () => new Response(stream);
    const error = (await rejection(
      httpRequest({ url: URL_A }, context({ fetch, maxResponseBytes: 65_536 })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_RESPONSE_TOO_LARGE');
    expect(state.cancelled).toBe(true);
    expect(state.pulled).toBeLessThanOrEqual(3);
  });

  it('reads a body exactly at the cap', async () => {
    const fetch = async () => new Response('x'.repeat(1_024));
    expect((await httpRequest({ url: URL_A }, context({ fetch }))).body).toHaveLength(1_024);
  });

  it('times out while the body stalls', async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"a":'));
      },
    });
    const fetch = async () => new Response(stream);
    const error = (await rejection(
      httpRequest({ url: URL_A }, context({ fetch, timeoutMs: 50 })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_TIMEOUT');
  });

  it('times out with fake timers and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const fetch = () => new Promise<Response>(() => {});
    const pending = rejection(httpRequest({ url: URL_A }, context({ fetch, timeoutMs: 10_000 })));
    await vi.advanceTimersByTimeAsync(9_999);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(((await pending) as TokenWardenError).code).toBe('ERR_TIMEOUT');
    expect(vi.getTimerCount()).toBe(0);

    const ok = async () => new Response('{}');
    await httpRequest({ url: URL_A }, context({ fetch: ok }));
    expect(vi.getTimerCount()).toBe(0);
  });

  it("the caller's abort → ERR_ABORTED, before and during the request", async () => {
    const before = new AbortController();
    before.abort();
    let called = false;
    const spy = async () => {
      called = true;
      return new Response('{}');
    };
    const early = (await rejection(
      httpRequest({ url: URL_A }, context({ fetch: spy, signal: before.signal })),
    )) as TokenWardenError;
    expect(early.code).toBe('ERR_ABORTED');
    expect(called).toBe(false);

    const during = new AbortController();
    const hang = () => new Promise<Response>(() => {});
    const pending = rejection(
      httpRequest({ url: URL_A }, context({ fetch: hang, signal: during.signal })),
    );
    during.abort();
    expect(((await pending) as TokenWardenError).code).toBe('ERR_ABORTED');
  });

  it('a connection reset while reading the body → ERR_NETWORK', async () => {
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new TypeError('terminated'));
      },
    });
    const fetch = async () => new Response(stream);
    const error = (await rejection(
      httpRequest({ url: URL_A }, context({ fetch })),
    )) as TokenWardenError;
    expect(error.code).toBe('ERR_NETWORK');
  });

  it('reports the Date header and receipt time to the clock', async () => {
    const now = 1_700_000_000_000;
    const clock = createSkewClock({ now: () => now });
    const serverTime = new Date(now + 60_000).toUTCString();
    server.use(
      http.get(URL_A.href, () => HttpResponse.json({}, { headers: { date: serverTime } })),
    );
    const result = await httpRequest({ url: URL_A }, context({ clock }));
    expect(result.receivedAt).toBe(now);
    expect(clock.skewMs).toBe(60_500);
  });
});

describe('parseJsonObject', () => {
  it.each([
    ['null', 'null'],
    ['an array', '[1]'],
    ['a string', '"x"'],
    ['a number', '1'],
    ['truncated', '{"a":'],
    ['HTML', '<html></html>'],
    ['empty', ''],
    ['deeply nested', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
  ])('returns undefined for %s', (_, text) => {
    expect(parseJsonObject(text)).toBeUndefined();
  });

  it('returns a plain object and tolerates a BOM', () => {
    expect(parseJsonObject('\uFEFF{"a":{"b":[1,{"c":2}]}}')).toEqual({ a: { b: [1, { c: 2 }] } });
  });

  it('drops __proto__, constructor and prototype members at every depth', () => {
    const value = parseJsonObject(
      '{"__proto__":{"polluted":1},"a":{"constructor":{"prototype":{"polluted":1}},"__proto__":{"x":1}},"prototype":1}',
    );
    expect(value).toEqual({ a: {} });
    expect(Object.keys(value ?? {})).toEqual(['a']);
    const merged = Object.assign({}, value, value?.['a']);
    expect((merged as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });
});
